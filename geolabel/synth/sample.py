r"""Write the sample city to a folder: scene, parcels, POIs, notices, taxonomy, labels, truth.

``write_sample(out_dir)`` with the defaults reproduces the bundled ``data/sample/`` byte for
byte: every random draw comes from the seed, GeoPackages pin their timestamp with GDAL's
``OGR_CURRENT_DATE`` option, and text files are written with fixed ordering and ``\\n`` endings.
``MANIFEST.json`` records the SHA-256 of every file and the library versions that wrote them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely

from geolabel import __version__
from geolabel.crowd.simulate import CrowdSimulator, make_crowd, profiles_to_json
from geolabel.errors import InputFileError
from geolabel.raster.io import write_cog
from geolabel.synth.city import LAND_USE_CODES, City, CityConfig, build_city
from geolabel.synth.notices import generate_notices, write_notice_truth, write_notices
from geolabel.synth.scene import BAND_NAMES, render_scene, render_truth_mask, scene_transform
from geolabel.taxonomy import load_taxonomy

__all__ = ["GPKG_TIMESTAMP", "SampleManifest", "library_versions", "write_sample"]

#: The timestamp every GeoPackage of the sample records (``OGR_CURRENT_DATE``).
GPKG_TIMESTAMP = "2026-01-01T00:00:00.000Z"
#: Share of parcels in the starter set labeled by the simulated experts.
STARTER_FRACTION = 0.15
N_GOLD = 24
N_ANNOTATORS = 30
RESOURCES = "geolabel.synth.resources"


@dataclass(frozen=True, slots=True)
class SampleManifest:
    """What :func:`write_sample` wrote.

    Attributes:
        out_dir: The folder.
        size_px: Scene size in pixels.
        seed: Seed of the generator.
        crs: CRS of every georeferenced file.
        files: Relative path → SHA-256 of every file written.
        counts: Number of parcels, POIs, notices, starter labels, gold items, annotators.
        versions: Versions of the libraries that wrote the files.
    """

    out_dir: str
    size_px: int
    seed: int
    crs: str
    files: dict[str, str]
    counts: dict[str, int]
    versions: dict[str, str]


def library_versions() -> dict[str, str]:
    """Versions of everything that shapes the bytes of the sample's files."""
    return {
        "geolabel": __version__,
        "gdal": rasterio.__gdal_version__,
        "rasterio": rasterio.__version__,
        "pyogrio": pyogrio.__version__,
        "pyogrio_gdal": pyogrio.__gdal_version_string__,
        "numpy": np.__version__,
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
        "pandas": pd.__version__,
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, lineterminator="\n")


def _copy_resource(name: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = resources.files(RESOURCES).joinpath(name)
    with src.open("rb") as f_in, dest.open("wb") as f_out:
        shutil.copyfileobj(f_in, f_out)


def _spread_sample(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Farthest-point sampling: ``k`` indices spread over the points, starting at random."""
    chosen = [int(rng.integers(len(points)))]
    dist = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(k - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(points - points[nxt], axis=1))
    return np.array(sorted(chosen))


def _write_gpkg(city: City, path: Path) -> None:
    with pyogrio_config({"OGR_CURRENT_DATE": GPKG_TIMESTAMP}):
        pois = city.pois.drop(columns=["category"])
        for name, gdf in (
            ("parcels", city.parcels),
            ("pois", pois),
            ("streets", city.streets),
            ("districts", city.districts),
        ):
            pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG")


class pyogrio_config:  # a context manager, named like rasterio.Env
    """Set GDAL config options for pyogrio within a ``with`` block and restore them after."""

    def __init__(self, options: dict[str, str]) -> None:
        self.options = options
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> pyogrio_config:
        self.saved = {k: pyogrio.get_gdal_config_option(k) for k in self.options}
        pyogrio.set_gdal_config_options(self.options)
        return self

    def __exit__(self, *exc: object) -> None:
        pyogrio.set_gdal_config_options(self.saved)


def write_sample(
    out_dir: str | os.PathLike[str],
    *,
    size_px: int = 1024,
    seed: int = 0,
    n_notices: int | None = None,
    overwrite: bool = False,
) -> SampleManifest:
    """Generate the sample city and write it to ``out_dir``.

    Args:
        out_dir: Destination folder; created if missing.
        size_px: Scene width and height in pixels (0.5 m pixels; 1024 for the bundled sample).
        seed: Seed; the same seed and size give the same bytes.
        n_notices: Number of municipal notices; defaults to 200 at 1024 px, scaled with area.
        overwrite: Replace the files of an existing sample in ``out_dir``.

    Returns:
        The manifest of what was written (also saved as ``MANIFEST.json``).

    Raises:
        InputFileError: ``out_dir`` already holds a sample and ``overwrite`` is false, or it is
            a file.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputFileError(f"{out} is a file; give a folder to write the sample city into.")
    if (out / "MANIFEST.json").exists() and not overwrite:
        raise InputFileError(
            f"{out} already holds a sample city. Choose another folder, or pass --force to"
            " replace it."
        )
    config = CityConfig(size_px=size_px, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("city.gpkg",):  # GeoPackages are appended to; start from scratch
        (out / stale).unlink(missing_ok=True)
    city = build_city(config)
    transform = scene_transform(city)

    write_cog(
        out / "scene.tif",
        render_scene(city),
        transform=transform,
        crs=config.crs,
        nodata=0,
        band_names=BAND_NAMES,
        tags={"GEOLABEL_SYNTH": f"seed={seed} size={size_px}", "UNITS": "reflectance x 10000"},
    )
    _write_gpkg(city, out / "city.gpkg")

    # Taxonomies are shipped with the package and copied as they are.
    _copy_resource("taxonomy.yaml", out / "taxonomy.yaml")
    _copy_resource("poi.yaml", out / "taxonomies" / "poi.yaml")
    _copy_resource("notice_entities.yaml", out / "taxonomies" / "notice_entities.yaml")
    taxonomy = load_taxonomy(out / "taxonomy.yaml")

    # Notices refer to real parcels, addresses, APNs and streets.
    truth = city.truth
    parcels_df = pd.DataFrame(city.parcels.drop(columns="geometry")).merge(
        truth[["parcel_id", "land_use", "zoning"]], on="parcel_id"
    )
    streets_df = pd.DataFrame(city.streets.drop(columns="geometry"))
    n = n_notices if n_notices is not None else max(40, round(200 * (size_px / 1024) ** 2))
    notices = generate_notices(parcels_df, streets_df, n=n, seed=seed)
    write_notices(notices, out / "notices.jsonl")

    # The simulated crowd; its experts label a spatially spread starter set.
    classes = list(taxonomy.parcel_class_ids)
    crowd = make_crowd(classes, n_annotators=N_ANNOTATORS, seed=seed)
    sim_truth = truth.rename(columns={"parcel_id": "item", "land_use": "label"})
    sim = CrowdSimulator(sim_truth, crowd, classes, seed=seed, start="2026-01-05T09:00:00Z")
    rng = np.random.default_rng([seed, 7])
    centroids = shapely.get_coordinates(city.parcels.geometry.centroid.values)
    k_start = max(len(classes), round(STARTER_FRACTION * len(truth)))
    starter_idx = _spread_sample(centroids, k_start, rng)
    # The team makes sure every class has an example: add the easiest parcel of a missing class.
    have = set(truth["land_use"].to_numpy()[starter_idx])
    clear = truth[(truth["ambiguity"] == "none") & truth["land_use"].isin(classes)]
    for cls in classes:
        cands = clear[(clear["land_use"] == cls) & ~clear.index.isin(starter_idx)]
        if cls not in have and len(cands):
            pick = cands.sort_values(["difficulty", "parcel_id"]).index[0]
            starter_idx = np.sort(np.append(starter_idx, pick))
    experts = [p.annotator_id for p in crowd if p.kind == "expert"]
    tasks = pd.DataFrame(
        {
            "item": truth["parcel_id"].to_numpy()[starter_idx],
            "annotator": [experts[k % len(experts)] for k in range(len(starter_idx))],
        }
    )
    starter = sim.label(tasks)[["item", "annotator", "label", "created_at"]]
    _write_csv(starter, out / "labels" / "starter.csv")

    # Gold: clear-cut parcels outside the starter set, covering every class that has some.
    pool = truth[(truth["ambiguity"] == "none") & ~truth.index.isin(starter_idx)]
    pool = pool.sort_values(["difficulty", "parcel_id"])
    per_class = pool.groupby("land_use", sort=True).head(3)
    rest = pool.drop(per_class.index)
    extra = rest.iloc[rng.permutation(len(rest))[: max(0, N_GOLD - len(per_class))]]
    gold = pd.concat([per_class, extra]).sort_values("parcel_id")
    gold_df = gold[["parcel_id", "land_use"]].rename(
        columns={"parcel_id": "item", "land_use": "label"}
    )
    _write_csv(gold_df, out / "labels" / "gold.csv")

    # Truth: what the pipeline never reads except to score itself.
    tdir = out / "truth"
    _write_csv(truth, tdir / "parcels.csv")
    write_cog(
        tdir / "landuse_mask.tif",
        render_truth_mask(city),
        transform=transform,
        crs=config.crs,
        nodata=0,
        band_names=("land_use",),
        overview_resampling=rasterio.enums.Resampling.nearest,
    )
    classes_df = pd.DataFrame(
        {"code": list(LAND_USE_CODES.values()), "class": list(LAND_USE_CODES)}
    ).assign(in_taxonomy_v1=lambda d: d["class"].isin(taxonomy.class_ids))
    _write_csv(classes_df, tdir / "classes.csv")
    pois_truth = pd.DataFrame(city.pois[["poi_id", "name", "category"]])
    _write_csv(pois_truth, tdir / "pois.csv")
    write_notice_truth(notices, tdir / "notices.jsonl")
    _write_text(
        tdir / "annotators.json",
        json.dumps(profiles_to_json(crowd), indent=1, sort_keys=True) + "\n",
    )

    counts = {
        "parcels": len(city.parcels),
        "pois": len(city.pois),
        "streets": len(city.streets),
        "notices": len(notices),
        "starter_labels": len(starter),
        "gold_items": len(gold_df),
        "annotators": len(crowd),
        "mixed_use_parcels": int((truth["ambiguity"] == "mixed_use").sum()),
        "borderline_parcels": int((truth["ambiguity"] == "borderline").sum()),
    }
    _write_text(out / "README.md", _readme(config, counts, truth))
    files = {
        str(p.relative_to(out)).replace(os.sep, "/"): _sha256(p)
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "MANIFEST.json"
    }
    manifest = SampleManifest(
        out_dir=str(out),
        size_px=size_px,
        seed=seed,
        crs=config.crs,
        files=files,
        counts=counts,
        versions=library_versions(),
    )
    record = asdict(manifest)
    record.pop("out_dir")
    _write_text(out / "MANIFEST.json", json.dumps(record, indent=1, sort_keys=True) + "\n")
    return manifest


def _readme(config: CityConfig, counts: dict[str, int], truth: pd.DataFrame) -> str:
    uses = truth["land_use"].value_counts().sort_index()
    template = resources.files(RESOURCES).joinpath("sample_readme.md").read_text(encoding="utf-8")
    return Template(template).substitute(
        size_px=config.size_px,
        seed=config.seed,
        crs=config.crs,
        extent=f"{config.extent_m:.0f}",
        easting=f"{config.origin[0]:.0f}",
        northing=f"{config.origin[1]:.0f}",
        pixel_size=config.pixel_size_m,
        starter_fraction=f"{STARTER_FRACTION:.0%}",
        use_lines="\n".join(f"| {k} | {v} |" for k, v in uses.items()),
        **counts,
    )
