"""Typed records shared by every interop format: tasks out, parsed annotations in, results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from affine import Affine
from shapely.geometry.base import BaseGeometry

from geolabel.errors import AnnotationImportError

__all__ = [
    "GEOLABEL_FIELDS",
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
]

GEOLABEL_FIELDS: Final[tuple[str, ...]] = (
    "geolabel_item",
    "geolabel_kind",
    "geolabel_project",
    "geolabel_crs",
    "geolabel_scene",
    "geolabel_window",
    "geolabel_transform",
    "geolabel_bounds",
)
"""Extra task fields every format carries so answers map back to geometry exactly."""

ItemKind = Literal["parcel", "poi", "tile", "notice"]


@dataclass(frozen=True, slots=True)
class ChipRef:
    """An image chip of the scene, and where its pixels lie.

    Attributes:
        path: The PNG on disk.
        scene_id: The scene it was cut from.
        window: ``(col_off, row_off, width, height)`` in the scene's pixels.
        transform: Chip pixel -> ``crs`` (six affine coefficients ``a, b, c, d, e, f``).
        bounds: ``(minx, miny, maxx, maxy)`` of the chip in ``crs``.
        crs: CRS of ``transform`` and ``bounds`` (the scene's).
    """

    path: str
    scene_id: str
    window: tuple[int, int, int, int]
    transform: tuple[float, float, float, float, float, float]
    bounds: tuple[float, float, float, float]
    crs: str

    @property
    def width(self) -> int:
        """Chip width in pixels."""
        return self.window[2]

    @property
    def height(self) -> int:
        """Chip height in pixels."""
        return self.window[3]

    @property
    def affine(self) -> Affine:
        """The chip transform as an :class:`affine.Affine`."""
        return Affine(*self.transform)


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One item to label, with everything a format needs to show it and map answers back.

    Attributes:
        item: geolabel item id.
        kind: ``parcel``, ``poi``, ``tile`` or ``notice``.
        project: Project name (so an export from another project is recognised).
        crs: Project CRS.
        chip: The image chip (parcels, POIs, tiles); ``None`` for notices.
        text: The text to label (notices) or to show (a POI's name).
        prediction: Pre-label class (parcels, POIs) or ``None``.
        score: Confidence of the pre-label in [0, 1].
        model_version: Model that made the pre-label.
        mask: Pre-label class codes on the chip grid (tiles), ``None`` otherwise.
        spans: Pre-label entity spans ``(start, end, label)`` (notices).
        gold: Known answer when the item is a gold (control) question.
    """

    item: str
    kind: ItemKind
    project: str
    crs: str
    chip: ChipRef | None = None
    text: str | None = None
    prediction: str | None = None
    score: float | None = None
    model_version: str | None = None
    mask: Any = None
    spans: tuple[tuple[int, int, str], ...] = ()
    gold: str | None = None

    def geolabel_fields(self) -> dict[str, Any]:
        """The :data:`GEOLABEL_FIELDS` of this task, JSON-able."""
        chip = self.chip
        return {
            "geolabel_item": self.item,
            "geolabel_kind": self.kind,
            "geolabel_project": self.project,
            "geolabel_crs": self.crs if chip is None else chip.crs,
            "geolabel_scene": None if chip is None else chip.scene_id,
            "geolabel_window": None if chip is None else list(chip.window),
            "geolabel_transform": None if chip is None else list(chip.transform),
            "geolabel_bounds": None if chip is None else list(chip.bounds),
        }


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """One class label given to an item by one annotator (parcels, POIs, tiles' summaries).

    Attributes:
        item: geolabel item id.
        annotator: Who answered (platform user/worker id, prefixed by the platform).
        label: The class id.
        created_at: ISO-8601 time of the answer, if known.
        seconds: Time spent, if known.
        where: Where in the input file (for error messages).
        annotator_kind: ``crowd``, ``expert`` or ``model``.
        confidence: Platform confidence of a consolidated answer, if any.
    """

    item: str
    annotator: str
    label: str
    created_at: str | None
    seconds: float | None
    where: str
    annotator_kind: str = "crowd"
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One entity span marked in a notice by one annotator (end exclusive).

    Attributes:
        item: Notice item id.
        annotator: Who marked it.
        start: First character.
        end: One past the last character.
        label: Entity label.
        text: The covered text.
        created_at: When, if known.
        seconds: Time spent on the notice, if known.
        where: Where in the input file.
    """

    item: str
    annotator: str
    start: int
    end: int
    label: str
    text: str
    created_at: str | None
    seconds: float | None
    where: str


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """One class region drawn on an item's chip, georeferenced to the project CRS.

    Attributes:
        item: Item id (a tile, usually).
        annotator: Who drew it.
        label: Class id.
        geometry: (Multi)polygon in the project CRS.
        shape: ``brush`` or ``polygon``.
        created_at: When, if known.
        seconds: Time spent on the item, if known.
        where: Where in the input file.
        annotator_kind: ``crowd``, ``expert`` or ``model``.
    """

    item: str
    annotator: str
    label: str
    geometry: BaseGeometry
    shape: str
    created_at: str | None
    seconds: float | None
    where: str
    annotator_kind: str = "crowd"


@dataclass(frozen=True, slots=True)
class GoldRecord:
    """A known answer for an item (a gold or control question).

    Attributes:
        item: Item id.
        label: The answer.
        where: Where in the input file.
    """

    item: str
    label: str
    where: str


@dataclass(frozen=True, slots=True)
class ReferenceRecord:
    """A platform's own consolidated answer for an item (e.g. Appen's aggregated report).

    Kept apart from the votes (it is not one more annotator) as a reference to compare the
    consensus with.

    Attributes:
        item: Item id.
        label: The platform's answer.
        confidence: The platform's confidence in it, if given.
        where: Where in the input file.
    """

    item: str
    label: str
    confidence: float | None
    where: str


@dataclass(frozen=True, slots=True)
class ParsedImport:
    """Everything read from one platform file, before it touches the store.

    Attributes:
        source: Format name (``label_studio``, ``toloka``, ``sagemaker``...).
        path: The file read.
        sha256: Digest of the file's bytes.
        labels: Class labels.
        spans: Entity spans.
        segments: Drawn regions.
        gold: Known answers.
        n_skipped: Answers left out on purpose (skipped/cancelled/rejected), by reason.
        references: The platform's consolidated answers (stored apart from the votes).
        annotator_attrs: Per annotator, attributes to merge into its ``attrs`` JSON (a
            platform's trust score kept as a prior, ...).
    """

    source: str
    path: str
    sha256: str
    labels: tuple[LabelRecord, ...] = ()
    spans: tuple[SpanRecord, ...] = ()
    segments: tuple[SegmentRecord, ...] = ()
    gold: tuple[GoldRecord, ...] = ()
    n_skipped: dict[str, int] = field(default_factory=dict)
    references: tuple[ReferenceRecord, ...] = ()
    annotator_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise AnnotationImportError("An import needs a source name.")


@dataclass(frozen=True, slots=True)
class InteropImportResult:
    """What an import from a labeling platform stored.

    Attributes:
        source: Format name.
        path: The file.
        import_id: The store's import record for the annotations (``None`` when the file held
            only gold answers or nothing new).
        n_labels: Class labels read.
        n_spans: Entity spans read.
        n_segments: Drawn regions read.
        n_gold: Gold answers read.
        n_added: Annotation rows stored by this call (labels, one per span, one per drawn
            annotation).
        n_duplicates: Annotation rows already stored.
        n_skipped: Answers left out on purpose, by reason.
        already_imported: The same content was imported before.
        n_references: The platform's consolidated answers read.
    """

    source: str
    path: str
    import_id: str | None
    n_labels: int
    n_spans: int
    n_segments: int
    n_gold: int
    n_added: int
    n_duplicates: int
    n_skipped: dict[str, int]
    already_imported: bool
    n_references: int = 0


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an export wrote.

    Attributes:
        format: Format name.
        kind: Item kind exported (``None`` for GIS exports of every parcel).
        paths: Files written (tasks file first).
        n_tasks: Tasks or features written.
        n_predictions: Tasks that carry a pre-label.
        n_gold: Gold tasks.
        chips_dir: Folder of the image chips, if any.
    """

    format: str
    kind: str | None
    paths: tuple[str, ...]
    n_tasks: int
    n_predictions: int = 0
    n_gold: int = 0
    chips_dir: str | None = None
