"""Reading and checking vector inputs: layers, columns, CRS, geometry validity."""

from __future__ import annotations

import pytest

from geolabel.errors import ColumnError, CRSMismatchError, GeometryError, InputFileError, LayerError
from geolabel.vector import check_polygons, read_vector, to_crs_checked


class TestReadVector:
    def test_reads_layer_of_multilayer_file(self, sample_dir):
        gdf = read_vector(sample_dir / "city.gpkg", layer="parcels", required=("parcel_id",))
        assert len(gdf) > 200 and gdf.crs.to_epsg() == 32610

    @pytest.mark.parametrize(
        ("fixture", "kwargs", "exc", "fragment"),
        [
            ("missing.geojson", {}, InputFileError, "does not exist"),
            ("not_a_raster.tif", {}, InputFileError, "cannot read"),
            ("parcels_no_id.geojson", {"required": ("parcel_id",)}, ColumnError, "'parcel_id'"),
            ("parcels_nocrs.gpkg", {}, CRSMismatchError, "have no CRS"),
            (
                "parcels_utm_as_wgs84.geojson",
                {},
                CRSMismatchError,
                "looks\nprojected|looks projected",
            ),
            ("parcels.geojson", {"layer": "nope"}, LayerError, "has no layer 'nope'"),
        ],
    )
    def test_bad_inputs(self, data_dir, fixture, kwargs, exc, fragment):
        with pytest.raises(exc, match=fragment) as err:
            read_vector(data_dir / fixture, what="parcels", **kwargs)
        assert fixture in str(err.value)

    def test_missing_column_lists_present_ones(self, data_dir):
        with pytest.raises(ColumnError, match="Columns present: pid"):
            read_vector(data_dir / "parcels_no_id.geojson", required=("parcel_id",), what="parcels")

    def test_multilayer_without_layer(self, sample_dir):
        with pytest.raises(LayerError, match="several layers"):
            read_vector(sample_dir / "city.gpkg", what="parcels")


class TestToCrsChecked:
    def test_reprojects_and_says_so(self, data_dir):
        gdf = read_vector(data_dir / "parcels_wgs84.geojson")
        out, notes = to_crs_checked(gdf, "EPSG:32610", source="p.geojson", what="parcels")
        assert out.crs.to_epsg() == 32610
        assert notes[0].kind == "reprojected" and "EPSG:4326" in notes[0].message
        ref = read_vector(data_dir / "parcels.geojson")
        assert out.geometry.iloc[0].equals_exact(ref.geometry.iloc[0], tolerance=1e-3)

    def test_same_crs_no_note(self, data_dir):
        gdf = read_vector(data_dir / "parcels.geojson")
        out, notes = to_crs_checked(gdf, "EPSG:32610", source="p", what="parcels")
        assert notes == [] and out is gdf


class TestCheckPolygons:
    def test_repairs_and_names_ids(self, data_dir):
        gdf = read_vector(data_dir / "parcels_invalid.geojson")
        out, notes = check_polygons(gdf, id_column="parcel_id", source="x")
        assert out.is_valid.all() and "BOW" in notes[0].message and notes[0].kind == "repaired"
        assert out.area.iloc[-1] > 0

    @pytest.mark.parametrize(
        ("fixture", "kwargs", "exc", "fragment"),
        [
            ("parcels_invalid.geojson", {"invalid": "reject"}, GeometryError, "BOW"),
            ("parcels_unrepairable.geojson", {}, GeometryError, "FLAT"),
            ("parcels_dup_ids.geojson", {}, ColumnError, "A1"),
            ("parcels_points.geojson", {}, GeometryError, "not polygons: PT"),
        ],
    )
    def test_rejections(self, data_dir, fixture, kwargs, exc, fragment):
        gdf = read_vector(data_dir / fixture)
        with pytest.raises(exc, match=fragment):
            check_polygons(gdf, id_column="parcel_id", source=fixture, **kwargs)
