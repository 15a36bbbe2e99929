"""SageMaker Ground Truth: input manifests out, output manifests in (classification, segmentation).

Out: an input manifest (JSON Lines), one object per item: ``source-ref`` (the chip's S3 URI or
URL) and geolabel's ids (``geolabel_item``, ``geolabel_transform``...), which Ground Truth
carries through to the output manifest.

In: an output manifest. The label attribute is found by its ``<name>-metadata`` key (or
``<name>-ref-metadata`` for segmentation), whose ``type`` says what it holds:

* ``groundtruth/image-classification``: the attribute is a class index, named by
  ``class-map`` (index -> name) and/or ``class-name``; they must agree and name taxonomy classes;
* ``groundtruth/semantic-segmentation``: ``<name>-ref`` is a PNG whose colours are named by
  ``internal-color-map`` (index -> ``class-name``, ``hex-color``); each class region becomes a
  georeferenced polygon (``BACKGROUND`` is ignored). The PNG is looked up beside the manifest
  (S3 keys relative to it, then the file name).

``confidence``, ``human-annotated`` (``no``: auto-labeled, the annotator is a model),
``job-name`` (the annotator is ``sagemaker:<job-name>``) and ``creation-date`` come along;
objects with a ``failure-reason`` are left out and counted.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from geolabel.errors import AnnotationImportError
from geolabel.interop._common import chip_url, iso_time, read_bytes, sha256_bytes
from geolabel.interop.geometry import mask_to_geometry, reproject_geometry
from geolabel.interop.records import (
    ExportResult,
    ItemKind,
    LabelRecord,
    ParsedImport,
    SegmentRecord,
)
from geolabel.store import Project

__all__ = ["export_sagemaker", "read_sagemaker"]

SOURCE: Final = "sagemaker"
_CLASSIFICATION: Final = "groundtruth/image-classification"
_SEGMENTATION: Final = "groundtruth/semantic-segmentation"


def export_sagemaker(
    project: Project,
    out_dir: str | os.PathLike[str],
    kind: ItemKind = "parcel",
    *,
    url_prefix: str,
    items: Sequence[str] | None = None,
    class_map: str | os.PathLike[str] | None = None,
    taxonomy_file: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Write ``<kind>_input.manifest`` and the chips for a Ground Truth labeling job.

    Args:
        project: The project.
        out_dir: Output folder (chips in ``out_dir/chips``; upload it to ``url_prefix``).
        kind: ``parcel``, ``poi`` (image classification) or ``tile`` (semantic segmentation).
        url_prefix: Where the folder will live (``s3://bucket/prefix/``).
        items: Only these items.
        class_map: Class-code raster for tile pre-labels (not used by Ground Truth itself).
        taxonomy_file: POI taxonomy YAML, stored on first use.

    Returns:
        What was written (manifest, class list JSON for the job's label categories).
    """
    from geolabel.interop.tasks import build_tasks, kind_taxonomy

    allowed = kind_taxonomy(project, kind, taxonomy_file)[1]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = build_tasks(project, kind, out / "chips", items=items, class_map=class_map)
    lines = []
    for t in tasks:
        record: dict[str, Any] = {
            "source-ref": "" if t.chip is None else chip_url(t.chip.path, out, url_prefix),
            **t.geolabel_fields(),
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    manifest = out / f"{kind}_input.manifest"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    categories = out / f"{kind}_label_categories.json"
    categories.write_text(
        json.dumps({"document-version": "2018-11-28", "labels": [{"label": c} for c in allowed]})
        + "\n",
        encoding="utf-8",
    )
    return ExportResult(
        format=SOURCE,
        kind=kind,
        paths=(str(manifest), str(categories)),
        n_tasks=len(tasks),
        chips_dir=str(out / "chips"),
    )


def _resolve_ref(ref: str, base: Path) -> Path:
    """Find an ``s3://`` or relative reference on disk: beside the manifest, then by name."""
    key = ref.split("://", 1)[1].split("/", 1)[1] if "://" in ref else ref
    for candidate in (Path(ref), base / key, base / Path(key).name):
        if candidate.is_file():
            return candidate
    raise AnnotationImportError(
        f"Segmentation mask {ref} is not on disk (looked for {base / key} and "
        f"{base / Path(key).name}); download the job's output masks beside the manifest."
    )


def _read_png(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            data = src.read()
    if data.shape[0] == 1:
        data = np.repeat(data, 3, axis=0)
    return np.asarray(data[:3])


def _hex(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _label_attribute(obj: Mapping[str, Any], where: str) -> tuple[str, Mapping[str, Any]]:
    names = [k[: -len("-metadata")] for k in obj if k.endswith("-metadata")]
    if len(names) != 1:
        raise AnnotationImportError(
            f"{where}: expected one '<label attribute>-metadata' key, found "
            f"{names or 'none'}; is this a Ground Truth output manifest?"
        )
    meta = obj[f"{names[0]}-metadata"]
    if not isinstance(meta, Mapping):
        raise AnnotationImportError(f"{where}: {names[0]}-metadata is not an object.")
    return names[0], meta


def read_sagemaker(
    path: str | os.PathLike[str], project_crs: str, *, allowed: Sequence[str] | None = None
) -> ParsedImport:
    """Read a Ground Truth output manifest.

    Args:
        path: The output manifest (JSON Lines).
        project_crs: CRS drawn regions are reprojected to.
        allowed: Class ids of the taxonomy, to check ``class-map`` against (skipped if None).

    Returns:
        The parsed answers; nothing is stored.

    Raises:
        AnnotationImportError: A line is not JSON, has no geolabel ids, a class-map that does
            not match (names outside the taxonomy, or disagreeing with ``class-name``), or a
            mask that cannot be read.
    """
    raw = read_bytes(path, "Ground Truth output manifest")
    base = Path(path).parent
    labels: list[LabelRecord] = []
    segments: list[SegmentRecord] = []
    skipped: Counter[str] = Counter()
    allowed_set = set(allowed) if allowed is not None else None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationImportError(f"{path} is not UTF-8 text ({exc}).") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AnnotationImportError(
                f"{where} is not JSON ({exc.msg}, column {exc.colno}); the manifest is damaged "
                "or truncated. Nothing was imported."
            ) from exc
        item = obj.get("geolabel_item") if isinstance(obj, dict) else None
        if not isinstance(item, str) or not item:
            raise AnnotationImportError(
                f"{where} has no geolabel_item: the manifest was not made from "
                "`geolabel export --format sagemaker`, so its images cannot be mapped back."
            )
        attribute, meta = _label_attribute(obj, where)
        if "failure-reason" in meta or "failure-reason" in obj:
            skipped["failed"] += 1
            continue
        job = str(meta.get("job-name", "unknown")).split("/")[-1]
        annotator = f"sagemaker:{job}"
        kind = "crowd" if str(meta.get("human-annotated", "yes")).lower() == "yes" else "model"
        created = iso_time(meta.get("creation-date"))
        confidence = meta.get("confidence")
        mtype = str(meta.get("type", ""))
        if mtype == _CLASSIFICATION:
            value = obj.get(attribute)
            class_map = meta.get("class-map")
            name = meta.get("class-name")
            if isinstance(class_map, Mapping):
                mapped = {str(k): str(v) for k, v in class_map.items()}
                if allowed_set is not None:
                    unknown = sorted(set(mapped.values()) - allowed_set)
                    if unknown:
                        raise AnnotationImportError(
                            f"{where}: the class-map names {', '.join(unknown)}, which are not "
                            f"classes of the taxonomy ({', '.join(sorted(allowed_set))}); the "
                            "job's label categories do not match this project. Nothing was "
                            "imported."
                        )
                if str(value) not in mapped:
                    raise AnnotationImportError(
                        f"{where}: label index {value!r} is not in the class-map "
                        f"({json.dumps(mapped)}); the class-map does not match the answers."
                    )
                if name is not None and mapped[str(value)] != name:
                    raise AnnotationImportError(
                        f"{where}: class-map says index {value} is {mapped[str(value)]!r} but "
                        f"class-name says {name!r}; the class-map does not match."
                    )
                name = mapped[str(value)]
            if not isinstance(name, str):
                raise AnnotationImportError(
                    f"{where}: neither class-name nor class-map names the answer {value!r}."
                )
            conf = float(confidence) if isinstance(confidence, int | float) else None
            labels.append(
                LabelRecord(item, annotator, name, created, None, where, kind, confidence=conf)
            )
        elif mtype == _SEGMENTATION:
            ref = obj.get(attribute) if attribute.endswith("-ref") else obj.get(f"{attribute}-ref")
            colour_map = meta.get("internal-color-map")
            if not isinstance(ref, str) or not isinstance(colour_map, Mapping):
                raise AnnotationImportError(
                    f"{where}: a segmentation result needs '{attribute}' (the mask's URI) and "
                    "an internal-color-map."
                )
            try:
                transform = Affine(*[float(v) for v in obj["geolabel_transform"]][:6])
                width, height = (int(v) for v in obj["geolabel_window"][2:4])
                crs = str(obj["geolabel_crs"])
            except (KeyError, TypeError, ValueError) as exc:
                raise AnnotationImportError(
                    f"{where}: geolabel_transform/geolabel_window/geolabel_crs missing ({exc!r})."
                ) from exc
            pixels = _read_png(_resolve_ref(ref, base))
            if pixels.shape[1:] != (height, width):
                raise AnnotationImportError(
                    f"{where}: the mask is {pixels.shape[2]} × {pixels.shape[1]} px but the chip "
                    f"is {width} × {height}; it belongs to another image."
                )
            names = {
                str(v.get("class-name")): _hex(str(v.get("hex-color", "#000000")))
                for v in colour_map.values()
                if isinstance(v, Mapping)
            }
            names.pop("BACKGROUND", None)
            if allowed_set is not None:
                unknown = sorted(set(names) - allowed_set)
                if unknown:
                    raise AnnotationImportError(
                        f"{where}: the internal-color-map names {', '.join(unknown)}, which are "
                        "not classes of the taxonomy; the job's classes do not match."
                    )
            for label, rgb in sorted(names.items()):
                mask = np.all(pixels == np.array(rgb, dtype=pixels.dtype)[:, None, None], axis=0)
                if not mask.any():
                    continue
                geometry = reproject_geometry(mask_to_geometry(mask, transform), crs, project_crs)
                segments.append(
                    SegmentRecord(
                        item, annotator, label, geometry, "mask", created, None, where, kind
                    )
                )
        else:
            raise AnnotationImportError(
                f"{where}: label type {mtype!r} is not supported; geolabel reads "
                f"{_CLASSIFICATION} and {_SEGMENTATION}."
            )
    return ParsedImport(
        source=SOURCE,
        path=str(path),
        sha256=sha256_bytes(raw),
        labels=tuple(labels),
        segments=tuple(segments),
        n_skipped=dict(skipped),
    )
