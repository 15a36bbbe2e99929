"""Write the tiny fixture files of the test suite, each named after the case it tests.

Run ``python tests/data/make_data.py`` from the project root to regenerate them; the outputs are
committed beside this script (see README.md here).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

HERE = Path(__file__).parent
SIZE = 32
EPSG = 32610
ORIGIN = (551_000.0, 4_182_016.0)  # upper-left corner; 32 px at 0.5 m = 16 m
TRANSFORM = Affine(0.5, 0.0, ORIGIN[0], 0.0, -0.5, ORIGIN[1])


def _image(bands: int, dtype: str = "uint16") -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(1, 2000, size=(bands, SIZE, SIZE)).astype(dtype)


def _tif(name: str, bands: int = 4, **profile: object) -> None:
    base = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": bands,
        "dtype": "uint16",
        "crs": CRS.from_epsg(EPSG),
        "transform": TRANSFORM,
        "photometric": "MINISBLACK",
    }
    base.update(profile)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(HERE / name, "w", **base) as ds:
        ds.write(_image(bands, str(base["dtype"])))


def _square(x: float, y: float, side: float) -> list[list[float]]:
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]


def _geojson(
    name: str, features: list[dict[str, object]], crs: str | None = f"EPSG:{EPSG}"
) -> None:
    data: dict[str, object] = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        data["crs"] = {
            "type": "name",
            "properties": {"name": crs.replace("EPSG:", "urn:ogc:def:crs:EPSG::")},
        }
    (HERE / name).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _parcel(pid: str, coords: list[list[float]], geom_type: str = "Polygon") -> dict[str, object]:
    geometry: dict[str, object] = {
        "type": geom_type,
        "coordinates": [coords] if geom_type == "Polygon" else coords,
    }
    return {
        "type": "Feature",
        "properties": {"parcel_id": pid, "address": f"1 {pid} Street"},
        "geometry": geometry,
    }


def main() -> None:
    """Write every fixture."""
    x0, y_top = ORIGIN
    y0 = y_top - SIZE * 0.5
    _tif("scene_small.tif")  # a good 4-band uint16 scene, 32 x 32 px
    _tif("nocrs.tif", crs=None)  # no CRS
    _tif("no_geotransform.tif", transform=Affine.identity())  # a CRS but no geotransform
    _tif("rgba_tagged.tif", photometric="RGB", alpha="YES", dtype="uint8")  # band 4 tagged alpha
    (HERE / "not_a_raster.tif").write_bytes(b"this is not a GeoTIFF\n" * 4)

    good = [_parcel(f"A{k}", _square(x0 + 1 + 5 * k, y0 + 1, 4.0)) for k in range(3)]
    _geojson("parcels.geojson", good)
    # GeoJSON without a "crs" member means WGS 84 (RFC 7946): UTM metres there are a user error.
    _geojson("parcels_utm_as_wgs84.geojson", good, crs=None)
    import geopandas as gpd

    nocrs = gpd.read_file(HERE / "parcels.geojson").set_crs(None, allow_override=True)
    (HERE / "parcels_nocrs.gpkg").unlink(missing_ok=True)
    nocrs.to_file(HERE / "parcels_nocrs.gpkg", layer="parcels", driver="GPKG")
    # The same parcels in WGS 84 (so init must reproject them and say so).
    from pyproj import Transformer

    to_wgs = Transformer.from_crs(EPSG, 4326, always_xy=True)
    wgs = [
        _parcel(
            f["properties"]["parcel_id"],
            [list(to_wgs.transform(*pt)) for pt in f["geometry"]["coordinates"][0]],
        )  # type: ignore[index]
        for f in good
    ]
    _geojson("parcels_wgs84.geojson", wgs, crs="EPSG:4326")
    bowtie = [
        [x0 + 1, y0 + 1],
        [x0 + 5, y0 + 5],
        [x0 + 5, y0 + 1],
        [x0 + 1, y0 + 5],
        [x0 + 1, y0 + 1],
    ]
    _geojson("parcels_invalid.geojson", [*good, _parcel("BOW", bowtie)])
    flat = [[x0 + 1, y0 + 1], [x0 + 3, y0 + 1], [x0 + 5, y0 + 1], [x0 + 1, y0 + 1]]
    _geojson("parcels_unrepairable.geojson", [*good, _parcel("FLAT", flat)])
    _geojson("parcels_dup_ids.geojson", [*good, _parcel("A1", _square(x0 + 1, y0 + 8, 3.0))])
    _geojson(
        "parcels_points.geojson",
        [
            *good,
            {
                "type": "Feature",
                "properties": {"parcel_id": "PT"},
                "geometry": {"type": "Point", "coordinates": [x0 + 2, y0 + 2]},
            },
        ],
    )
    no_id = [dict(f, properties={"pid": f["properties"]["parcel_id"]}) for f in good]  # type: ignore[index]
    _geojson("parcels_no_id.geojson", no_id)
    far = [_parcel("FAR", _square(x0 + 10_000, y0 + 10_000, 4.0))]
    _geojson("parcels_outside.geojson", far)

    rows = [
        "item,annotator,label",
        "A0,w1,residential",
        "A1,w1,commercial",
        "A0,w2,residential",
        "A2,w2,park",
    ]
    (HERE / "votes.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    bad = [*rows, "A1,w2,shopping_mall"]
    (HERE / "votes_bad_label.csv").write_text("\n".join(bad) + "\n", encoding="utf-8")
    (HERE / "votes_misnamed.csv").write_text(
        "item_id,worker_id,label\nA0,w1,residential\n", encoding="utf-8"
    )
    (HERE / "taxonomy_invalid.yaml").write_text(
        "name: land_use\nversion: 1\nitem_kind: parcel\nclasses:\n"
        "  - {id: residential, code: 1, name: Residential, colour: '#ffff00', definition: Homes.}\n"
        "  - {id: residential, code: 2, name: Homes, colour: '#ff0000', definition: Dup.}\n"
        "  - {id: shop, code: 3, name: Shop, definition: No colour., parent: mall}\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
