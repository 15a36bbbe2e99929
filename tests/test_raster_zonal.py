"""Per-parcel zonal statistics: a hand-counted parcel, files, streaming from a mosaic, bad input."""

from __future__ import annotations

import math
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from shapely.geometry import Polygon, box

from geolabel.errors import (
    BandError,
    ColumnError,
    CRSMismatchError,
    GeometryError,
    NoDataWarning,
    ReprojectionWarning,
)
from geolabel.raster.mosaic import Mosaic
from geolabel.raster.reader import iter_tile_batches
from geolabel.raster.tiling import tile_scene
from geolabel.raster.zonal import ParcelIdRaster, ZonalAccumulator, zonal_class_stats

from .rasterdata import write_tif

CRS = "EPSG:32610"
X0, Y0 = 551_000.0, 4_182_010.0
T = Affine(1.0, 0.0, X0, 0.0, -1.0, Y0)  # 10 x 10 px of 1 m
CLASSES = ("built", "green", "water")
# Probability vectors of a pixel whose most probable class is 0, 1 or 2.
P = {
    0: (0.6, 0.3, 0.1),
    1: (0.2, 0.7, 0.1),
    2: (0.1, 0.2, 0.7),
}


def cell_box(col0, row0, col1, row1):
    """The ground rectangle of pixel columns col0..col1-1 and rows row0..row1-1."""
    return box(X0 + col0, Y0 - row1, X0 + col1, Y0 - row0)


@pytest.fixture
def probs():
    """Class 2 everywhere, except the 4 x 3 block of parcel A (rows 1-3, columns 2-5)."""
    top = np.full((10, 10), 2)
    top[1:4, 2:6] = [
        [0, 0, 1, 2],
        [0, 1, 1, 2],
        [0, 0, 1, 2],
    ]  # by hand: five 0s, four 1s, three 2s
    return np.stack([np.vectorize(lambda k, c=c: P[k][c])(top) for c in range(3)]).astype(
        np.float32
    )


def parcels(*rows, crs=CRS):
    ids, geoms = zip(*rows, strict=True)
    return gpd.GeoDataFrame({"parcel_id": list(ids)}, geometry=list(geoms), crs=crs)


class TestZonalClassStats:
    def test_known_parcel_matches_a_hand_count(self, probs):
        frame = zonal_class_stats(
            probs, parcels(("A", cell_box(2, 1, 6, 4))), classes=CLASSES, transform=T, crs=CRS
        )
        row = frame.iloc[0]
        assert row.pixel_count == 12
        assert (row.frac_built, row.frac_green, row.frac_water) == (5 / 12, 4 / 12, 3 / 12)
        # mean of built: (5 * 0.6 + 4 * 0.2 + 3 * 0.1) / 12, and so on
        assert row.prob_built == pytest.approx(4.1 / 12)
        assert row.prob_green == pytest.approx((5 * 0.3 + 4 * 0.7 + 3 * 0.2) / 12)
        assert row.prob_water == pytest.approx((5 * 0.1 + 4 * 0.1 + 3 * 0.7) / 12)
        assert row.majority_class == "built"
        assert list(frame.columns) == [
            "parcel_id",
            "pixel_count",
            "frac_built",
            "frac_green",
            "frac_water",
            "prob_built",
            "prob_green",
            "prob_water",
            "majority_class",
        ]

    def test_pixel_centres_decide_and_all_touched_widens(self, probs):
        # From inside column 2 to inside column 5: only the centres of columns 3 and 4.
        half = box(X0 + 2.6, Y0 - 2, X0 + 5.4, Y0 - 1)
        frame = zonal_class_stats(
            probs, parcels(("h", half)), classes=CLASSES, transform=T, crs=CRS
        )
        assert frame.pixel_count.tolist() == [2]
        frame = zonal_class_stats(
            probs, parcels(("h", half)), classes=CLASSES, transform=T, crs=CRS, all_touched=True
        )
        assert frame.pixel_count.tolist() == [4]

    def test_overlapping_parcels_later_wins(self, probs):
        frame = zonal_class_stats(
            probs,
            parcels(("a", cell_box(0, 0, 4, 4)), ("b", cell_box(2, 2, 6, 6))),
            classes=CLASSES,
            transform=T,
            crs=CRS,
        )
        assert frame.pixel_count.tolist() == [16 - 4, 16]

    def test_parcels_outside_get_nan_and_a_warning(self, probs):
        tiny = Polygon([(X0 + 0.1, Y0 - 0.1), (X0 + 0.3, Y0 - 0.1), (X0 + 0.2, Y0 - 0.3)])
        far = box(X0 + 500, Y0 + 500, X0 + 510, Y0 + 510)
        with pytest.warns(NoDataWarning, match="2 parcel\\(s\\) got no pixel.*tiny, far"):
            frame = zonal_class_stats(
                probs,
                parcels(("in", cell_box(0, 0, 2, 2)), ("tiny", tiny), ("far", far)),
                classes=CLASSES,
                transform=T,
                crs=CRS,
            )
        assert frame.pixel_count.tolist() == [4, 0, 0]
        assert frame.loc[1:, "frac_built"].isna().all() and pd.isna(frame.majority_class[2])

    def test_no_parcel_overlaps(self, probs):
        far = box(0, 0, 10, 10)
        with pytest.raises(GeometryError, match="None of the 1 parcels overlap the raster"):
            zonal_class_stats(probs, parcels(("far", far)), classes=CLASSES, transform=T, crs=CRS)

    def test_parcels_in_another_crs_are_reprojected(self, probs):
        utm = parcels(("A", cell_box(2, 1, 6, 4)))
        with pytest.warns(ReprojectionWarning, match="EPSG:4326"):
            frame = zonal_class_stats(
                probs, utm.to_crs("EPSG:4326"), classes=CLASSES, transform=T, crs=CRS
            )
        assert frame.pixel_count.tolist() == [12]

    def test_nan_pixels_are_not_counted(self, probs):
        probs[:, 1, 2] = np.nan
        frame = zonal_class_stats(
            probs, parcels(("A", cell_box(2, 1, 6, 4))), classes=CLASSES, transform=T, crs=CRS
        )
        assert frame.pixel_count.tolist() == [11] and frame.frac_built[0] == 4 / 11

    def test_file_equals_array(self, probs, tmp_path):
        probs[:, 0, 0] = np.nan
        path = write_tif(tmp_path / "p.tif", probs, transform=T, nodata=math.nan, block=16)
        shapes = parcels(("A", cell_box(2, 1, 6, 4)), ("B", cell_box(0, 0, 2, 10)))
        from_file = zonal_class_stats(path, shapes, classes=CLASSES)
        from_array = zonal_class_stats(probs, shapes, classes=CLASSES, transform=T, crs=CRS)
        pd.testing.assert_frame_equal(from_file, from_array)
        assert from_file.pixel_count.tolist() == [12, 19]

    @pytest.mark.parametrize(
        ("kwargs", "exc", "fragment"),
        [
            ({"transform": None}, CRSMismatchError, "pass transform= and crs="),
            ({"classes": ("a", "b")}, BandError, "do not match 2 classes"),
            ({"id_column": "apn"}, ColumnError, "no 'apn' column"),
        ],
    )
    def test_bad_arguments(self, probs, kwargs, exc, fragment):
        args = {"classes": CLASSES, "transform": T, "crs": CRS, **kwargs}
        with pytest.raises(exc, match=fragment):
            zonal_class_stats(probs, parcels(("A", cell_box(2, 1, 6, 4))), **args)

    def test_duplicate_ids_and_missing_crs(self, probs):
        dup = parcels(("A", cell_box(0, 0, 1, 1)), ("A", cell_box(1, 1, 2, 2)))
        with pytest.raises(ColumnError, match="repeat: A"):
            zonal_class_stats(probs, dup, classes=CLASSES, transform=T, crs=CRS)
        with pytest.raises(CRSMismatchError, match="no CRS"):
            zonal_class_stats(
                probs,
                parcels(("A", cell_box(0, 0, 1, 1)), crs=None),
                classes=CLASSES,
                transform=T,
                crs=CRS,
            )

    def test_file_with_wrong_band_count(self, tmp_path, probs):
        path = write_tif(tmp_path / "p.tif", probs[:2], transform=T)
        with pytest.raises(BandError, match="has 2 band\\(s\\) but 3 classes"):
            zonal_class_stats(path, parcels(("A", cell_box(0, 0, 2, 2))), classes=CLASSES)


class TestZonalAccumulator:
    def test_streaming_from_the_mosaic_equals_the_file(self, sample_dir, tmp_path):
        grid = tile_scene(sample_dir / "scene.tif", size=256, overlap=32)
        city = gpd.read_file(sample_dir / "city.gpkg", layer="parcels")
        classes = ("a", "b", "c")
        zonal = ZonalAccumulator.for_grid(grid, city, classes=classes)
        rng = np.random.default_rng(0)
        with Mosaic(grid, classes, probabilities=True, zonal=zonal) as mosaic:
            for batch in iter_tile_batches(grid, batch_size=8):
                raw = rng.random((len(batch), 3, 256, 256), dtype=np.float32)
                mosaic.add_batch(batch.tiles, raw / raw.sum(axis=1, keepdims=True), batch.valid)
            result = mosaic.write(
                tmp_path / "c.tif", tmp_path / "f.tif", probabilities_path=tmp_path / "p.tif"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            streamed = zonal.result()
        from_file = zonal_class_stats(result.probabilities_path, city, classes=classes)
        pd.testing.assert_frame_equal(streamed, from_file, rtol=1e-6)
        assert len(streamed) == 286 and (streamed.pixel_count > 0).all()
        fractions = streamed[[f"frac_{c}" for c in classes]].sum(axis=1)
        np.testing.assert_allclose(fractions, 1.0)

    def test_accumulator_of_another_grid_is_refused(self, sample_dir):
        from geolabel.errors import MosaicError

        grid = tile_scene(sample_dir / "scene.tif", size=512, overlap=0)
        city = gpd.read_file(sample_dir / "city.gpkg", layer="parcels")
        zonal = ZonalAccumulator.for_grid(grid, city, classes=("a", "b"))
        with pytest.raises(MosaicError, match="another grid or other classes"):
            Mosaic(grid, ("a", "b", "c"), zonal=zonal)

    def test_strip_of_the_wrong_shape(self, probs):
        acc = ZonalAccumulator(
            parcels(("A", cell_box(0, 0, 2, 2))),
            classes=CLASSES,
            transform=T,
            width=10,
            height=10,
            crs=CRS,
        )
        with pytest.raises(BandError, match="do not fit 3 classes"):
            acc.add_strip(0, probs[:2])


class TestParcelIdRaster:
    def test_whole_grid_equals_strips(self, sample_dir):
        parcels = gpd.read_file(sample_dir / "city.gpkg", layer="parcels")
        # A 2 m grid over the sample city: 256 x 256 px.
        t = Affine(2.0, 0.0, 551_000.0, 0.0, -2.0, 4_182_512.0)
        geoms = [*parcels.geometry.values, None]  # a missing geometry is skipped
        whole = ParcelIdRaster(geoms, transform=t, width=256, height=256)
        strips = ParcelIdRaster(geoms, transform=t, width=256, height=256, max_whole_pixels=0)
        assert whole.rows(0, 256).max() == len(parcels)  # every parcel has a pixel
        for row_off, rows in [(0, 37), (37, 64), (101, 155), (250, 6), (101, 155)]:
            np.testing.assert_array_equal(whole.rows(row_off, rows), strips.rows(row_off, rows))

    def test_later_parcel_wins_where_parcels_overlap(self):
        geoms = [cell_box(0, 0, 6, 6), cell_box(3, 3, 10, 10)]
        for limit in (0, 100):
            ids = ParcelIdRaster(geoms, transform=T, width=10, height=10, max_whole_pixels=limit)
            band = ids.rows(0, 10)
            assert band[0, 0] == 1 and band[4, 4] == 2 and band[9, 9] == 2 and band[0, 9] == 0
