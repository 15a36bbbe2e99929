"""Labelbox: pre-labels out as model-assisted-labeling NDJSON, Export v2 NDJSON in.

Out (:func:`export_labelbox`), per item kind:

* ``<kind>_data_rows.json``: the data rows to create (``row_data`` = chip URL or notice text,
  ``global_key`` = geolabel's item id, ``media_type``) with geolabel's ids as a ``RAW_TEXT``
  attachment named ``geolabel`` (so drawings map back to geometry exactly);
* ``<kind>_prelabels.ndjson``: one line per annotation, in the shape of labelbox-python's
  NDJSON serializer (``labelbox/data/serialization/ndjson/{classification,objects}.py``):
  ``uuid``, ``dataRow: {"globalKey": item}``, ``name`` and the kind's payload --
  classification ``answer: {"name": class}`` (parcels, POIs), segmentation
  ``mask: {"instanceURI": url, "colorRGB": [r, g, b]}`` (one composite PNG per tile in
  ``masks/``, one line per class and its colour) or ``polygon: [{"x", "y"}...]`` in chip
  pixels (tiles), NER ``location: {"start", "end"}`` (notices; Labelbox's ``end`` is the
  last character, inclusive);
* ``<kind>_ontology.json``: the tools (one per class, named by class id) or the radio
  question (options = class ids) the NDJSON refers to.

In (:func:`read_labelbox`): Labelbox's Export v2 NDJSON, one data row per line:
``data_row.global_key`` (the item), ``projects.<project id>.labels[]`` with
``label_details.created_by``/``created_at``, ``performance_details.seconds_to_create``/
``skipped`` and ``annotations.classifications`` (``radio_answer``, a one-answer
``checklist_answers``) and ``annotations.objects`` (``mask``/``composite_mask`` PNGs,
``polygon`` pixel points, ``location`` NER spans). Several labels per data row (consensus)
are several votes; benchmark reference labels (``label_details.is_benchmark_reference``, or
a ``benchmark`` flag) become gold answers instead of votes; skipped labels are counted and
left out. Mask URLs are never fetched: the PNGs must be downloaded beside the export.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
from affine import Affine
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from geolabel.errors import AnnotationImportError, GeolabelError, InputFileError
from geolabel.interop._common import (
    chip_url,
    iso_time,
    read_bytes,
    read_png,
    seconds,
    sha256_bytes,
    write_png,
)
from geolabel.interop.geometry import (
    drawn_on_top,
    mask_to_geometry,
    polygonal,
    reproject_geometry,
)
from geolabel.interop.records import (
    ExportResult,
    GoldRecord,
    ItemKind,
    LabelRecord,
    ParsedImport,
    SegmentRecord,
    SpanRecord,
    TaskRecord,
)
from geolabel.store import Project
from geolabel.taxonomy import Taxonomy

__all__ = ["ChipFrame", "export_labelbox", "prelabel_lines", "read_labelbox", "tile_frames"]

SOURCE: Final = "labelbox"
DEFAULT_QUESTION: Final = "label"
"""Name of the radio question that classifies parcels and POIs."""
_ATTACHMENT: Final = "geolabel"
_BENCHMARK_FLAGS: Final = (
    "is_benchmark_reference",  # the Label field of the Labelbox SDK
    "isBenchmarkReferenceLabel",  # its NDJSON spelling (NDJsonConverter)
    "benchmark",
    "is_benchmark",
)


@dataclass(frozen=True, slots=True)
class ChipFrame:
    """The pixel grid an item's chip was drawn on.

    Attributes:
        transform: Chip pixel -> ``crs``.
        crs: CRS of the transform.
        width: Chip width in pixels.
        height: Chip height in pixels.
    """

    transform: Affine
    crs: str
    width: int
    height: int


# ------------------------------------------------------------------------------ export


def _uuid(project: str, item: str, name: str, k: int) -> str:
    """A stable annotation uuid, so exporting twice gives the same file."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"geolabel:{project}:{item}:{name}:{k}"))


def _colours(taxonomy: Taxonomy, allowed: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """Class -> mask colour: the taxonomy's colours, or greys by code if two are alike."""
    colours = {
        c.id: (int(c.colour[1:3], 16), int(c.colour[3:5], 16), int(c.colour[5:7], 16))
        for c in taxonomy.classes
        if c.id in allowed
    }
    if len(set(colours.values())) < len(colours) or (0, 0, 0) in colours.values():
        colours = {c.id: (c.code, c.code, c.code) for c in taxonomy.classes if c.id in allowed}
    return colours


def prelabel_lines(
    task: TaskRecord,
    *,
    question: str = DEFAULT_QUESTION,
    codes: Mapping[int, str] | None = None,
    colours: Mapping[str, tuple[int, int, int]] | None = None,
    mask_url: str | None = None,
    shape: str = "mask",
) -> list[dict[str, Any]]:
    """The Labelbox MAL NDJSON objects pre-labeling one task.

    Args:
        task: The task.
        question: Radio question classifying parcels and POIs.
        codes: Class code -> class id (tiles).
        colours: Class id -> RGB of the tile's composite mask.
        mask_url: URL of the tile's composite mask PNG.
        shape: Tiles as ``mask`` or ``polygon`` annotations.

    Returns:
        One dict per annotation (nothing when the task has no pre-label).
    """
    data_row = {"globalKey": task.item}
    lines: list[dict[str, Any]] = []
    if task.kind in ("parcel", "poi") and task.prediction is not None:
        lines.append(
            {
                "uuid": _uuid(task.project, task.item, question, 0),
                "dataRow": data_row,
                "name": question,
                "answer": {"name": task.prediction},
            }
        )
    elif task.kind == "tile" and task.mask is not None:
        mask = np.asarray(task.mask)
        for code in sorted(int(c) for c in np.unique(mask) if int(c) in (codes or {})):
            label = (codes or {})[code]
            if shape == "mask":
                lines.append(
                    {
                        "uuid": _uuid(task.project, task.item, label, 0),
                        "dataRow": data_row,
                        "name": label,
                        "mask": {
                            "instanceURI": mask_url,
                            "colorRGB": list((colours or {})[label]),
                        },
                    }
                )
                continue
            geometry = mask_to_geometry(mask == code, Affine.identity())
            parts = [g for g in getattr(geometry, "geoms", [geometry]) if isinstance(g, Polygon)]
            for k, polygon in enumerate(parts):
                lines.append(
                    {
                        "uuid": _uuid(task.project, task.item, label, k),
                        "dataRow": data_row,
                        "name": label,
                        "polygon": [
                            {"x": float(x), "y": float(y)}
                            for x, y in list(polygon.exterior.coords)[:-1]
                        ],
                    }
                )
    elif task.kind == "notice":
        for k, (start, end, label) in enumerate(task.spans):
            lines.append(
                {
                    "uuid": _uuid(task.project, task.item, label, k),
                    "dataRow": data_row,
                    "name": label,
                    "location": {"start": start, "end": end - 1},
                }
            )
    return lines


def _ontology(
    taxonomy: Taxonomy, kind: ItemKind, allowed: Sequence[str], question: str, shape: str
) -> dict[str, Any]:
    classes = [c for c in taxonomy.classes if c.id in allowed]
    if kind in ("parcel", "poi"):
        return {
            "tools": [],
            "classifications": [
                {
                    "type": "radio",
                    "name": question,
                    "instructions": question,
                    "scope": "global",
                    "required": True,
                    "options": [{"label": c.id, "value": c.id} for c in classes],
                }
            ],
        }
    tool = {"tile": "superpixel" if shape == "mask" else "polygon", "notice": "named-entity"}[kind]
    return {
        "tools": [
            {"tool": tool, "name": c.id, "color": c.colour, "required": False} for c in classes
        ],
        "classifications": [],
    }


def export_labelbox(
    project: Project,
    out_dir: str | os.PathLike[str],
    kind: ItemKind = "parcel",
    *,
    url_prefix: str | None = None,
    items: Sequence[str] | None = None,
    model_version: str | None = None,
    class_map: str | os.PathLike[str] | None = None,
    notice_prelabels: bool = False,
    shape: str = "mask",
    question: str = DEFAULT_QUESTION,
    taxonomy_file: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Write data rows, MAL pre-labels (NDJSON), the ontology and chips/masks for Labelbox.

    Args:
        project: The project.
        out_dir: Output folder (chips in ``chips/``, tile masks in ``masks/``; upload it to
            ``url_prefix``).
        kind: Item kind.
        url_prefix: Base URL the folder will be served from (required but for notices).
        items: Only these items.
        model_version: Pre-labels of this model (latest when None).
        class_map: Class-code raster pre-labeling tiles.
        notice_prelabels: Pre-label notices with the NER pipeline.
        shape: Tiles pre-labeled as ``mask`` (segmentation) or ``polygon``.
        question: Name of the radio question classifying parcels and POIs.
        taxonomy_file: POI or notice taxonomy YAML, stored on first use.

    Returns:
        What was written (pre-labels NDJSON, data rows, ontology).

    Raises:
        InputFileError: No ``url_prefix`` for an image kind, or an unknown ``shape``.
    """
    from geolabel.interop.tasks import build_tasks, kind_taxonomy

    if shape not in ("mask", "polygon"):
        raise InputFileError(
            f"Labelbox tile pre-labels are 'mask' or 'polygon' (one tool per class), got {shape!r}."
        )
    if kind != "notice" and not url_prefix:
        raise InputFileError(
            f"Labelbox {kind} data rows need the URL their chips will be served from: pass "
            "url_prefix (--url-prefix https://... or gs://...)."
        )
    taxonomy, allowed = kind_taxonomy(project, kind, taxonomy_file)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = build_tasks(
        project,
        kind,
        out / "chips",
        items=items,
        model_version=model_version,
        class_map=class_map,
        notice_prelabels=notice_prelabels,
    )
    codes = {c.code: c.id for c in taxonomy.classes if c.id in allowed}
    colours = _colours(taxonomy, allowed)
    rows: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    n_predictions = 0
    for t in tasks:
        mask_url = None
        if t.kind == "tile" and t.mask is not None and shape == "mask":
            mask = np.asarray(t.mask)
            rgb = np.zeros((3, *mask.shape), dtype=np.uint8)
            for code, label in codes.items():
                rgb[:, mask == code] = np.array(colours[label], dtype=np.uint8)[:, None]
            png = out / "masks" / f"{t.item}.png"
            write_png(png, rgb)
            mask_url = chip_url(str(png), out, url_prefix or "")
        task_lines = prelabel_lines(
            t, question=question, codes=codes, colours=colours, mask_url=mask_url, shape=shape
        )
        n_predictions += bool(task_lines)
        lines.extend(task_lines)
        rows.append(
            {
                "row_data": t.text
                if t.kind == "notice"
                else chip_url(t.chip.path, out, url_prefix or "")
                if t.chip is not None
                else None,
                "global_key": t.item,
                "media_type": "TEXT" if t.kind == "notice" else "IMAGE",
                "attachments": [
                    {
                        "type": "RAW_TEXT",
                        "name": _ATTACHMENT,
                        "value": json.dumps(t.geolabel_fields(), ensure_ascii=False),
                    }
                ],
            }
        )
    prelabels = out / f"{kind}_prelabels.ndjson"
    prelabels.write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8"
    )
    data_rows = out / f"{kind}_data_rows.json"
    data_rows.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    ontology = out / f"{kind}_ontology.json"
    ontology.write_text(
        json.dumps(_ontology(taxonomy, kind, allowed, question, shape), indent=1) + "\n",
        encoding="utf-8",
    )
    return ExportResult(
        format=SOURCE,
        kind=kind,
        paths=(str(prelabels), str(data_rows), str(ontology)),
        n_tasks=len(tasks),
        n_predictions=n_predictions,
        chips_dir=None if kind == "notice" else str(out / "chips"),
    )


# ------------------------------------------------------------------------------ import


def tile_frames(project: Project) -> dict[str, ChipFrame]:
    """The chip grid of every tile of the project (a tile's chip is its exact window).

    Used when an export carries no ``geolabel`` attachment (Export v2 leaves attachments out
    unless asked for them).

    Args:
        project: The project.

    Returns:
        Tile id -> its frame (empty when the project is not tiled).
    """
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    from geolabel.errors import LayerError
    from geolabel.raster.index import project_scenes

    try:
        tiles = project.read_layer("tiles")
    except LayerError:
        return {}
    scenes = project_scenes(project)
    frames: dict[str, ChipFrame] = {}
    for row in tiles.itertuples(index=False):
        info = scenes.get(str(row.scene_id))
        if info is None:
            continue
        window = Window(int(row.col_off), int(row.row_off), int(row.width), int(row.height))
        frames[str(row.tile_id)] = ChipFrame(
            window_transform(window, Affine(*info.transform)),
            info.crs,
            int(row.width),
            int(row.height),
        )
    return frames


def _attachment_frame(data_row: Mapping[str, Any], where: str) -> ChipFrame | None:
    for attachment in data_row.get("attachments") or []:
        if not isinstance(attachment, Mapping) or attachment.get("name") != _ATTACHMENT:
            continue
        try:
            fields = json.loads(str(attachment.get("value")))
            window = [int(v) for v in fields["geolabel_window"]]
            return ChipFrame(
                Affine(*[float(v) for v in fields["geolabel_transform"]][:6]),
                str(fields["geolabel_crs"]),
                window[2],
                window[3],
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise AnnotationImportError(
                f"{where}: the data row's geolabel attachment is damaged ({exc!r})."
            ) from exc
    return None


def _name(obj: Mapping[str, Any]) -> str | None:
    value = obj.get("value") or obj.get("name")
    return str(value) if value not in (None, "") else None


def _answers(classifications: object, question: str | None, where: str) -> list[str]:
    """The class answers of one label (radio, or a checklist with one answer)."""
    out: list[str] = []
    for c in classifications if isinstance(classifications, list) else []:
        if not isinstance(c, Mapping):
            continue
        if question is not None and question not in (c.get("value"), c.get("name")):
            continue
        if isinstance(c.get("radio_answer"), Mapping):
            answer = _name(c["radio_answer"])
        elif isinstance(c.get("checklist_answers"), list):
            picked = [a for a in c["checklist_answers"] if isinstance(a, Mapping)]
            if len(picked) != 1:
                raise AnnotationImportError(
                    f"{where}: question {_name(c)!r} has {len(picked)} checklist answers; a "
                    "class label needs exactly one (use a radio question)."
                )
            answer = _name(picked[0])
        else:
            continue
        if answer is None:
            raise AnnotationImportError(f"{where}: an answer of {_name(c)!r} has no name.")
        out.append(answer)
    if len(out) > 1:
        raise AnnotationImportError(
            f"{where}: {len(out)} radio answers ({', '.join(out)}) in one label; name the "
            "question holding the class with --output QUESTION."
        )
    return out


def _mask_file(url: str, base: Path, feature_id: object, where: str) -> Path:
    """Find a mask PNG on disk from its URL: beside the export, by path tail or feature id."""
    tail = url.split("://", 1)[1].split("/", 1)[-1] if "://" in url else url
    tail = tail.split("?", 1)[0]
    parts = [p for p in tail.split("/") if p]
    candidates = [Path(url)] if "://" not in url else []
    candidates += [base.joinpath(*parts[k:]) for k in range(len(parts))]
    if feature_id:
        candidates += [base / f"{feature_id}.png", base / "masks" / f"{feature_id}.png"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise AnnotationImportError(
        f"{where}: the mask {url} is not on disk (looked beside the export for "
        f"{', '.join(str(c) for c in candidates[:4])}); download the export's masks beside it "
        "(as in their URL, or named <feature_id>.png). geolabel never fetches them."
    )


def _object_mask(obj: Mapping[str, Any], base: Path, frame: ChipFrame, where: str) -> np.ndarray:
    composite = obj.get("composite_mask")
    mask = obj.get("mask")
    colour: Sequence[int] | None = None
    if isinstance(composite, Mapping) and composite.get("color_rgb") is not None:
        url, colour = str(composite.get("url", "")), composite["color_rgb"]
        pixels = read_png(read_bytes(_mask_file(url, base, None, where), "mask"), where)
    elif isinstance(mask, Mapping) and isinstance(mask.get("png"), str):
        try:
            data = base64.b64decode(mask["png"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AnnotationImportError(f"{where}: the mask's png is not base64.") from exc
        pixels = read_png(data, f"{where}: the mask")
    elif isinstance(mask, Mapping) and (mask.get("url") or mask.get("instanceURI")):
        url = str(mask.get("url") or mask.get("instanceURI"))
        colour = mask.get("colorRGB") or mask.get("color_rgb")
        path = _mask_file(url, base, obj.get("feature_id"), where)
        pixels = read_png(read_bytes(path, "mask"), f"{where}: the mask {path}")
    else:
        raise AnnotationImportError(f"{where}: a mask object needs mask.url (or png).")
    if pixels.shape[1:] != (frame.height, frame.width):
        raise AnnotationImportError(
            f"{where}: the mask is {pixels.shape[2]} × {pixels.shape[1]} px but the chip is "
            f"{frame.width} × {frame.height}; it belongs to another image."
        )
    if colour is None:
        return np.asarray(pixels.max(axis=0) > 0)
    try:
        rgb = np.array([int(v) for v in colour][:3], dtype=pixels.dtype)
    except (TypeError, ValueError) as exc:
        raise AnnotationImportError(f"{where}: bad mask colour {colour!r}.") from exc
    return np.asarray(np.all(pixels == rgb[:, None, None], axis=0))


def _polygon(points: object, frame: ChipFrame, where: str) -> BaseGeometry:
    try:
        pixels = [(float(p["x"]), float(p["y"])) for p in points]  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnotationImportError(
            f"{where}: polygon points must be {{'x': .., 'y': ..}} objects ({exc!r})."
        ) from exc
    if len(pixels) < 3:
        raise AnnotationImportError(f"{where}: a polygon needs 3 points, got {len(pixels)}.")
    polygon = Polygon([frame.transform @ p for p in pixels])
    if not polygon.is_valid:
        import shapely

        return polygonal(shapely.make_valid(polygon))
    return polygon


def _is_benchmark(label: Mapping[str, Any]) -> bool:
    details = label.get("label_details") if isinstance(label.get("label_details"), Mapping) else {}
    return any(
        bool(source.get(flag)) for source in (label, details or {}) for flag in _BENCHMARK_FLAGS
    )


def read_labelbox(
    path: str | os.PathLike[str],
    project_crs: str,
    *,
    frames: Mapping[str, ChipFrame] | None = None,
    question: str | None = None,
) -> ParsedImport:
    """Read a Labelbox Export v2 NDJSON file (one data row per line).

    Args:
        path: The export.
        project_crs: CRS drawn regions are reprojected to.
        frames: Chip grids by item, for data rows without a ``geolabel`` attachment
            (:func:`tile_frames`).
        question: The radio question holding the class (any single radio answer when None).

    Returns:
        The parsed answers; nothing is stored.

    Raises:
        AnnotationImportError: A line that is not JSON or not a data row, a data row without
            ``global_key`` (not created by geolabel), an answer that cannot be read, or a mask
            that is not on disk or belongs to another image.
    """
    raw = read_bytes(path, "Labelbox export")
    base = Path(path).parent
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationImportError(f"{path} is not UTF-8 text ({exc}).") from exc
    labels: list[LabelRecord] = []
    spans: list[SpanRecord] = []
    segments: list[SegmentRecord] = []
    gold: dict[str, GoldRecord] = {}
    skipped: Counter[str] = Counter()
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where_line = f"{path} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AnnotationImportError(
                f"{where_line} is not JSON ({exc.msg}, column {exc.colno}): the export is "
                "damaged or truncated. Nothing was imported; export the project again "
                "(Export v2, NDJSON)."
            ) from exc
        data_row = row.get("data_row") if isinstance(row, dict) else None
        if not isinstance(data_row, dict) or not isinstance(row.get("projects"), dict):
            raise AnnotationImportError(
                f"{where_line} is not an Export v2 data row (it needs 'data_row' and "
                "'projects'); is this the pre-label NDJSON rather than the project's export?"
            )
        item = data_row.get("global_key")
        if not isinstance(item, str) or not item:
            raise AnnotationImportError(
                f"{where_line}: data row {data_row.get('id')!r} has no global_key; geolabel "
                "maps answers back by the global keys it gave (`geolabel export --format "
                "labelbox`). Nothing was imported."
            )
        frame = _attachment_frame(data_row, where_line) or (frames or {}).get(item)
        for project_id, project in sorted(row["projects"].items()):
            for index, label in enumerate((project or {}).get("labels") or []):
                if not isinstance(label, dict):
                    continue
                label_id = str(label.get("id", f"{project_id}#{index}"))
                where = f"{where_line} ({item}) label {label_id}"
                if label_id in seen:
                    skipped["duplicate label"] += 1
                    continue
                seen.add(label_id)
                details = label.get("label_details") or {}
                performance = label.get("performance_details") or {}
                if performance.get("skipped"):
                    skipped["skipped"] += 1
                    continue
                annotator = f"labelbox:{details.get('created_by') or 'unknown'}"
                created = iso_time(details.get("created_at"))
                spent = seconds(performance.get("seconds_to_create"))
                annotations = label.get("annotations") or {}
                benchmark = _is_benchmark(label)
                try:
                    answers = _answers(annotations.get("classifications"), question, where)
                    for answer in answers:
                        if benchmark:
                            gold[item] = GoldRecord(item, answer, where)
                        else:
                            labels.append(
                                LabelRecord(item, annotator, answer, created, spent, where)
                            )
                    objects = [o for o in annotations.get("objects") or [] if isinstance(o, dict)]
                    if objects and benchmark:
                        skipped["benchmark drawing"] += len(objects)
                        continue
                    polygons: list[int] = []
                    for obj in objects:
                        name = _name(obj)
                        if name is None:
                            raise AnnotationImportError(f"{where}: an object has no name.")
                        if isinstance(obj.get("location"), Mapping):
                            loc = obj["location"]
                            start, end = int(loc["start"]), int(loc["end"]) + 1
                            spans.append(
                                SpanRecord(
                                    item,
                                    annotator,
                                    start,
                                    end,
                                    name,
                                    str(loc.get("token", "")),
                                    created,
                                    spent,
                                    where,
                                )
                            )
                            continue
                        is_mask = "mask" in obj or "composite_mask" in obj
                        if not is_mask and "polygon" not in obj:
                            kind = str(obj.get("annotation_kind") or "?")
                            skipped[f"object {kind}"] += 1
                            continue
                        if frame is None:
                            raise AnnotationImportError(
                                f"{where}: item {item!r} has no chip grid (no geolabel "
                                "attachment and not a tile of this project), so a drawing "
                                "cannot be georeferenced; export with attachments."
                            )
                        if is_mask:
                            geometry = mask_to_geometry(
                                _object_mask(obj, base, frame, where), frame.transform
                            )
                            shape = "mask"
                        else:
                            geometry = _polygon(obj["polygon"], frame, where)
                            shape = "polygon"
                            polygons.append(len(segments))
                        if geometry.is_empty:
                            continue
                        segments.append(
                            SegmentRecord(
                                item,
                                annotator,
                                name,
                                reproject_geometry(geometry, frame.crs, project_crs),
                                shape,
                                created,
                                spent,
                                where,
                            )
                        )
                    if len(polygons) > 1:
                        resolved = drawn_on_top([segments[k].geometry for k in polygons])
                        for k, geometry in zip(polygons, resolved, strict=True):
                            segments[k] = replace(segments[k], geometry=geometry)
                        segments[:] = [s for s in segments if not s.geometry.is_empty]
                except AnnotationImportError:
                    raise
                except (GeolabelError, KeyError, TypeError, ValueError) as exc:
                    raise AnnotationImportError(
                        f"{where}: cannot read an annotation ({exc!r})."
                    ) from exc
    return ParsedImport(
        source=SOURCE,
        path=str(path),
        sha256=sha256_bytes(raw),
        labels=tuple(labels),
        spans=tuple(spans),
        segments=tuple(segments),
        gold=tuple(gold.values()),
        n_skipped=dict(skipped),
    )
