"""Label Studio: labeling configs from the taxonomy, tasks with predictions out, JSON exports in.

Tasks carry geolabel's ids as extra ``data`` fields (:data:`~geolabel.interop.records.
GEOLABEL_FIELDS`: item, kind, project, CRS, scene, window, transform, bounds), so answers map
back to geometry exactly. Per item kind:

=========  ====================================  =============================================
kind       what the annotator sees               result types (``from_name``)
=========  ====================================  =============================================
parcel     PNG chip with the parcel outlined     ``choices`` (``label``)
poi        PNG chip around the point, its name   ``choices`` (``label``)
tile       PNG chip of the tile's exact window   ``brushlabels`` (``mask``, Label Studio's
                                                 bit-packed RLE) and ``polygonlabels``
                                                 (``polygon``, points in percent)
notice     the notice text                       ``labels`` spans (``entities``)
=========  ====================================  =============================================

Pre-labels are ``predictions`` with ``model_version`` and ``score`` (what Label Studio's
uncertainty sampling orders by). Imports read Label Studio's JSON export: each annotation's
``completed_by``, ``lead_time`` and ``created_at`` come along; cancelled (skipped)
annotations and empty ones are counted and left out; annotations marked ``ground_truth`` become
gold answers instead of votes. Gold goes out the same way: a parcel or POI task with a known
answer carries it as an annotation with ``ground_truth: true``, which Label Studio keeps as the
task's ground truth (agreement of annotators against it) and which comes back as gold.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import quoteattr

import numpy as np
from affine import Affine

from geolabel.errors import AnnotationImportError, GeolabelError, InputFileError, StoreError
from geolabel.interop._common import (
    chip_url,
    iso_time,
    read_bytes,
    read_json,
    seconds,
    sha256_bytes,
)
from geolabel.interop.geometry import (
    drawn_on_top,
    geometry_to_percent_rings,
    mask_to_geometry,
    percent_ring_to_geometry,
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
from geolabel.interop.rle import decode_brush_rle, encode_brush_rle
from geolabel.store import Project
from geolabel.taxonomy import Taxonomy

__all__ = [
    "DEFAULT_URL_PREFIX",
    "export_label_studio",
    "labeling_config",
    "read_label_studio",
    "task_json",
]

DEFAULT_URL_PREFIX: Final = "/data/local-files/?d="
"""Label Studio's local-files URL; chips are given relative to its document root."""

SOURCE: Final = "label_studio"
_CHOICE_TAG: Final = "label"
_BRUSH_TAG: Final = "mask"
_POLYGON_TAG: Final = "polygon"
_SPAN_TAG: Final = "entities"


def _labels_xml(
    tag: str, name: str, to_name: str, taxonomy: Taxonomy, allowed: Sequence[str]
) -> str:
    inner_tag = "Choice" if tag == "Choices" else "Label"
    extra = ' choice="single-radio" showInline="true"' if tag == "Choices" else ""
    lines = [f'  <{tag} name="{name}" toName="{to_name}"{extra}>']
    for cls in taxonomy.classes:
        if cls.id in allowed:
            lines.append(
                f"    <{inner_tag} value={quoteattr(cls.id)} background={quoteattr(cls.colour)}"
                f" hint={quoteattr(cls.name)}/>"
            )
    lines.append(f"  </{tag}>")
    return "\n".join(lines)


def labeling_config(
    taxonomy: Taxonomy, kind: ItemKind, allowed: Sequence[str] | None = None
) -> str:
    """The Label Studio labeling config XML for one item kind, from the taxonomy.

    Class ids are the values, class colours the backgrounds, class names the hints.

    Args:
        taxonomy: The taxonomy of the kind.
        kind: ``parcel``, ``poi``, ``tile`` or ``notice``.
        allowed: Classes to offer (all when None; parcels offer only parcel classes).

    Returns:
        The ``<View>`` XML.
    """
    labels = tuple(allowed) if allowed is not None else taxonomy.class_ids
    if kind == "notice":
        body = [
            '  <Text name="text" value="$text"/>',
            _labels_xml("Labels", _SPAN_TAG, "text", taxonomy, labels),
        ]
    elif kind == "tile":
        body = [
            '  <Image name="image" value="$image" zoom="true"/>',
            _labels_xml("BrushLabels", _BRUSH_TAG, "image", taxonomy, labels),
            _labels_xml("PolygonLabels", _POLYGON_TAG, "image", taxonomy, labels),
        ]
    else:
        body = ['  <Image name="image" value="$image" zoom="true"/>']
        if kind == "poi":
            body.append('  <Text name="name" value="$name"/>')
        body.append(_labels_xml("Choices", _CHOICE_TAG, "image", taxonomy, labels))
    return "<View>\n" + "\n".join(body) + "\n</View>\n"


def _tile_prediction(
    task: TaskRecord, codes: Mapping[int, str], shapes: Sequence[str]
) -> list[dict[str, Any]]:
    chip = task.chip
    if chip is None or task.mask is None:
        return []
    mask = np.asarray(task.mask)
    results: list[dict[str, Any]] = []
    for code in sorted(int(c) for c in np.unique(mask) if int(c) in codes):
        label = codes[code]
        region = mask == code
        common = {
            "to_name": "image",
            "original_width": chip.width,
            "original_height": chip.height,
            "image_rotation": 0,
        }
        if "brush" in shapes:
            results.append(
                {
                    "from_name": _BRUSH_TAG,
                    "type": "brushlabels",
                    "value": {
                        "format": "rle",
                        "rle": encode_brush_rle(region),
                        "brushlabels": [label],
                    },
                    **common,
                }
            )
        if "polygon" in shapes:
            geometry = mask_to_geometry(region, Affine.identity())
            for ring in geometry_to_percent_rings(
                geometry, chip.width, chip.height, Affine.identity()
            ):
                results.append(
                    {
                        "from_name": _POLYGON_TAG,
                        "type": "polygonlabels",
                        "value": {"points": ring, "polygonlabels": [label], "closed": True},
                        **common,
                    }
                )
    return results


def task_json(
    task: TaskRecord,
    *,
    image_url: str | None = None,
    codes: Mapping[int, str] | None = None,
    shapes: Sequence[str] = ("brush", "polygon"),
) -> dict[str, Any]:
    """One Label Studio task (``data`` + ``predictions``) for a task record.

    Args:
        task: The task.
        image_url: URL of its chip, as Label Studio will load it.
        codes: Class code -> class id (tiles' pre-label masks).
        shapes: Tile pre-labels as ``brush`` and/or ``polygon``.

    Returns:
        The task as a JSON-able dict.
    """
    data: dict[str, Any] = {**task.geolabel_fields()}
    if task.kind == "notice":
        data["text"] = task.text
    else:
        data["image"] = image_url
        if task.kind == "poi":
            data["name"] = task.text or ""
    result: list[dict[str, Any]] = []
    if task.kind in ("parcel", "poi") and task.prediction is not None:
        result = [
            {
                "from_name": _CHOICE_TAG,
                "to_name": "image",
                "type": "choices",
                "value": {"choices": [task.prediction]},
            }
        ]
    elif task.kind == "tile":
        result = _tile_prediction(task, codes or {}, shapes)
    elif task.kind == "notice" and task.text is not None:
        result = [
            {
                "from_name": _SPAN_TAG,
                "to_name": "text",
                "type": "labels",
                "value": {"start": s, "end": e, "text": task.text[s:e], "labels": [label]},
            }
            for s, e, label in task.spans
        ]
    out: dict[str, Any] = {"data": data}
    if task.gold is not None and task.kind in ("parcel", "poi"):
        choice = {"from_name": _CHOICE_TAG, "to_name": "image", "type": "choices"}
        out["annotations"] = [
            {"result": [{**choice, "value": {"choices": [task.gold]}}], "ground_truth": True}
        ]
    if result:
        prediction: dict[str, Any] = {
            "model_version": task.model_version or "geolabel",
            "result": result,
        }
        if task.score is not None:
            prediction["score"] = task.score
        out["predictions"] = [prediction]
    return out


def export_label_studio(
    project: Project,
    out_dir: str | os.PathLike[str],
    kind: ItemKind,
    *,
    url_prefix: str = DEFAULT_URL_PREFIX,
    document_root: str | os.PathLike[str] | None = None,
    items: Sequence[str] | None = None,
    model_version: str | None = None,
    class_map: str | os.PathLike[str] | None = None,
    notice_prelabels: bool = False,
    shapes: Sequence[str] = ("brush", "polygon"),
    taxonomy_file: str | os.PathLike[str] | None = None,
    gold: Mapping[str, str] | None = None,
) -> ExportResult:
    """Write ``<kind>_tasks.json``, ``<kind>_config.xml`` and the chips folder for Label Studio.

    Chips go to ``out_dir/chips/`` and are referenced as ``url_prefix`` + their path relative
    to ``document_root`` (``out_dir`` when None) -- with Label Studio's local-files serving
    (``LOCAL_FILES_SERVING_ENABLED=true``, ``LOCAL_FILES_DOCUMENT_ROOT=<document_root>``)
    the default prefix works as is; for uploads or a web server, pass its base URL.

    Args:
        project: The project.
        out_dir: Output folder (created).
        kind: Item kind to export.
        url_prefix: Prefix of chip URLs.
        document_root: Folder chip paths are relative to.
        items: Only these items.
        model_version: Pre-labels of this model (latest when None).
        class_map: Class-code raster pre-labeling tiles.
        notice_prelabels: Pre-label notices with the NER pipeline.
        shapes: Tile pre-labels as ``brush`` and/or ``polygon``.
        taxonomy_file: POI or notice taxonomy YAML, stored with the project on first use.
        gold: Known answers of parcels or POIs (item -> label): those tasks carry them as a
            ground-truth annotation.

    Returns:
        What was written (tasks file, config, chips folder).

    Raises:
        InputFileError: Unknown tile pre-label shapes.
        StoreError: Gold for tiles or notices, or a gold label outside the taxonomy.
    """
    from geolabel.interop.tasks import build_tasks, checked_gold, kind_taxonomy

    unknown_shapes = sorted(set(shapes) - {"brush", "polygon"})
    if unknown_shapes or not shapes:
        raise InputFileError(
            f"Tile pre-label shapes must be 'brush' and/or 'polygon', got {list(shapes)}."
        )
    if gold and kind not in ("parcel", "poi"):
        raise StoreError(
            f"Gold answers go out with parcel and POI tasks, not {kind}s; export without --gold."
        )
    taxonomy, allowed = kind_taxonomy(project, kind, taxonomy_file)
    gold = checked_gold(gold, taxonomy, allowed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chips = out / "chips"
    tasks = build_tasks(
        project,
        kind,
        chips,
        items=items,
        model_version=model_version,
        class_map=class_map,
        notice_prelabels=notice_prelabels,
        gold=gold,
    )
    root = Path(document_root) if document_root is not None else out
    codes = {c.code: c.id for c in taxonomy.classes if c.id in allowed}
    payload = [
        task_json(
            t,
            image_url=None if t.chip is None else chip_url(t.chip.path, root, url_prefix),
            codes=codes,
            shapes=shapes,
        )
        for t in tasks
    ]
    tasks_path = out / f"{kind}_tasks.json"
    tasks_path.write_text(
        json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    config_path = out / f"{kind}_config.xml"
    config_path.write_text(labeling_config(taxonomy, kind, allowed), encoding="utf-8")
    return ExportResult(
        format=SOURCE,
        kind=kind,
        paths=(str(tasks_path), str(config_path)),
        n_tasks=len(payload),
        n_predictions=sum("predictions" in t for t in payload),
        n_gold=sum("annotations" in t for t in payload),
        chips_dir=None if kind == "notice" else str(chips),
    )


# ------------------------------------------------------------------------------ import


def _annotator(value: object) -> str:
    if isinstance(value, Mapping):
        value = value.get("email") or value.get("id")
    return f"labelstudio:{value}"


def _single(values: object, where: str) -> str:
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str):
        raise AnnotationImportError(
            f"{where}: expected exactly one label, got {values!r}; use single-choice tags."
        )
    return values[0]


def _chip_transform(data: Mapping[str, Any], where: str) -> tuple[Affine, str, int, int]:
    try:
        transform = Affine(*[float(v) for v in data["geolabel_transform"]][:6])
        window = [int(v) for v in data["geolabel_window"]]
        return transform, str(data["geolabel_crs"]), window[2], window[3]
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnotationImportError(
            f"{where}: the task has no usable geolabel_transform/geolabel_window/geolabel_crs "
            f"({exc!r}), so its drawing cannot be georeferenced; export tasks with "
            "`geolabel export --format labelstudio`."
        ) from exc


def read_label_studio(path: str | os.PathLike[str], project_crs: str) -> ParsedImport:
    """Read a Label Studio JSON export (a list of tasks with their annotations).

    Args:
        path: The export (``JSON`` format of Label Studio's Export dialog or API).
        project_crs: CRS drawn regions are reprojected to.

    Returns:
        The parsed answers; nothing is stored.

    Raises:
        AnnotationImportError: Not JSON (truncated...), not a task list, a task without
            ``geolabel_item`` (not exported by geolabel), or a result that cannot be read.
    """
    raw = read_bytes(path, "Label Studio export")
    tasks = read_json(raw, path, "project from Label Studio (Export -> JSON)")
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise AnnotationImportError(
            f"{path}: a Label Studio JSON export is a list of tasks, got {type(tasks).__name__}."
        )
    labels: list[LabelRecord] = []
    spans: list[SpanRecord] = []
    segments: list[SegmentRecord] = []
    gold: list[GoldRecord] = []
    skipped: Counter[str] = Counter()
    missing_ids: list[str] = []
    for index, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise AnnotationImportError(f"{path} task #{index}: a task needs a 'data' object.")
        data = task["data"]
        task_where = f"{path} task {task.get('id', f'#{index}')}"
        item = data.get("geolabel_item")
        if not isinstance(item, str) or not item:
            missing_ids.append(str(task.get("id", f"#{index}")))
            continue
        kind = data.get("geolabel_kind")
        for a_index, annotation in enumerate(task.get("annotations") or []):
            if not isinstance(annotation, dict):
                continue
            where = f"{task_where} annotation {annotation.get('id', a_index)}"
            if annotation.get("was_cancelled"):
                skipped["cancelled"] += 1
                continue
            result = annotation.get("result") or []
            if not result:
                skipped["empty"] += 1
                continue
            annotator = _annotator(annotation.get("completed_by"))
            created = iso_time(annotation.get("created_at"))
            lead = seconds(annotation.get("lead_time"))
            is_gold = bool(annotation.get("ground_truth"))
            first_segment = len(segments)
            try:
                for r in result:
                    value = r.get("value") or {}
                    rtype = str(r.get("type", "")).lower()
                    if rtype == "choices":
                        label = _single(value.get("choices"), where)
                        if is_gold:
                            gold.append(GoldRecord(item, label, where))
                        else:
                            labels.append(LabelRecord(item, annotator, label, created, lead, where))
                    elif rtype == "labels":
                        label = _single(value.get("labels"), where)
                        spans.append(
                            SpanRecord(
                                item,
                                annotator,
                                int(value["start"]),
                                int(value["end"]),
                                label,
                                str(value.get("text", "")),
                                created,
                                lead,
                                where,
                            )
                        )
                    elif rtype in ("brushlabels", "polygonlabels"):
                        transform, crs, width, height = _chip_transform(data, where)
                        ow = int(r.get("original_width", width))
                        oh = int(r.get("original_height", height))
                        if (ow, oh) != (width, height):
                            raise AnnotationImportError(
                                f"{where}: the result is drawn on a {ow} × {oh} image but the "
                                f"task's chip is {width} × {height}; it belongs to another task."
                            )
                        if rtype == "brushlabels":
                            label = _single(value.get("brushlabels"), where)
                            mask = decode_brush_rle(value.get("rle") or [], oh, ow)
                            geometry = mask_to_geometry(mask, transform)
                            shape = "brush"
                        else:
                            label = _single(value.get("polygonlabels"), where)
                            geometry = percent_ring_to_geometry(
                                value.get("points") or [], ow, oh, transform
                            )
                            shape = "polygon"
                        if geometry.is_empty:
                            continue
                        geometry = reproject_geometry(geometry, crs, project_crs)
                        segments.append(
                            SegmentRecord(
                                item, annotator, label, geometry, shape, created, lead, where
                            )
                        )
                    else:
                        skipped[f"result type {rtype or '?'}"] += 1
                drawn = [
                    k for k in range(first_segment, len(segments)) if segments[k].shape == "polygon"
                ]
                if len(drawn) > 1:
                    resolved = drawn_on_top([segments[k].geometry for k in drawn])
                    for k, geometry in zip(drawn, resolved, strict=True):
                        segments[k] = replace(segments[k], geometry=geometry)
                    segments[first_segment:] = [
                        s for s in segments[first_segment:] if not s.geometry.is_empty
                    ]
            except AnnotationImportError:
                raise
            except (GeolabelError, KeyError, TypeError, ValueError) as exc:
                raise AnnotationImportError(f"{where}: cannot read a result ({exc!r}).") from exc
        del kind
    if missing_ids:
        raise AnnotationImportError(
            f"{path}: {len(missing_ids)} task(s) have no geolabel_item in their data (task ids "
            f"{', '.join(missing_ids[:5])}{' ...' if len(missing_ids) > 5 else ''}): this export "
            "is of a Label Studio project whose tasks geolabel did not make. Import tasks made "
            "with `geolabel export --format labelstudio`, then export their annotations."
        )
    return ParsedImport(
        source=SOURCE,
        path=str(path),
        sha256=sha256_bytes(raw),
        labels=tuple(labels),
        spans=tuple(spans),
        segments=tuple(segments),
        gold=tuple(gold),
        n_skipped=dict(skipped),
    )
