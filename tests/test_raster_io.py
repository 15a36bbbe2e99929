"""Checks of scenes (CRS, geotransform, readability) and the COG writer."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from geolabel.errors import InputFileError, RasterReadError
from geolabel.raster.io import open_scene_info, write_cog

from .conftest import REAL


class TestOpenSceneInfo:
    def test_good_scene(self, data_dir):
        info = open_scene_info(data_dir / "scene_small.tif")
        assert (info.width, info.height, info.count, info.dtype) == (32, 32, 4, "uint16")
        assert info.crs == "EPSG:32610"
        assert info.res == (0.5, 0.5)

    @pytest.mark.parametrize(
        ("fixture", "exc", "fragment"),
        [
            ("nocrs.tif", RasterReadError, "has no CRS"),
            ("no_geotransform.tif", RasterReadError, "no geotransform"),
            ("not_a_raster.tif", RasterReadError, "cannot read"),
            ("missing.tif", InputFileError, "does not exist"),
        ],
    )
    def test_bad_scenes(self, data_dir, fixture, exc, fragment):
        with pytest.raises(exc, match=fragment) as err:
            open_scene_info(data_dir / fixture)
        assert fixture in str(err.value)

    def test_alpha_tag_is_reported(self, data_dir):
        info = open_scene_info(data_dir / "rgba_tagged.tif")
        assert info.colorinterp[3] == "alpha"

    @pytest.mark.skipif(not REAL.exists(), reason="shared real imagery not present")
    @pytest.mark.parametrize(
        ("rel", "count", "dtype", "crs"),
        [
            ("landsat7_rasterio/RGB.byte.tif", 3, "uint8", "EPSG:32618"),
            ("spacenet3_vegas_roads/road_mask_input.tif", 1, "uint16", "EPSG:4326"),
            ("neon_trees_deepforest/OSBS_029.tif", 3, "uint8", "EPSG:32617"),
        ],
    )
    def test_real_imagery(self, rel, count, dtype, crs):
        info = open_scene_info(REAL / rel)
        assert (info.count, info.dtype, info.crs) == (count, dtype, crs)


class TestWriteCog:
    def test_four_bands_are_data_not_alpha(self, tmp_path):
        arr = np.arange(4 * 300 * 300, dtype=np.uint16).reshape(4, 300, 300) % 5000 + 1
        t = Affine(0.5, 0, 500_000, 0, -0.5, 4_000_000)
        out = write_cog(
            tmp_path / "x.tif",
            arr,
            transform=t,
            crs="EPSG:32610",
            nodata=0,
            band_names=("red", "green", "blue", "nir"),
        )
        with rasterio.open(out) as ds:
            assert ds.count == 4
            assert "alpha" not in [c.name for c in ds.colorinterp]
            assert ds.descriptions == ("red", "green", "blue", "nir")
            assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert ds.overviews(1) == [2]
            assert (ds.read_masks(4) == 255).all()
            np.testing.assert_array_equal(ds.read(), arr)
        assert not (tmp_path / "x.tif.aux.xml").exists()
