"""One exception hierarchy for geolabel: every user-facing error says what was wrong and what to do.

Each class also inherits the builtin a caller would naturally catch (``ValueError``,
``OSError``, ``KeyError``...), as rasterio does, so generic code keeps working. Nothing here
imports click, typer or any heavy library: the CLI turns these into exit codes at the edge.
"""

from __future__ import annotations

__all__ = [
    "AggregationError",
    "AggregationWarning",
    "AnnotationImportError",
    "AssignmentError",
    "AuditError",
    "BandError",
    "CRSMismatchError",
    "ClusterError",
    "ColumnError",
    "ConfigError",
    "EncodingError",
    "FetchError",
    "GeolabelDeprecationWarning",
    "GeolabelError",
    "GeometryError",
    "IngestConfigError",
    "InputFileError",
    "LabelError",
    "LayerError",
    "ModelMismatchError",
    "MosaicError",
    "NoDataWarning",
    "NotFittedError",
    "NoticeTooLongError",
    "PipelineError",
    "ProjectExistsError",
    "ProjectNotFoundError",
    "QueryError",
    "RasterReadError",
    "ReprojectionWarning",
    "ReviewConflictError",
    "ReviewError",
    "ReviewerAuthError",
    "SpanError",
    "StoreError",
    "TaxonomyError",
    "TilingError",
]


class GeolabelError(Exception):
    """Root of every error geolabel raises on purpose.

    The message is written for the user: what was wrong, in which file, and how to fix it.
    """


class InputFileError(GeolabelError, OSError):
    """A file the user named is missing, unreadable or of the wrong kind."""


class RasterReadError(GeolabelError, OSError):
    """A raster cannot be read, or lacks what geolabel needs (CRS, geotransform, bands)."""


class CRSMismatchError(GeolabelError, ValueError):
    """Two inputs are in different or unknown coordinate reference systems."""


class GeometryError(GeolabelError, ValueError):
    """Geometries are invalid, empty or of the wrong type and could not be repaired."""


class LayerError(GeolabelError, KeyError):
    """A vector layer or table that was asked for does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; users should see it plain.
        return str(self.args[0]) if self.args else ""


class ColumnError(GeolabelError, KeyError):
    """A required column is missing, misnamed or holds the wrong values."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class LabelError(GeolabelError, ValueError):
    """A label is not in the taxonomy it is checked against."""


class TaxonomyError(GeolabelError, ValueError):
    """A taxonomy file does not validate (duplicate ids, unknown parent, missing colour...)."""


class StoreError(GeolabelError, RuntimeError):
    """The project store refused an operation (append-only table, schema mismatch...)."""


class ProjectNotFoundError(StoreError, FileNotFoundError):
    """The project file does not exist or is not a geolabel project."""


class ProjectExistsError(StoreError, FileExistsError):
    """Creating a project would overwrite one that already exists."""


class AnnotationImportError(StoreError, ValueError):
    """An annotation import failed; it was rolled back and nothing was stored."""


class EncodingError(InputFileError):
    """A text file is not UTF-8 (the message names the file, the byte and a likely encoding)."""


class IngestConfigError(GeolabelError, ValueError):
    """An ingest source list or field mapping is wrong (unknown kind, missing location...)."""


class FetchError(GeolabelError, OSError):
    """A portal could not be read: HTTP errors, timeouts or malformed pages after every retry."""


class SpanError(GeolabelError, ValueError):
    """An entity span does not fit its text (offsets out of range, text mismatch, bad label)."""


class NoticeTooLongError(GeolabelError, ValueError):
    """A notice is longer than the limit the notice pipeline accepts."""


class PipelineError(GeolabelError, RuntimeError):
    """A spaCy pipeline for notices is missing, damaged, or cannot be trained as asked."""


class TilingError(GeolabelError, ValueError):
    """A tile grid cannot be built with the parameters given."""


class BandError(GeolabelError, ValueError):
    """A band selection or band statistics do not fit the scene they are used with."""


class MosaicError(GeolabelError, ValueError):
    """Tile predictions cannot be put back on the scene grid (wrong shape, unknown tile...)."""


class ModelMismatchError(GeolabelError, ValueError):
    """A model does not fit the data or taxonomy it is asked to work on (retrain it)."""


class ReviewError(GeolabelError, ValueError):
    """An expert decision or taxonomy proposal cannot be recorded or applied as given."""


class ReviewConflictError(ReviewError):
    """Someone else decided the item since it was loaded; reload it and decide again."""


class ReviewerAuthError(GeolabelError, PermissionError):
    """A write came without a reviewer token, or with a token that is not known."""


class NotFittedError(GeolabelError, AttributeError):
    """Fitted state was read before ``fit`` was called."""


class AggregationError(GeolabelError, ValueError):
    """Annotations cannot be aggregated or scored as given (empty, one annotator, no gold...)."""


class QueryError(GeolabelError, ValueError):
    """A parcel query filter names an unknown class, district, POI category or value."""


class ClusterError(GeolabelError, RuntimeError):
    """A Dask scheduler cannot be reached, or a task failed on a worker."""


class AssignmentError(GeolabelError, ValueError):
    """Tasks cannot be assigned as asked (too few annotators for the redundancy, no gold...)."""


class ConfigError(GeolabelError, ValueError):
    """A settings file or value of the labeling loop is missing, unknown or out of range."""


class AuditError(GeolabelError, ValueError):
    """An audit cannot be planned, drawn or recorded as given (bad sizes, unknown stratum...)."""


class NoDataWarning(UserWarning):
    """A read or tile is mostly or entirely nodata."""


class AggregationWarning(UserWarning):
    """Annotations were cleaned before aggregation (duplicate votes dropped, labels mapped...)."""


class ReprojectionWarning(UserWarning):
    """An input was reprojected to the project CRS."""


class GeolabelDeprecationWarning(FutureWarning):
    """A parameter or function is deprecated and will be removed."""
