"""Task records from a project: items with their chips, pre-labels and gold, for every format.

:func:`build_tasks` is the one place that turns a project's items into
:class:`~geolabel.interop.records.TaskRecord` s -- parcels and POIs as PNG chips cut from the
project's scene (parcels with their outline drawn), tiles as chips of their exact window with a
pre-label mask, notices as text with pre-label spans -- so Label Studio, Toloka, SageMaker and
later platforms share it rather than copy it.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import rasterio
import rasterio.features
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import DatasetReader
from rasterio.warp import reproject
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from shapely.geometry.base import BaseGeometry

from geolabel.errors import InputFileError, LayerError, StoreError, TaxonomyError
from geolabel.interop.geometry import reproject_geometry
from geolabel.interop.records import ChipRef, ItemKind, TaskRecord
from geolabel.raster.io import RasterInfo
from geolabel.store import ITEM_KINDS, Project
from geolabel.taxonomy import Taxonomy, load_taxonomy

__all__ = [
    "OUTLINE_RGB",
    "build_tasks",
    "checked_gold",
    "ensure_tile_items",
    "kind_taxonomy",
    "render_chip",
]

OUTLINE_RGB: Final[tuple[int, int, int]] = (255, 255, 0)
"""Colour of the parcel outline drawn on chips (yellow)."""

_KIND_TAXONOMY: Final[dict[str, str]] = {"poi": "poi", "notice": "notice_entities"}


def kind_taxonomy(
    project: Project, kind: str, taxonomy_file: str | os.PathLike[str] | None = None
) -> tuple[Taxonomy, tuple[str, ...]]:
    """Return the taxonomy labeling an item kind, and the labels it allows for that kind.

    Parcels take the project's land-use classes that a parcel may carry; tiles every land-use
    class (pixel-only ones such as road included); POIs the stored ``poi`` taxonomy; notices
    the stored ``notice_entities`` taxonomy. A ``taxonomy_file`` for POIs or notices is stored
    in the project first (once; a stored version never changes).

    Args:
        project: The project.
        kind: Item kind.
        taxonomy_file: YAML of the POI or notice taxonomy to store and use.

    Returns:
        The taxonomy and the allowed labels.

    Raises:
        StoreError: No taxonomy for the kind is stored (the message says how to add one).
        TaxonomyError: ``taxonomy_file`` labels another kind of item.
    """
    if kind not in ITEM_KINDS:
        raise StoreError(f"Unknown item kind {kind!r}; kinds are: {', '.join(ITEM_KINDS)}.")
    if kind in ("parcel", "tile"):
        taxonomy = project.current_taxonomy()
        allowed = taxonomy.parcel_class_ids if kind == "parcel" else taxonomy.class_ids
        return taxonomy, tuple(allowed)
    name = _KIND_TAXONOMY[kind]
    if taxonomy_file is not None:
        loaded = load_taxonomy(taxonomy_file)
        if loaded.item_kind != kind:
            raise TaxonomyError(
                f"{taxonomy_file} labels {loaded.item_kind} items, not {kind}s; give the {kind} "
                f"taxonomy (item_kind: {kind})."
            )
        project.add_taxonomy_version(loaded.name, loaded.version, loaded.to_yaml(), loaded.sha256)
        name = loaded.name
    try:
        taxonomy = project.current_taxonomy(name)
    except StoreError as exc:
        raise StoreError(
            f"{kind} items need the {name!r} taxonomy, which project {project.path} does not "
            f"store yet: pass its YAML (--taxonomy, e.g. data/sample/taxonomies/{name}.yaml "
            "for the sample) once and it is stored with the project."
        ) from exc
    return taxonomy, taxonomy.class_ids


def checked_gold(
    gold: Mapping[str, str] | None, taxonomy: Taxonomy, allowed: Sequence[str]
) -> dict[str, str]:
    """Gold answers (item -> label) as a dict, every label one the item kind allows.

    Raises:
        StoreError: A gold label outside ``allowed`` (the message lists them).
    """
    out = dict(gold or {})
    bad = sorted({v for v in out.values() if v not in allowed})
    if bad:
        raise StoreError(
            f"Gold answers use labels not in {taxonomy.label}: {', '.join(bad)}; allowed: "
            f"{', '.join(allowed)}."
        )
    return out


def ensure_tile_items(project: Project) -> pd.DataFrame:
    """Add every tile of the ``tiles`` layer as a ``tile`` item (ref = tile id) if missing.

    Args:
        project: A tiled project (``geolabel tile``).

    Returns:
        The ``tiles`` layer.

    Raises:
        LayerError: The project has not been tiled.
    """
    try:
        tiles = project.read_layer("tiles")
    except LayerError as exc:
        raise LayerError(
            f"Project {project.path} has no tiles yet ({exc}); run `geolabel tile "
            f"{project.path}` first."
        ) from None
    ids = tiles["tile_id"].astype(str)
    project.add_items(pd.DataFrame({"item": ids, "kind": "tile", "ref": ids}))
    return tiles


def _stretch(array: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Scale each band to uint8 between its 2nd and 98th percentile over valid pixels."""
    out = np.zeros(array.shape, dtype=np.uint8)
    for b in range(array.shape[0]):
        values = array[b][valid]
        if values.size == 0:
            continue
        lo, hi = np.percentile(values, [2, 98])
        scale = 255.0 / max(float(hi - lo), 1e-9)
        out[b] = np.clip((array[b].astype(np.float64) - lo) * scale, 0, 255).astype(np.uint8)
    out[:, ~valid] = 0
    return out


def render_chip(
    scene: RasterInfo,
    scene_id: str,
    window: Window,
    path: str | os.PathLike[str],
    *,
    project_crs: str,
    outline: BaseGeometry | None = None,
    dataset: DatasetReader | None = None,
) -> ChipRef:
    """Cut a window of a scene into an RGB PNG, optionally with a polygon's outline drawn.

    Bands 1-3 are shown as red, green, blue (a single-band scene as grey), each stretched
    between its 2nd and 98th percentile; nodata and pixels outside the scene are black. The
    outline (2 px wide, :data:`OUTLINE_RGB`) is burned with ``all_touched`` so thin parcels stay
    visible. PNG, because Label Studio refuses TIFF uploads.

    Args:
        scene: The scene.
        scene_id: Its id in the project.
        window: Whole-pixel window of the scene (may extend past its edges).
        path: Where to write the PNG.
        project_crs: Project CRS (``outline`` is in it; chip bounds are reported in it).
        outline: A polygon to outline, in the project CRS.
        dataset: The scene, already open (opened here when None).

    Returns:
        The chip record (window, transform and bounds in the scene's CRS grid).
    """
    col_off, row_off = int(window.col_off), int(window.row_off)
    width, height = int(window.width), int(window.height)
    transform = window_transform(window, Affine(*scene.transform))
    with contextlib.ExitStack() as stack:
        src = dataset if dataset is not None else stack.enter_context(rasterio.open(scene.path))
        bands = [1, 2, 3] if src.count >= 3 else [1, 1, 1]
        data = np.zeros((3, height, width), dtype=src.dtypes[0])
        valid = np.zeros((height, width), dtype=bool)
        r0, c0 = max(row_off, 0), max(col_off, 0)
        r1, c1 = min(row_off + height, src.height), min(col_off + width, src.width)
        if r1 > r0 and c1 > c0:  # read the part inside the scene (no slow boundless VRT)
            inner = Window(c0, r0, c1 - c0, r1 - r0)
            rows = slice(r0 - row_off, r1 - row_off)
            cols = slice(c0 - col_off, c1 - col_off)
            data[:, rows, cols] = src.read(bands, window=inner)
            valid[rows, cols] = src.read_masks(1, window=inner) > 0
    rgb = _stretch(data, valid)
    if outline is not None and not outline.is_empty:
        ring = reproject_geometry(outline.boundary, project_crs, scene.crs)
        burned = rasterio.features.rasterize(
            [(ring, 1)], out_shape=(height, width), transform=transform, all_touched=True
        )
        burned = np.maximum(burned, np.roll(burned, 1, axis=0))  # 2 px wide
        for b, value in enumerate(OUTLINE_RGB):
            rgb[b][burned > 0] = value
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a PNG chip has no CRS
        with (
            rasterio.Env(GDAL_PAM_ENABLED="NO"),
            rasterio.open(
                out, "w", driver="PNG", width=width, height=height, count=3, dtype="uint8"
            ) as dst,
        ):
            dst.write(rgb)
    left, top = transform @ (0, 0)
    right, bottom = transform @ (width, height)
    bounds = (min(left, right), min(top, bottom), max(left, right), max(top, bottom))
    return ChipRef(
        path=str(out),
        scene_id=scene_id,
        window=(col_off, row_off, width, height),
        transform=(transform.a, transform.b, transform.c, transform.d, transform.e, transform.f),
        bounds=bounds,
        crs=scene.crs,
    )


def _chip_window(
    geometry: BaseGeometry, scene: RasterInfo, project_crs: str, margin: float, min_px: int
) -> Window:
    """Whole-pixel window around a geometry, with a margin (share of its size) and min size."""
    minx, miny, maxx, maxy = reproject_geometry(geometry, project_crs, scene.crs).bounds
    inverse = ~Affine(*scene.transform)
    cols, rows = zip(*(inverse @ (x, y) for x in (minx, maxx) for y in (miny, maxy)), strict=True)
    c0, c1, r0, r1 = min(cols), max(cols), min(rows), max(rows)
    pad_c = max((c1 - c0) * margin, (min_px - (c1 - c0)) / 2, 0)
    pad_r = max((r1 - r0) * margin, (min_px - (r1 - r0)) / 2, 0)
    col0, row0 = math.floor(c0 - pad_c), math.floor(r0 - pad_r)
    col1, row1 = math.ceil(c1 + pad_c), math.ceil(r1 + pad_r)
    return Window(col0, row0, col1 - col0, row1 - row0)


def _scene_for(
    geometry: BaseGeometry, scenes: Mapping[str, RasterInfo], project_crs: str
) -> tuple[str, RasterInfo] | None:
    """The first scene whose footprint holds the geometry's centre."""
    from shapely.geometry import box

    for scene_id, info in scenes.items():
        centre = reproject_geometry(geometry.centroid, project_crs, info.crs)
        if box(*info.bounds).contains(centre):
            return scene_id, info
    return None


def _latest_predictions(
    project: Project, model_version: str | None, items: Sequence[str]
) -> pd.DataFrame:
    """Each item's newest prediction (of ``model_version`` only, when given), indexed by item."""
    preds = project.predictions(model_version)
    preds = preds[preds["item"].isin(set(items))]
    preds = preds.sort_values("created_at", kind="stable")
    return preds.drop_duplicates("item", keep="last").set_index("item")


def _read_class_map(path: Path, info: RasterInfo, window: Window) -> np.ndarray:
    """A class-code raster resampled (nearest) onto a tile window of the scene grid."""
    height, width = int(window.height), int(window.width)
    out = np.zeros((height, width), dtype=np.uint8)
    try:
        with rasterio.open(path) as src:
            reproject(
                source=rasterio.band(src, 1),
                destination=out,
                dst_transform=window_transform(window, Affine(*info.transform)),
                dst_crs=info.crs,
                resampling=Resampling.nearest,
                dst_nodata=0,
            )
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(f"Cannot read the class map {path}: {exc}.") from exc
    return out


def build_tasks(
    project: Project,
    kind: ItemKind,
    chips_dir: str | os.PathLike[str] | None = None,
    *,
    items: Sequence[str] | None = None,
    model_version: str | None = None,
    gold: Mapping[str, str] | None = None,
    class_map: str | os.PathLike[str] | None = None,
    notice_prelabels: bool = False,
    margin: float = 0.25,
    min_chip_px: int = 64,
) -> list[TaskRecord]:
    """Build the tasks of one item kind, rendering chips where the kind needs them.

    Args:
        project: The project.
        kind: ``parcel``, ``poi``, ``tile`` or ``notice``.
        chips_dir: Folder for the PNG chips (required for every kind but ``notice``).
        items: Only these item ids (all items of the kind when None).
        model_version: Pre-labels of this model for parcels and POIs (each item's newest
            prediction when None).
        gold: Known answers (item -> label); those items become gold/control tasks.
        class_map: A raster of taxonomy class codes (0 = none) whose pixels pre-label tiles.
        notice_prelabels: Pre-label notices with the shipped NER pipeline.
        margin: Context around a parcel or POI, as a share of its size.
        min_chip_px: Smallest chip side in pixels.

    Returns:
        One task per item, in item order.

    Raises:
        StoreError: Unknown item ids, or no items of the kind.
        InputFileError: ``chips_dir`` missing for a kind with chips, or a missing class map.
    """
    from geolabel.raster.index import project_scenes

    tiles = ensure_tile_items(project) if kind == "tile" else None
    stored = project.items(kind)
    wanted = list(stored["item"].astype(str))
    if items is not None:
        unknown = sorted(set(items) - set(wanted))
        if unknown:
            raise StoreError(
                f"{len(unknown)} item(s) are not {kind} items of {project.path}: "
                f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}."
            )
        wanted = [i for i in wanted if i in set(items)]
    if not wanted:
        raise StoreError(f"Project {project.path} has no {kind} items to export.")
    gold = dict(gold or {})
    name, crs = project.name, project.crs
    if kind == "notice":
        notices = project.notices().set_index("notice_id")
        texts = {i: str(notices.loc[i, "text"]) for i in wanted}
        spans: dict[str, tuple[tuple[int, int, str], ...]] = {}
        version = None
        if notice_prelabels:
            from geolabel.text.extract import prelabel_notices
            from geolabel.text.records import NoticeRecord

            preds = prelabel_notices(NoticeRecord(i, texts[i]) for i in wanted)
            spans = {p.item: tuple((e.start, e.end, e.label) for e in p.spans) for p in preds}
            version = preds[0].model_version if preds else None
        return [
            TaskRecord(
                item=i,
                kind="notice",
                project=name,
                crs=crs,
                text=texts[i],
                spans=spans.get(i, ()),
                model_version=version if spans.get(i) else None,
                gold=gold.get(i),
            )
            for i in wanted
        ]
    if chips_dir is None:
        raise InputFileError(f"{kind} tasks need a folder for their image chips.")
    chips = Path(chips_dir)
    scenes = project_scenes(project)
    with contextlib.ExitStack() as stack:
        datasets = {sid: stack.enter_context(rasterio.open(i.path)) for sid, i in scenes.items()}
        return _image_tasks(
            project,
            kind,
            wanted,
            chips,
            scenes,
            datasets,
            gold,
            model_version,
            class_map,
            margin,
            min_chip_px,
            tiles,
        )


def _image_tasks(
    project: Project,
    kind: ItemKind,
    wanted: list[str],
    chips: Path,
    scenes: Mapping[str, RasterInfo],
    datasets: Mapping[str, DatasetReader],
    gold: Mapping[str, str],
    model_version: str | None,
    class_map: str | os.PathLike[str] | None,
    margin: float,
    min_chip_px: int,
    tiles: pd.DataFrame | None,
) -> list[TaskRecord]:
    """Tasks with image chips (parcels, POIs, tiles); see :func:`build_tasks`."""
    name, crs = project.name, project.crs
    if tiles is not None:
        by_id = tiles.set_index(tiles["tile_id"].astype(str))
        codes = {c.code: c.id for c in project.current_taxonomy().classes}
        cmap = Path(class_map) if class_map is not None else None
        if cmap is not None and not cmap.is_file():
            raise InputFileError(f"Class map {cmap} does not exist.")
        out = []
        for tile_id in wanted:
            row = by_id.loc[tile_id].to_dict()
            info = scenes[str(row["scene_id"])]
            window = Window(
                int(row["col_off"]), int(row["row_off"]), int(row["width"]), int(row["height"])
            )
            chip = render_chip(
                info,
                str(row["scene_id"]),
                window,
                chips / f"{tile_id}.png",
                project_crs=crs,
                dataset=datasets[str(row["scene_id"])],
            )
            mask = None
            if cmap is not None:
                mask = _read_class_map(cmap, info, window)
                mask[~np.isin(mask, list(codes))] = 0
            out.append(
                TaskRecord(
                    item=tile_id,
                    kind="tile",
                    project=name,
                    crs=crs,
                    chip=chip,
                    mask=mask,
                    model_version=None if cmap is None else cmap.stem,
                    gold=gold.get(tile_id),
                )
            )
        return out
    layer, id_col = ("parcels", "parcel_id") if kind == "parcel" else ("pois", "poi_id")
    features = project.read_layer(layer)
    features = features.set_index(features[id_col].astype(str))
    preds = _latest_predictions(project, model_version, wanted)
    out = []
    for item in wanted:
        if item not in features.index:
            raise StoreError(f"{kind} item {item!r} has no feature in layer {layer!r}.")
        row = features.loc[item]
        geometry = row.geometry
        found = _scene_for(geometry, scenes, crs)
        if found is None:
            continue  # outside every scene: nothing to show
        scene_id, info = found
        window = _chip_window(geometry, info, crs, margin, min_chip_px)
        chip = render_chip(
            info,
            scene_id,
            window,
            chips / f"{item}.png",
            project_crs=crs,
            outline=geometry if kind == "parcel" else geometry.buffer(2 * abs(info.res[0])),
            dataset=datasets[scene_id],
        )
        pred = preds.loc[item] if item in preds.index else None
        text = None
        if kind == "poi" and "name" in features.columns and isinstance(row.get("name"), str):
            text = str(row["name"])
        out.append(
            TaskRecord(
                item=item,
                kind=kind,
                project=name,
                crs=crs,
                chip=chip,
                text=text,
                prediction=None if pred is None else str(pred["label"]),
                score=None
                if pred is None or pd.isna(pred["confidence"])
                else float(pred["confidence"]),
                model_version=None if pred is None else str(pred["model_version"]),
                gold=gold.get(item),
            )
        )
    return out
