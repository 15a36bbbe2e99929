"""The sample city: generator invariants, the bundled files, and byte-for-byte reproduction."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely

from geolabel.synth.city import LAND_USE_CODES, CityConfig, build_city
from geolabel.synth.sample import library_versions, write_sample
from geolabel.taxonomy import load_taxonomy


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def parcels(sample_dir):
    return pyogrio.read_dataframe(sample_dir / "city.gpkg", layer="parcels")


@pytest.fixture(scope="module")
def truth(sample_dir):
    return pd.read_csv(sample_dir / "truth" / "parcels.csv")


class TestCityLayout:
    def test_parcels_have_unique_ids_addresses_and_apns(self, city):
        p = city.parcels
        assert p["parcel_id"].is_unique and p["apn"].is_unique and p["address"].is_unique
        assert p["apn"].str.fullmatch(r"\d{3}-\d{3}-\d{3}").all()
        assert (p["address"] == p["house_number"].astype(str) + " " + p["street"]).all()
        assert set(p["street"]) <= set(city.streets["name"])

    def test_parcels_tile_the_blocks_without_overlap(self, city):
        geoms = city.parcels.geometry.values
        total = shapely.union_all(geoms).area
        assert total == pytest.approx(sum(g.area for g in geoms), rel=1e-9)
        extent = city.config.extent_m
        assert 0.55 * extent**2 < total < 0.85 * extent**2  # the rest is roads

    def test_truth_covers_taxonomy_plus_mixed_use(self, city):
        tax = load_taxonomy("geolabel/synth/resources/taxonomy.yaml")
        uses = set(city.truth["land_use"])
        assert set(tax.parcel_class_ids) <= uses
        assert "mixed_use" in uses and "mixed_use" not in tax.class_ids
        assert uses <= set(LAND_USE_CODES)

    def test_mixed_use_is_one_contiguous_cluster(self, city):
        ids = city.truth.loc[city.truth["ambiguity"] == "mixed_use", "parcel_id"]
        geoms = city.parcels.set_index("parcel_id").loc[ids].geometry
        assert len(geoms) >= 8
        assert shapely.union_all(geoms.buffer(0.01).values).geom_type == "Polygon"

    def test_borderline_parcels_have_an_alternative(self, city):
        b = city.truth[city.truth["ambiguity"] == "borderline"]
        assert len(b) >= 6
        assert b["alt_label"].notna().all() and (b["alt_label"] != b["land_use"]).all()
        pairs = {frozenset(x) for x in zip(b["land_use"], b["alt_label"], strict=True)}
        assert pairs == {
            frozenset({"residential", "commercial"}),
            frozenset({"vacant", "construction"}),
        }

    def test_two_districts_with_riverside_harder(self, city):
        d = city.truth.groupby("district")["difficulty"].median()
        assert set(d.index) == {"Northgate", "Riverside"}
        assert d["Riverside"] > d["Northgate"]

    def test_same_seed_same_city_other_seed_differs(self, city):
        again = build_city(CityConfig())
        assert again.parcels.geometry.equals(city.parcels.geometry)
        other = build_city(CityConfig(seed=1))
        assert not (
            len(other.parcels) == len(city.parcels)
            and other.parcels.geometry.equals(city.parcels.geometry)
        )

    def test_size_scales_the_city(self):
        small = build_city(CityConfig(size_px=512))
        assert 40 < len(small.parcels) < 160

    def test_bad_size(self):
        with pytest.raises(ValueError, match="multiple of 64"):
            CityConfig(size_px=1000)


class TestBundledSample:
    def test_scene_is_a_four_band_cog_not_alpha(self, sample_dir):
        with rasterio.open(sample_dir / "scene.tif") as ds:
            assert ds.crs.to_epsg() == 32610 and ds.count == 4 and ds.dtypes[0] == "uint16"
            assert ds.res == (0.5, 0.5) and ds.width == ds.height == 1024
            assert "alpha" not in [c.name for c in ds.colorinterp]
            assert ds.descriptions == ("red", "green", "blue", "nir")
            assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert ds.overviews(1) and ds.block_shapes[0] == (256, 256)
            assert (ds.read_masks(4) == 255).all()

    def test_scene_content_is_physical(self, sample_dir):
        with rasterio.open(sample_dir / "scene.tif") as ds:
            img = ds.read().astype(float)
        with rasterio.open(sample_dir / "truth" / "landuse_mask.tif") as ds:
            mask = ds.read(1)
        red, nir = img[0], img[3]
        ndvi = (nir - red) / (nir + red)
        assert np.median(ndvi[mask == LAND_USE_CODES["park"]]) > 0.3  # vegetation bright in NIR
        water = mask == LAND_USE_CODES["water"]
        assert np.median(nir[water]) < np.median(red[water]) * 1.5  # water dark in NIR
        assert np.median(nir[water]) < 0.3 * np.median(nir[mask == LAND_USE_CODES["park"]])
        # Texture, not flat colours: residential parcels vary a lot inside.
        assert img[0][mask == LAND_USE_CODES["residential"]].std() > 300

    def test_riverside_is_imaged_hazier(self, sample_dir, parcels, truth):
        with rasterio.open(sample_dir / "scene.tif") as ds:
            blue = ds.read(3).astype(float)
        with rasterio.open(sample_dir / "truth" / "landuse_mask.tif") as ds:
            mask = ds.read(1)
        road = mask == LAND_USE_CODES["road"]
        half = blue.shape[0] // 2
        north = np.median(blue[:half][road[:half]])
        south = np.median(blue[half:][road[half:]])
        assert south > north + 200

    def test_mask_on_scene_grid_with_every_class(self, sample_dir):
        with (
            rasterio.open(sample_dir / "scene.tif") as s,
            rasterio.open(sample_dir / "truth" / "landuse_mask.tif") as m,
        ):
            assert (m.transform, m.crs, m.shape) == (s.transform, s.crs, s.shape)
            codes = set(np.unique(m.read(1)).tolist())
        assert codes == set(LAND_USE_CODES.values())

    def test_parcels_layer_does_not_leak_truth(self, sample_dir, parcels):
        assert not {"land_use", "ambiguity", "difficulty", "zoning"} & set(parcels.columns)
        pois = pyogrio.read_dataframe(sample_dir / "city.gpkg", layer="pois")
        assert "category" not in pois.columns
        assert parcels.crs.to_epsg() == 32610

    def test_notices_refer_to_real_parcels(self, sample_dir, parcels):
        public = [json.loads(x) for x in (sample_dir / "notices.jsonl").read_text().splitlines()]
        gold = {
            r["notice_id"]: r
            for r in map(
                json.loads, (sample_dir / "truth" / "notices.jsonl").read_text().splitlines()
            )
        }
        assert len(public) == 200 and set(gold) == {n["notice_id"] for n in public}
        assert not {"entities", "parcel_ids"} & set(public[0])
        by_id = parcels.set_index("parcel_id")
        labels = set()
        for n in public:
            g = gold[n["notice_id"]]
            assert set(g["parcel_ids"]) <= set(by_id.index)
            for e in g["entities"]:
                assert n["text"][e["start"] : e["end"]] == e["text"]
                labels.add(e["label"])
        assert labels == {"ADDRESS", "PARCEL_ID", "DATE", "PROJECT", "ORG", "ZONING"}
        # Notices naming an APN name the APN of a parcel they refer to.
        apns = set(by_id["apn"])
        apns |= {a.replace("-", "") for a in apns}
        found = [
            e["text"]
            for g in gold.values()
            for e in g["entities"]
            if e["label"] == "PARCEL_ID" and re.fullmatch(r"[\d-]+", e["text"])
        ]
        assert found and all(f in apns for f in found)

    def test_starter_and_gold(self, sample_dir, truth):
        tax = load_taxonomy(sample_dir / "taxonomy.yaml")
        starter = pd.read_csv(sample_dir / "labels" / "starter.csv")
        gold = pd.read_csv(sample_dir / "labels" / "gold.csv")
        assert list(starter.columns) == ["item", "annotator", "label", "created_at"]
        assert 0.13 * len(truth) <= len(starter) <= 0.2 * len(truth)
        assert set(starter["label"]) == set(tax.parcel_class_ids)
        assert starter["annotator"].str.startswith("expert").all()
        assert not set(gold["item"]) & set(starter["item"])
        t = truth.set_index("parcel_id")
        assert (t.loc[gold["item"], "ambiguity"] == "none").all()
        assert (t.loc[gold["item"], "land_use"].to_numpy() == gold["label"].to_numpy()).all()

    def test_starter_is_spatially_spread(self, sample_dir, parcels):
        starter = pd.read_csv(sample_dir / "labels" / "starter.csv")
        c = parcels.set_index("parcel_id").loc[starter["item"]].geometry.centroid
        xy = shapely.get_coordinates(c.values)
        d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
        np.fill_diagonal(d, np.inf)
        assert np.median(d.min(1)) > 40  # metres between a starter parcel and its nearest

    def test_sample_is_small_enough_to_commit(self, sample_dir):
        total = sum(p.stat().st_size for p in sample_dir.rglob("*") if p.is_file())
        assert total < 15 * 1024**2


class TestReproduction:
    def test_regenerates_byte_for_byte(self, sample_dir, tmp_path):
        """`geolabel sample OUT` reproduces data/sample exactly.

        When the libraries that write the bytes (GDAL, GEOS...) differ from those recorded in
        the manifest, file bytes may legitimately differ, so the decoded content is compared.
        """
        from typer.testing import CliRunner

        from geolabel.cli.main import app

        result = CliRunner().invoke(app, ["sample", str(tmp_path / "s")])
        assert result.exit_code == 0, result.output
        manifest = json.loads((sample_dir / "MANIFEST.json").read_text())
        committed = {
            str(p.relative_to(sample_dir)): p for p in sorted(sample_dir.rglob("*")) if p.is_file()
        }
        fresh = {
            str(p.relative_to(tmp_path / "s")): p
            for p in sorted((tmp_path / "s").rglob("*"))
            if p.is_file()
        }
        assert set(fresh) == set(committed)
        assert set(manifest["files"]) == set(committed) - {"MANIFEST.json"}
        if manifest["versions"] == library_versions():
            for rel, path in fresh.items():
                assert _sha(path) == _sha(committed[rel]), rel
            for rel, sha in manifest["files"].items():
                assert _sha(committed[rel]) == sha, rel
        else:
            for rel, path in fresh.items():
                if rel.endswith(".tif"):
                    with rasterio.open(path) as a, rasterio.open(committed[rel]) as b:
                        np.testing.assert_array_equal(a.read(), b.read())
                elif rel.endswith(".gpkg"):
                    for layer, _ in pyogrio.list_layers(path):
                        a = pyogrio.read_dataframe(path, layer=layer)
                        b = pyogrio.read_dataframe(committed[rel], layer=layer)
                        pd.testing.assert_frame_equal(a, b)
                elif rel != "MANIFEST.json":
                    assert path.read_bytes() == committed[rel].read_bytes(), rel

    def test_refuses_to_overwrite_without_force(self, tmp_path):
        write_sample(tmp_path, size_px=256, n_notices=40)
        from geolabel.errors import InputFileError

        with pytest.raises(InputFileError, match="--force"):
            write_sample(tmp_path, size_px=256)


@pytest.mark.slow
class TestLargeCity:
    def test_four_times_the_area(self, tmp_path):
        manifest = write_sample(tmp_path, size_px=2048, seed=3)
        assert manifest.counts["parcels"] > 3 * 286
        assert manifest.counts["notices"] == 800
        with rasterio.open(tmp_path / "scene.tif") as ds:
            assert ds.shape == (2048, 2048) and ds.count == 4
        parcels = pyogrio.read_dataframe(tmp_path / "city.gpkg", layer="parcels")
        assert parcels["address"].is_unique and parcels["apn"].is_unique
