"""The format registry: one reader and one task exporter per labeling platform.

A platform joins geolabel by writing a reader (file -> :class:`~geolabel.interop.records.
ParsedImport`) and an exporter (project -> files, built on :func:`~geolabel.interop.tasks.
build_tasks`) and registering both here; validation, the one-transaction idempotent import and
the CLI come for free (:func:`import_file`, :func:`export_tasks`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geolabel.errors import InputFileError
from geolabel.interop.importer import import_parsed
from geolabel.interop.records import ExportResult, InteropImportResult, ItemKind, ParsedImport
from geolabel.store import Project

__all__ = ["EXPORTERS", "READERS", "ImportOptions", "export_tasks", "import_file"]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """Options a reader may use.

    Attributes:
        output: Name of the answer field (Toloka ``OUTPUT:<output>``, Appen's answer column,
            Labelbox's radio question).
        taxonomy_files: POI/notice taxonomy YAML by item kind, stored on first use.
    """

    output: str | None = None
    taxonomy_files: Mapping[str, str] | None = None


Reader = Callable[[Path, Project, ImportOptions], ParsedImport]
Exporter = Callable[..., ExportResult]


def _read_label_studio(path: Path, project: Project, options: ImportOptions) -> ParsedImport:
    from geolabel.interop.label_studio import read_label_studio

    return read_label_studio(path, project.crs)


def _read_toloka(path: Path, project: Project, options: ImportOptions) -> ParsedImport:
    from geolabel.interop.toloka import read_toloka

    return read_toloka(path, output=options.output)


def _read_sagemaker(path: Path, project: Project, options: ImportOptions) -> ParsedImport:
    from geolabel.interop.sagemaker import read_sagemaker
    from geolabel.interop.tasks import kind_taxonomy

    allowed = set(project.current_taxonomy().class_ids)
    files = options.taxonomy_files or {}
    if "poi" in files or "poi" in set(project.taxonomy_versions()["name"]):
        allowed |= set(kind_taxonomy(project, "poi", files.get("poi"))[1])
    return read_sagemaker(path, project.crs, allowed=sorted(allowed))


def _read_labelbox(path: Path, project: Project, options: ImportOptions) -> ParsedImport:
    from geolabel.interop.labelbox import read_labelbox, tile_frames

    return read_labelbox(path, project.crs, frames=tile_frames(project), question=options.output)


def _read_appen(path: Path, project: Project, options: ImportOptions) -> ParsedImport:
    from geolabel.interop.appen import read_appen

    return read_appen(path, output=options.output)


READERS: dict[str, Reader] = {
    "labelstudio": _read_label_studio,
    "toloka": _read_toloka,
    "sagemaker": _read_sagemaker,
    "labelbox": _read_labelbox,
    "appen": _read_appen,
}
"""Format name -> reader."""


def _export_label_studio(project: Project, out: Path, kind: ItemKind, **kw: Any) -> ExportResult:
    from geolabel.interop.label_studio import export_label_studio

    return export_label_studio(project, out, kind, **kw)


def _export_toloka(project: Project, out: Path, kind: ItemKind, **kw: Any) -> ExportResult:
    from geolabel.interop.toloka import export_toloka

    return export_toloka(project, out, kind, **kw)


def _export_sagemaker(project: Project, out: Path, kind: ItemKind, **kw: Any) -> ExportResult:
    from geolabel.interop.sagemaker import export_sagemaker

    return export_sagemaker(project, out, kind, **kw)


def _export_labelbox(project: Project, out: Path, kind: ItemKind, **kw: Any) -> ExportResult:
    from geolabel.interop.labelbox import export_labelbox

    return export_labelbox(project, out, kind, **kw)


def _export_appen(project: Project, out: Path, kind: ItemKind, **kw: Any) -> ExportResult:
    from geolabel.interop.appen import export_appen

    return export_appen(project, out, kind, **kw)


EXPORTERS: dict[str, Exporter] = {
    "labelstudio": _export_label_studio,
    "toloka": _export_toloka,
    "sagemaker": _export_sagemaker,
    "labelbox": _export_labelbox,
    "appen": _export_appen,
}
"""Format name -> task exporter."""


def _check_format(fmt: str, table: Mapping[str, object], what: str) -> None:
    if fmt not in table:
        raise InputFileError(f"Unknown {what} format {fmt!r}; choose one of {', '.join(table)}.")


def import_file(
    project: Project,
    path: str | os.PathLike[str],
    fmt: str,
    *,
    output: str | None = None,
    taxonomy_files: Mapping[str, str] | None = None,
) -> InteropImportResult:
    """Read a platform's answers and store them (one transaction, idempotent).

    Args:
        project: The project (open).
        path: The platform's export.
        fmt: One of :data:`READERS`.
        output: The answer field (Toloka, Appen) or radio question (Labelbox).
        taxonomy_files: POI/notice taxonomy YAML by kind.

    Returns:
        What was stored.
    """
    _check_format(fmt, READERS, "import")
    options = ImportOptions(output=output, taxonomy_files=taxonomy_files)
    parsed = READERS[fmt](Path(path), project, options)
    return import_parsed(project, parsed, taxonomy_files=dict(taxonomy_files or {}))


def export_tasks(
    project: Project,
    out_dir: str | os.PathLike[str],
    fmt: str,
    kind: ItemKind,
    *,
    items: Sequence[str] | None = None,
    **options: Any,
) -> ExportResult:
    """Export tasks of one item kind for a platform.

    Args:
        project: The project.
        out_dir: Output folder.
        fmt: One of :data:`EXPORTERS`.
        kind: Item kind.
        items: Only these items.
        **options: The exporter's own options (``url_prefix``, ``gold``...).

    Returns:
        What was written.
    """
    _check_format(fmt, EXPORTERS, "task export")
    return EXPORTERS[fmt](project, Path(out_dir), kind, items=items, **options)
