"""Create a project from scenes, parcels and notices, and describe a project or a data folder.

``init_project`` checks every input before anything is written (CRS and geotransform of each
scene, parcel columns, ids and geometry, the taxonomy), reprojects vector inputs to the project
CRS and says so, and builds the GeoPackage in a temporary file that replaces the target only when
complete, so a failed ``init`` never leaves a half-made project or harms an existing one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import geopandas as gpd
import pandas as pd
import pyogrio
from pyproj import CRS
from shapely.geometry import box

from geolabel.errors import (
    ColumnError,
    CRSMismatchError,
    GeometryError,
    InputFileError,
    ProjectExistsError,
    TaxonomyError,
)
from geolabel.raster.io import RasterInfo, open_scene_info
from geolabel.store import Project, ProjectSummary
from geolabel.taxonomy import Taxonomy, load_taxonomy
from geolabel.vector import InputNote, check_polygons, read_vector, to_crs_checked

__all__ = [
    "FolderSummary",
    "InitResult",
    "VectorLayerInfo",
    "default_taxonomy_path",
    "describe",
    "describe_folder",
    "init_project",
    "init_sample_project",
]

PARCEL_COLUMNS = ("parcel_id",)


@dataclass(frozen=True, slots=True)
class InitResult:
    """What ``geolabel init`` made.

    Attributes:
        summary: The new project's summary.
        notes: What was changed in the inputs (reprojections, repairs).
    """

    summary: ProjectSummary
    notes: tuple[InputNote, ...]


@dataclass(frozen=True, slots=True)
class VectorLayerInfo:
    """One layer of a vector file in a data folder."""

    path: str
    layer: str
    geometry_type: str | None
    count: int
    crs: str | None


@dataclass(frozen=True, slots=True)
class FolderSummary:
    """What a data folder (such as ``data/sample``) holds.

    Attributes:
        path: The folder.
        scenes: Every raster outside ``truth/``.
        vectors: Every layer of every vector file outside ``truth/``.
        taxonomy: ``name v<version>`` of ``taxonomy.yaml`` when present.
        taxonomy_classes: Its class ids.
        tables: Row counts of CSV and JSONL files outside ``truth/``.
        truth: Files under ``truth/`` (only listed; never read here).
        crs: The CRSs found, one entry each.
    """

    path: str
    scenes: tuple[RasterInfo, ...]
    vectors: tuple[VectorLayerInfo, ...]
    taxonomy: str | None
    taxonomy_classes: tuple[str, ...]
    tables: dict[str, int] = field(default_factory=dict)
    truth: tuple[str, ...] = ()
    crs: tuple[str, ...] = ()


def default_taxonomy_path() -> Path:
    """The land-use taxonomy v1 shipped with geolabel."""
    return Path(__file__).parent / "synth" / "resources" / "taxonomy.yaml"


def _crs_name(crs: object) -> str:
    c = CRS.from_user_input(crs)
    epsg = c.to_epsg()
    return f"EPSG:{epsg}" if epsg else c.to_string()


def _scenes_layer(scenes: Sequence[RasterInfo], crs: str, project_dir: Path) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    for k, info in enumerate(scenes, start=1):
        footprint = gpd.GeoSeries([box(*info.bounds)], crs=info.crs).to_crs(crs).iloc[0]
        try:
            rel = os.path.relpath(Path(info.path).resolve(), project_dir.resolve())
        except ValueError:  # another drive on Windows
            rel = str(Path(info.path).resolve())
        rows.append(
            {
                "scene_id": f"S{k:03d}",
                "path": rel,
                "crs": info.crs,
                "width": info.width,
                "height": info.height,
                "bands": info.count,
                "band_names": ",".join(info.band_names),
                "dtype": info.dtype,
                "nodata": info.nodata,
                "res_x": info.res[0],
                "res_y": info.res[1],
            }
        )
        geoms.append(footprint)
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=crs)


def _read_notices(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputFileError(f"The notices file {path} does not exist. Check the path.")
    records = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputFileError(
                    f"{path}, line {line_no}: not valid JSON ({exc.msg}). Notices are JSON Lines:"
                    " one object per line."
                ) from exc
            if not isinstance(rec, dict):
                raise InputFileError(f"{path}, line {line_no}: expected a JSON object per line.")
            records.append(rec)
    df = pd.DataFrame(records)
    missing = [c for c in ("notice_id", "text") if c not in df.columns]
    if missing:
        raise ColumnError(
            f"The notices in {path} lack {', '.join(map(repr, missing))}. Each line needs at"
            f" least notice_id and text; fields present: {', '.join(df.columns) or '(none)'}."
        )
    if df["notice_id"].duplicated().any():
        dup = df.loc[df["notice_id"].duplicated(), "notice_id"].astype(str).tolist()
        raise ColumnError(f"Duplicate notice_id values in {path}: {', '.join(dup[:10])}.")
    return df


def init_project(
    path: str | os.PathLike[str],
    *,
    scenes: Sequence[str | os.PathLike[str]],
    parcels: str | os.PathLike[str],
    parcels_layer: str | None = None,
    id_column: str = "parcel_id",
    taxonomy: str | os.PathLike[str] | None = None,
    pois: str | os.PathLike[str] | None = None,
    pois_layer: str | None = None,
    regions: str | os.PathLike[str] | None = None,
    regions_layer: str | None = None,
    region_column: str = "district",
    notices: str | os.PathLike[str] | None = None,
    streets: str | os.PathLike[str] | None = None,
    streets_layer: str | None = None,
    crs: str | None = None,
    invalid: Literal["repair", "reject"] = "repair",
    name: str | None = None,
    overwrite: bool = False,
) -> InitResult:
    """Create a project GeoPackage from scenes and parcels (and optionally POIs, regions, notices).

    Args:
        path: The project file to create (``.gpkg``).
        scenes: One or more GeoTIFF/COG scenes.
        parcels: Vector file of parcel polygons.
        parcels_layer: Layer of ``parcels`` when it has several.
        id_column: Column of unique parcel ids (stored as ``parcel_id``).
        taxonomy: Land-use taxonomy YAML; geolabel's land-use v1 when None.
        pois: Vector file of POI points (needs ``poi_id``).
        pois_layer: Layer of ``pois``.
        regions: Vector file of region (district) polygons.
        regions_layer: Layer of ``regions``.
        region_column: Column of ``regions`` that names each region.
        notices: JSON Lines file of notices (``notice_id``, ``text``...).
        streets: Vector file of streets (needs ``name``; ``order`` along the street grid is
            used when given): notices' addresses and cross streets are linked to parcels with
            these names too (:class:`geolabel.text.linking.Gazetteer`).
        streets_layer: Layer of ``streets``.
        crs: Project CRS; the first scene's CRS when None. Must be projected (metres).
        invalid: ``repair`` or ``reject`` invalid parcel geometries.
        name: Project name; the file stem when None.
        overwrite: Replace an existing project file.

    Returns:
        The new project's summary and what was changed in the inputs.

    Raises:
        ProjectExistsError: ``path`` exists and ``overwrite`` is false.
        GeolabelError: Any input is wrong (the message says which and how to fix it).
    """
    out = Path(path)
    if out.suffix.lower() != ".gpkg":
        raise InputFileError(f"A project is a GeoPackage: give a path ending in .gpkg (got {out}).")
    if out.exists() and not overwrite:
        raise ProjectExistsError(
            f"{out} already exists. Choose another name, or pass --force to replace it"
            " (its annotations would be lost)."
        )
    if not scenes:
        raise InputFileError("Give at least one scene (--scene PATH).")
    infos = [open_scene_info(s) for s in scenes]
    notes: list[InputNote] = []
    for info in infos:
        if "alpha" in info.colorinterp:
            notes.append(
                InputNote(
                    "alpha",
                    f"{info.path} tags band {info.colorinterp.index('alpha') + 1} as alpha;"
                    " geolabel reads every band as data.",
                )
            )
    project_crs = _crs_name(crs or infos[0].crs)
    if not CRS.from_user_input(project_crs).is_projected:
        raise CRSMismatchError(
            f"The project CRS {project_crs} is geographic (degrees); areas and distances need a"
            " projected CRS in metres. Pass --crs with a UTM zone, e.g. --crs EPSG:32611."
        )
    tax_path = Path(taxonomy) if taxonomy is not None else default_taxonomy_path()
    tax: Taxonomy = load_taxonomy(tax_path)
    if tax.item_kind not in ("parcel", "pixel"):
        raise TaxonomyError(
            f"{tax_path} is a taxonomy of {tax.item_kind} items; the project needs the land-use"
            " taxonomy of parcels (item_kind: parcel)."
        )
    parcels_path = Path(parcels)
    gdf = read_vector(
        parcels_path,
        layer=parcels_layer,
        required=(id_column,),
        what="parcels",
        layer_option="--parcels-layer",
    )
    gdf, n1 = to_crs_checked(gdf, project_crs, source=str(parcels_path), what="parcels")
    gdf, n2 = check_polygons(gdf, id_column=id_column, source=str(parcels_path), invalid=invalid)
    notes += n1 + n2
    if id_column != "parcel_id":
        if "parcel_id" in gdf.columns:
            raise ColumnError(
                f"{parcels_path} has both {id_column!r} and 'parcel_id'; rename one of them."
            )
        gdf = gdf.rename(columns={id_column: "parcel_id"})
    gdf["parcel_id"] = gdf["parcel_id"].astype(str)
    footprints = _scenes_layer(infos, project_crs, out.parent)
    covered = gdf.intersects(footprints.union_all())
    if not covered.any():
        raise GeometryError(
            f"None of the parcels in {parcels_path} overlap the scene(s). Check that both are of"
            f" the same place and that the parcels' CRS ({gdf.crs.to_string()}) is right."
        )
    if not covered.all():
        outside = gdf.loc[~covered, "parcel_id"].tolist()
        notes.append(
            InputNote(
                "outside",
                f"{len(outside)} parcel(s) lie outside every scene and cannot be pre-labeled:"
                f" {', '.join(outside[:10])}{'...' if len(outside) > 10 else ''}.",
            )
        )

    layers: list[tuple[str, gpd.GeoDataFrame]] = [("scenes", footprints), ("parcels", gdf)]
    item_frames = [
        pd.DataFrame({"item": gdf["parcel_id"], "kind": "parcel", "ref": gdf["parcel_id"]})
    ]
    if pois is not None:
        pois_path = Path(pois)
        pg = _extra_layer(
            pois_path, pois_layer, "poi_id", "POIs", "--pois-layer", project_crs, notes
        )
        pg["poi_id"] = pg["poi_id"].astype(str)
        if pg["poi_id"].duplicated().any():
            dup = pg.loc[pg["poi_id"].duplicated(), "poi_id"].tolist()
            raise ColumnError(f"Duplicate poi_id values in {pois_path}: {', '.join(dup[:10])}.")
        layers.append(("pois", pg))
        item_frames.append(pd.DataFrame({"item": pg["poi_id"], "kind": "poi", "ref": pg["poi_id"]}))
    if regions is not None:
        rg = _extra_layer(
            Path(regions), regions_layer, region_column, "regions", "--regions-layer",
            project_crs, notes,
        )  # fmt: skip
        layers.append(("regions", rg.rename(columns={region_column: "region"})))
    if streets is not None:
        streets_path = Path(streets)
        sg = _extra_layer(
            streets_path, streets_layer, "name", "streets", "--streets-layer", project_crs, notes
        )
        named = sg["name"].notna() & (sg["name"].astype(str).str.strip() != "")
        if not named.all():
            notes.append(
                InputNote(
                    "unnamed",
                    f"{int((~named).sum())} street(s) in {streets_path} have no name and were"
                    " left out (notices name streets, so an unnamed one links nothing).",
                )
            )
        sg = sg[named].copy()
        sg["name"] = sg["name"].astype(str).str.strip()
        layers.append(("streets", sg))
    notices_df = _read_notices(Path(notices)) if notices is not None else None

    # Build the whole project beside the target and move it into place only when complete.
    staging = out.with_name(f".{out.stem}.init-tmp.gpkg")
    staging.unlink(missing_ok=True)
    try:
        with Project.create(staging, crs=project_crs, name=name or out.stem) as project:
            for layer_name, layer in layers:
                project.write_layer(layer, layer_name)
            project.add_taxonomy_version(tax.name, tax.version, tax.to_yaml(), tax.sha256)
            items = pd.concat(item_frames, ignore_index=True)
            if notices_df is not None:
                project.add_notices(notices_df)
                ids = notices_df["notice_id"].astype(str)
                notice_items = pd.DataFrame({"item": ids, "kind": "notice", "ref": ids})
                items = pd.concat([items, notice_items], ignore_index=True)
            project.add_items(items)
        os.replace(staging, out)
    finally:
        staging.unlink(missing_ok=True)
    with Project.open(out) as project:
        return InitResult(summary=project.summary(), notes=tuple(notes))


def describe_folder(path: str | os.PathLike[str]) -> FolderSummary:
    """Describe a data folder: scenes, vector layers, taxonomy and tables; truth only listed.

    Args:
        path: The folder (e.g. ``data/sample``).

    Returns:
        The folder summary.

    Raises:
        InputFileError: The folder does not exist or holds nothing geolabel reads.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputFileError(f"{root} is not a folder or a project file (.gpkg).")
    scenes, vectors, tables, truth, crss = [], [], {}, [], []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(root)).replace(os.sep, "/")
        if rel.startswith("truth/"):
            truth.append(rel)
            continue
        suffix = p.suffix.lower()
        if suffix in (".tif", ".tiff", ".vrt", ".jp2"):
            info = open_scene_info(p)
            scenes.append(info)
            crss.append(info.crs)
        elif suffix in (".gpkg", ".geojson", ".shp", ".fgb"):
            for layer, geom_type in pyogrio.list_layers(p):
                meta = pyogrio.read_info(p, layer=layer)
                crs = _crs_name(meta["crs"]) if meta.get("crs") else None
                vectors.append(
                    VectorLayerInfo(rel, str(layer), geom_type, int(meta["features"]), crs)
                )
                if crs:
                    crss.append(crs)
        elif suffix == ".csv":
            with p.open(encoding="utf-8") as f:
                tables[rel] = max(0, sum(1 for _ in f) - 1)
        elif suffix == ".jsonl":
            with p.open(encoding="utf-8") as f:
                tables[rel] = sum(1 for line in f if line.strip())
    tax_name: str | None = None
    tax_classes: tuple[str, ...] = ()
    if (root / "taxonomy.yaml").exists():
        tax = load_taxonomy(root / "taxonomy.yaml")
        tax_name, tax_classes = f"{tax.name} v{tax.version}", tax.class_ids
    if not scenes and not vectors and tax_name is None:
        raise InputFileError(
            f"{root} holds no scene, vector layer or taxonomy.yaml. Point geolabel info at a"
            " data folder (e.g. data/sample) or a project .gpkg."
        )
    return FolderSummary(
        path=str(root),
        scenes=tuple(scenes),
        vectors=tuple(vectors),
        taxonomy=tax_name,
        taxonomy_classes=tuple(tax_classes),
        tables=tables,
        truth=tuple(truth),
        crs=tuple(dict.fromkeys(crss)),
    )


def describe(path: str | os.PathLike[str]) -> ProjectSummary | FolderSummary:
    """Summarise a project file (``.gpkg``) or a data folder."""
    p = Path(path)
    if p.is_dir():
        return describe_folder(p)
    if not p.exists():
        raise InputFileError(f"{p} does not exist. Give a project .gpkg or a data folder.")
    with Project.open(p) as project:
        return project.summary()


def _extra_layer(
    path: Path,
    layer: str | None,
    column: str,
    what: str,
    layer_option: str,
    crs: str,
    notes: list[InputNote],
) -> gpd.GeoDataFrame:
    """Read a POI, region or street layer that needs ``column``, in ``crs`` (noted if moved)."""
    frame = read_vector(path, layer=layer, required=(column,), what=what, layer_option=layer_option)
    frame, moved = to_crs_checked(frame, crs, source=str(path), what=what)
    notes += moved
    return frame


def init_sample_project(
    sample: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    overwrite: bool = False,
) -> InitResult:
    """A project of every layer of a sample folder (``geolabel sample`` or ``data/sample``).

    The scene, the parcels, POIs and districts of ``city.gpkg``, the notices and taxonomy v1;
    no annotations (the starter set and gold are the loop's:
    :func:`geolabel.loop.demo.project_from_sample`).

    Args:
        sample: The sample folder.
        path: The project file to create.
        name: Project name (default: the file's stem).
        overwrite: Replace an existing project file.

    Returns:
        What :func:`init_project` returns.
    """
    sample = Path(sample)
    city = sample / "city.gpkg"
    return init_project(
        path,
        scenes=[sample / "scene.tif"],
        parcels=city,
        parcels_layer="parcels",
        pois=city,
        pois_layer="pois",
        regions=city,
        regions_layer="districts",
        notices=sample / "notices.jsonl",
        streets=city,
        streets_layer="streets",
        taxonomy=sample / "taxonomy.yaml",
        name=name,
        overwrite=overwrite,
    )
