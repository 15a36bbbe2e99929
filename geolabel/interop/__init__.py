"""Interop with labeling platforms (Label Studio, Toloka, SageMaker, Labelbox, Appen) and GIS.

Tasks go out with geolabel's ids (item, kind, CRS, scene, window, transform, bounds) so answers
map back to geometry exactly; answers come in through one shared, all-or-nothing, idempotent
import (:func:`~geolabel.interop.importer.import_parsed`). See ``docs/architecture.md``.
"""

from __future__ import annotations

from geolabel.interop.formats import EXPORTERS, READERS, export_tasks, import_file
from geolabel.interop.gis import export_gis, export_label_maps, labeled_parcels
from geolabel.interop.importer import (
    annotator_attrs,
    gold_answers,
    import_parsed,
    reference_labels,
    segment_annotations,
    segment_mask,
    span_annotations,
)
from geolabel.interop.records import (
    ChipRef,
    ExportResult,
    GoldRecord,
    InteropImportResult,
    LabelRecord,
    ParsedImport,
    ReferenceRecord,
    SegmentRecord,
    SpanRecord,
    TaskRecord,
)
from geolabel.interop.tasks import build_tasks

__all__ = [
    "EXPORTERS",
    "READERS",
    "ChipRef",
    "ExportResult",
    "GoldRecord",
    "InteropImportResult",
    "LabelRecord",
    "ParsedImport",
    "ReferenceRecord",
    "SegmentRecord",
    "SpanRecord",
    "TaskRecord",
    "annotator_attrs",
    "build_tasks",
    "export_gis",
    "export_label_maps",
    "export_tasks",
    "gold_answers",
    "import_file",
    "import_parsed",
    "labeled_parcels",
    "reference_labels",
    "segment_annotations",
    "segment_mask",
    "span_annotations",
]
