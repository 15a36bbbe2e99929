"""Polygonizing class maps: areas, labels, nodata and a gap-free simplification."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from affine import Affine

from geolabel.errors import CRSMismatchError
from geolabel.raster.polygonize import polygonize_class_map

from .rasterdata import write_tif

T = Affine(0.5, 0.0, 551_000.0, 0.0, -0.5, 4_182_016.0)


@pytest.fixture
def class_map():
    arr = np.zeros((40, 40), np.uint8)
    arr[5:25, 5:30] = 1  # 500 px
    arr[30:38, 2:10] = 2  # 64 px
    arr[0:2, 38:40] = 255  # nodata corner
    arr[12, 12] = 2  # a single pixel of class 2 inside class 1
    return arr


class TestPolygonizeClassMap:
    def test_areas_and_labels_without_simplification(self, class_map):
        gdf = polygonize_class_map(
            class_map,
            classes=["bare", "built", "water"],
            transform=T,
            crs="EPSG:32610",
            simplify=0,
        )
        assert gdf.crs.to_epsg() == 32610
        assert list(gdf.columns) == ["class_id", "label", "area", "geometry"]
        by_class = gdf.groupby("label")["area"].sum()
        assert by_class["built"] == pytest.approx((500 - 1) * 0.25)
        assert by_class["water"] == pytest.approx((64 + 1) * 0.25)
        assert by_class["bare"] == pytest.approx((1600 - 500 - 64 - 4) * 0.25)
        assert (gdf.label == "water").sum() == 2 and (gdf.label == "built").sum() == 1
        assert gdf.area.sum() == pytest.approx((1600 - 4) * 0.25)

    def test_simplified_polygons_still_tile_without_gaps(self, class_map):
        rng = np.random.default_rng(0)
        noisy = class_map.copy()
        noisy[rng.random(noisy.shape) < 0.05] = 1
        gdf = polygonize_class_map(noisy, transform=T, crs="EPSG:32610", simplify=1.0)
        assert shapely.union_all(gdf.geometry.values).area == pytest.approx(gdf.area.sum())
        assert gdf.area.sum() == pytest.approx((1600 - (noisy == 255).sum()) * 0.25, rel=0.01)
        assert set(gdf.label) <= {"0", "1", "2"}

    def test_file_with_classes_tag_and_min_area(self, class_map, tmp_path):
        path = write_tif(tmp_path / "classes.tif", class_map, transform=T, nodata=255, block=16)
        import rasterio

        with rasterio.open(path, "r+") as ds:
            ds.update_tags(classes=json.dumps(["bare", "built", "water"]))
        gdf = polygonize_class_map(path, min_area=1.0)
        assert set(gdf.label) == {"bare", "built", "water"}
        assert (gdf.area >= 1.0).all() and len(gdf) == 3  # the single pixel (0.25 m²) is gone

    def test_array_needs_georeference(self, class_map):
        with pytest.raises(CRSMismatchError, match="pass transform= and crs="):
            polygonize_class_map(class_map)
