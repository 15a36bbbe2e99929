"""Query labeled parcels: attribute filters run as SQL in the GeoPackage, bounds on its index.

A parcel's current label is its latest consensus row when it has one, else the latest
pre-label (prediction) of a model; beside it come the confidence of that label, where it came
from (``label_source``), the agreement of the votes behind a consensus (the share of those
votes that chose the consensus label), the taxonomy version, when it was labeled and whether
an expert reviewed it.

How a query runs (nothing is loaded whole):

1. the attribute filters (class, confidence, agreement, review status, taxonomy version, date
   labeled, district, linked notices) become one SQL ``WHERE`` clause on the parcels layer,
   whose sub-query joins the label tables of the same GeoPackage; GDAL runs it inside SQLite
   (pyogrio ``where``);
2. the spatial filters (a bounding box, a polygon, POIs of a category) give a bounding box
   that GDAL answers from the layer's R-tree spatial index (pyogrio ``bbox``);
3. only the parcels read are refined in memory (point in polygon, distance to a POI) and get
   their label columns from one more SQL query, joined on a temporary table of their ids.

Example:
    >>> import geolabel
    >>> project = geolabel.open_project("demo.gpkg")  # doctest: +SKIP
    >>> project.parcels(cls="commercial", near_poi=("school", 500))  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import math
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geolabel.errors import (
    ColumnError,
    CRSMismatchError,
    GeolabelError,
    InputFileError,
    LayerError,
    QueryError,
)
from geolabel.store import Project

__all__ = [
    "LABEL_COLUMNS",
    "OUTPUT_SUFFIXES",
    "REVIEW_STATUSES",
    "BBox",
    "ProjectQuery",
    "QuerySummary",
    "open_project",
    "summarize",
    "write_parcels",
]

BBox = tuple[float, float, float, float]
"""``(minx, miny, maxx, maxy)``."""

REVIEW_STATUSES: tuple[str, ...] = ("reviewed", "unreviewed")
"""Values of ``review_status``: an expert review decision is stored for the parcel, or not."""

LABEL_COLUMNS: tuple[str, ...] = (
    "label",
    "confidence",
    "label_source",
    "method",
    "model_version",
    "taxonomy_version",
    "labeled_at",
    "agreement",
    "n_votes",
    "review_status",
)
"""Columns added to every parcel a query returns (see :meth:`ProjectQuery.parcels`)."""

OUTPUT_SUFFIXES: dict[str, str] = {".geojson": "GeoJSON", ".gpkg": "GPKG", ".csv": "CSV"}
"""Output file suffix -> format."""

PARCELS_LAYER = "parcels"
POIS_LAYER = "pois"
_ID = "parcel_id"
_ISO = "%Y-%m-%dT%H:%M:%S.%f+00:00"

# The current label of every parcel item: latest consensus row, else latest prediction.
_LABELS_SQL = """
SELECT i.ref AS ref,
  CASE WHEN c.fid IS NOT NULL THEN c.label ELSE p.label END AS label,
  CASE WHEN c.fid IS NOT NULL THEN c.confidence ELSE p.confidence END AS confidence,
  CASE WHEN c.fid IS NOT NULL THEN 'consensus'
       WHEN p.fid IS NOT NULL THEN 'prediction' END AS label_source,
  CASE WHEN c.fid IS NOT NULL THEN c.method WHEN p.fid IS NOT NULL THEN 'prelabel' END AS method,
  CASE WHEN c.fid IS NOT NULL THEN c.model_version ELSE p.model_version END AS model_version,
  CASE WHEN c.fid IS NOT NULL THEN c.taxonomy_version ELSE p.taxonomy_version END
    AS taxonomy_version,
  CASE WHEN c.fid IS NOT NULL THEN c.created_at ELSE p.created_at END AS labeled_at,
  (SELECT AVG(a.label = c.label) FROM json_each(c.votes) j
     JOIN annotations a ON a.annotation_id = j.value) AS agreement,
  CASE WHEN c.fid IS NOT NULL THEN json_array_length(c.votes) ELSE 0 END AS n_votes,
  CASE WHEN c.review_id IS NOT NULL
         OR EXISTS (SELECT 1 FROM reviews r WHERE r.item_id = i.item_id)
       THEN 'reviewed' ELSE 'unreviewed' END AS review_status
FROM items i
LEFT JOIN consensus c ON c.fid = (SELECT MAX(fid) FROM consensus WHERE item_id = i.item_id)
LEFT JOIN predictions p ON p.fid = (SELECT MAX(fid) FROM predictions WHERE item_id = i.item_id)
WHERE i.kind = '{kind}'
"""


@dataclass(frozen=True, slots=True)
class QuerySummary:
    """What a query returned, for ``geolabel query --json``.

    Attributes:
        n_parcels: Parcels returned.
        labels: Parcels per current label (unlabeled parcels under ``""``).
        crs: CRS of the geometries.
        bounds: Bounds of the parcels returned (None when there are none).
        output: File written, if any.
        filters: The filters given (name -> value).
    """

    n_parcels: int
    labels: dict[str, int]
    crs: str
    bounds: BBox | None
    output: str | None
    filters: dict[str, Any]


def open_project(path: str | os.PathLike[str]) -> ProjectQuery:
    """Open a project for queries.

    Args:
        path: The project GeoPackage (made by ``geolabel init``).

    Returns:
        The project, ready for :meth:`ProjectQuery.parcels`.

    Raises:
        ProjectNotFoundError: No project at ``path``.
        StoreError: The file is not a geolabel project.
    """
    return ProjectQuery(path)


def _literal(value: str | float) -> str:
    """A SQL literal: a quoted string (quotes doubled) or a finite number."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    number = float(value)
    if not math.isfinite(number):
        raise QueryError(f"{value!r} is not a finite number.")
    return repr(number)


def _in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(_literal(v) for v in values) + ")"


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else [str(v) for v in value]
    if not values:
        raise QueryError("An empty list of values matches nothing; give at least one value.")
    return values


def _unknown(what: str, values: Sequence[str], known: Sequence[str], how: str = "") -> None:
    """Raise :class:`QueryError` naming the values not in ``known`` (with close matches)."""
    bad = [v for v in values if v not in set(known)]
    if not bad:
        return
    hints = [m for v in bad for m in difflib.get_close_matches(v, known, n=1)]
    hint = f" Did you mean {', '.join(map(repr, hints))}?" if hints else ""
    listed = ", ".join(map(repr, known)) if known else "none"
    raise QueryError(f"Unknown {what} {', '.join(map(repr, bad))}; known: {listed}.{hint}{how}")


def _timestamp(value: str | date | datetime, name: str) -> str:
    """An ISO-8601 UTC string as the store writes them (naive input is UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise QueryError(
                f"{name} {value!r} is not a date; use ISO-8601 such as 2025-01-31 or "
                "2025-01-31T09:00:00Z."
            ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_ISO)


def _parse_crs(value: object, what: str) -> CRS:
    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        raise CRSMismatchError(
            f"Unknown CRS {value!r} for {what}: {exc}. Give an EPSG code such as EPSG:4326 "
            "or EPSG:32610."
        ) from exc


def _check_bbox(bbox: Sequence[float], what: str = "bbox") -> BBox:
    try:
        values = tuple(float(v) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"{what} {bbox!r} must be four numbers: minx, miny, maxx, maxy.") from exc
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise QueryError(f"{what} {bbox!r} must be four finite numbers: minx, miny, maxx, maxy.")
    minx, miny, maxx, maxy = values
    if minx > maxx or miny > maxy:
        raise QueryError(
            f"{what} {bbox!r} has min > max; give it as minx, miny, maxx, maxy "
            "(west, south, east, north)."
        )
    return minx, miny, maxx, maxy


def _intersect(a: BBox | None, b: BBox) -> BBox:
    if a is None:
        return b
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


class ProjectQuery:
    """A project opened for parcel queries (made by :func:`open_project`).

    Args:
        path: The project GeoPackage.

    Raises:
        ProjectNotFoundError: No project at ``path``.
        StoreError: The file is not a geolabel project.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        with Project.open(path) as project:
            self.path = project.path
            self.crs: str = project.crs
            self._taxonomy_classes: tuple[str, ...] = ()
            try:
                self._taxonomy_classes = project.current_taxonomy().class_ids
            except GeolabelError:  # no taxonomy stored: the classes come from the labels
                self._taxonomy_classes = ()

    def __repr__(self) -> str:
        return f"ProjectQuery({str(self.path)!r})"

    # ------------------------------------------------------------------ SQL helpers

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def _values(self, sql: str) -> list[str]:
        con = self._connect()
        try:
            return sorted({str(r[0]) for r in con.execute(sql) if r[0] is not None})
        finally:
            con.close()

    def _has_table(self, name: str) -> bool:
        return bool(
            self._values(f"SELECT name FROM sqlite_master WHERE type = 'table' AND name = '{name}'")
        )

    def _layer_fields(self, layer: str) -> list[str]:
        try:
            info = pyogrio.read_info(self.path, layer=layer)
        except (pyogrio.errors.DataLayerError, pyogrio.errors.DataSourceError) as exc:
            raise LayerError(
                f"Project {self.path} has no {layer!r} layer; make the project with it "
                f"(`geolabel init PROJECT --{layer} FILE ...`)."
            ) from exc
        return [str(f) for f in info["fields"]]

    # ------------------------------------------------------------------ what there is

    @property
    def classes(self) -> list[str]:
        """Classes a parcel filter accepts: the current taxonomy's and every stored label."""
        stored = self._values(
            "SELECT DISTINCT c.label FROM consensus c JOIN items i ON i.item_id = c.item_id "
            "WHERE i.kind = 'parcel' UNION SELECT DISTINCT p.label FROM predictions p "
            "JOIN items i ON i.item_id = p.item_id WHERE i.kind = 'parcel'"
        )
        return [*self._taxonomy_classes, *(c for c in stored if c not in self._taxonomy_classes)]

    @property
    def districts(self) -> list[str]:
        """Districts of the parcels layer (its ``district`` column).

        Raises:
            ColumnError: The parcels layer has no ``district`` column.
        """
        if "district" not in self._layer_fields(PARCELS_LAYER):
            raise ColumnError(
                f"The parcels layer of {self.path} has no 'district' column, so there is "
                "nothing to filter by district; filter with bbox= or within= instead."
            )
        return self._values('SELECT DISTINCT "district" FROM "parcels"')

    @property
    def notice_kinds(self) -> list[str]:
        """Kinds of the notices linked to parcels (``notice_links``, else the notices' kind)."""
        if not self._has_table("notice_links"):
            return []
        return self._values(
            "SELECT DISTINCT COALESCE(l.kind, json_extract(n.attrs, '$.kind')) FROM notice_links l"
            " LEFT JOIN notices n ON n.notice_id = l.notice_id"
        )

    @property
    def columns(self) -> list[str]:
        """Attribute columns of the parcels layer."""
        return self._layer_fields(PARCELS_LAYER)

    def pois(self, category: str | Sequence[str] | None = None) -> gpd.GeoDataFrame:
        """POIs with their category.

        The category of a POI is its current label (latest consensus, else latest
        prediction of its ``poi`` item) when POI items are labeled, else the ``category``
        column of the ``pois`` layer.

        Args:
            category: Only POIs of this category (or these).

        Returns:
            The POIs (project CRS) with a ``category`` column.

        Raises:
            LayerError: The project has no ``pois`` layer.
            QueryError: No POI category is known, or an unknown category was asked for.
        """
        fields = self._layer_fields(POIS_LAYER)
        pois = pyogrio.read_dataframe(self.path, layer=POIS_LAYER)
        con = self._connect()
        try:
            labels = pd.read_sql_query(
                f"SELECT ref, label FROM ({_LABELS_SQL.format(kind='poi')}) "
                "WHERE label IS NOT NULL",
                con,
            )
        finally:
            con.close()
        id_column = "poi_id" if "poi_id" in fields else None
        if len(labels) and id_column is not None:
            mapping = dict(zip(labels["ref"].astype(str), labels["label"], strict=True))
            pois["category"] = pois[id_column].astype(str).map(mapping)
        elif "category" not in fields:
            raise QueryError(
                f"The POIs of {self.path} carry no category: no POI item has a consensus or a "
                "prediction, and the 'pois' layer has no 'category' column. Label the POIs "
                "(store their consensus or pre-labels under the POI taxonomy, e.g. "
                "Project.add_consensus(..., taxonomy_name='poi')), or make the project with a "
                "POI file that has a 'category' column (`geolabel init ... --pois FILE`)."
            )
        pois = pois[pois["category"].notna()]
        wanted = _as_list(category)
        if wanted is not None:
            _unknown("POI category", wanted, sorted(pois["category"].astype(str).unique()))
            pois = pois[pois["category"].isin(wanted)]
        return gpd.GeoDataFrame(pois, crs=pois.crs)

    # ------------------------------------------------------------------ the query

    def parcels(
        self,
        cls: str | Sequence[str] | None = None,
        *,
        min_confidence: float | None = None,
        max_confidence: float | None = None,
        min_agreement: float | None = None,
        review_status: Literal["reviewed", "unreviewed"] | None = None,
        taxonomy_version: str | int | None = None,
        label_source: Literal["consensus", "prediction"] | None = None,
        district: str | Sequence[str] | None = None,
        labeled_after: str | date | datetime | None = None,
        labeled_before: str | date | datetime | None = None,
        bbox: Sequence[float] | None = None,
        bbox_crs: str | None = None,
        within: str | os.PathLike[str] | shapely.Geometry | gpd.GeoSeries | None = None,
        within_crs: str | None = None,
        within_layer: str | None = None,
        near_poi: tuple[str, float] | None = None,
        intersects_notices: str | Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        crs: str | None = None,
    ) -> gpd.GeoDataFrame:
        """Parcels with their current label, filtered.

        Any label filter (class, confidence, agreement, review status, taxonomy version,
        label source, dates) keeps only labeled parcels; without one, unlabeled parcels come
        too, with empty label columns.

        Args:
            cls: Current label is this class (or one of these).
            min_confidence: Confidence of the current label at least this (0-1).
            max_confidence: Confidence at most this (0-1): the doubtful ones.
            min_agreement: Share of the votes behind a consensus that chose its label, at
                least this (0-1); pre-labels have no votes and never pass.
            review_status: ``reviewed`` (an expert decision is stored) or ``unreviewed``.
            taxonomy_version: Labels of this taxonomy version.
            label_source: ``consensus`` or ``prediction`` (a model's pre-label).
            district: Parcels of this district (or these; the layer's ``district`` column).
            labeled_after: Labeled at or after this date/time (ISO-8601; naive is UTC).
            labeled_before: Labeled before this date/time.
            bbox: ``(minx, miny, maxx, maxy)``; parcels touching it (spatial index).
            bbox_crs: CRS of ``bbox`` (default: the project's).
            within: Parcels whose representative point lies in this polygon: a vector file
                (every feature, unioned) or a shapely geometry / GeoSeries.
            within_crs: CRS of a shapely ``within`` geometry (default: the project's).
            within_layer: Layer of a ``within`` file that has several.
            near_poi: ``(category, metres)``: parcels within that distance of a POI of that
                category (see :meth:`pois`).
            intersects_notices: Parcels linked to a notice of this kind (or these), e.g.
                ``"zoning_hearing"`` (links stored by ``geolabel notices extract --project``).
            columns: Parcel layer columns to return (``parcel_id`` and the label columns
                always come); all when None.
            crs: Reproject the result to this CRS (default: the project's).

        Returns:
            One row per parcel, sorted by ``parcel_id``: the layer's columns, the
            :data:`LABEL_COLUMNS` and the geometry.

        Raises:
            QueryError: An unknown class, district, POI category, notice kind, review
                status, taxonomy version or label source; a value out of range; a bad date
                or bounding box.
            ColumnError: An unknown column, or a district filter on a layer without one.
            CRSMismatchError: An unknown CRS, or a ``within`` file without a CRS.
            InputFileError: The ``within`` file is missing or unreadable.
            LayerError: The project has no parcels (or, for ``near_poi``, no POIs) layer, or
                a ``within`` file has several layers and ``within_layer`` names none of them.
        """
        fields = self._layer_fields(PARCELS_LAYER)
        if _ID not in fields:
            raise ColumnError(
                f"The parcels layer of {self.path} has no {_ID!r} column; columns: "
                f"{', '.join(fields)}."
            )
        out_crs = _parse_crs(crs, "the output (crs=)") if crs is not None else None
        label_conds = self._label_conditions(
            cls=cls,
            min_confidence=min_confidence,
            max_confidence=max_confidence,
            min_agreement=min_agreement,
            review_status=review_status,
            taxonomy_version=taxonomy_version,
            label_source=label_source,
            labeled_after=labeled_after,
            labeled_before=labeled_before,
        )
        layer_conds: list[str] = []
        if label_conds:
            layer_conds.append(
                f"{_ID} IN (SELECT ref FROM ({_LABELS_SQL.format(kind='parcel')}) "
                f"WHERE {' AND '.join(label_conds)})"
            )
        districts = _as_list(district)
        if districts is not None:
            _unknown("district", districts, self.districts)
            layer_conds.append(f'"district" IN {_in_list(districts)}')
        kinds = _as_list(intersects_notices)
        if kinds is not None:
            known = self.notice_kinds
            if not known:
                raise QueryError(
                    f"No notice is linked to a parcel in {self.path}, so none can be "
                    "intersected. Link them first: `geolabel notices extract --project "
                    f"{self.path}`."
                )
            _unknown("notice kind", kinds, known)
            layer_conds.append(
                f"{_ID} IN (SELECT i.ref FROM notice_links l "
                "JOIN items i ON i.item_id = l.item_id "
                "LEFT JOIN notices n ON n.notice_id = l.notice_id "
                f"WHERE COALESCE(l.kind, json_extract(n.attrs, '$.kind')) IN {_in_list(kinds)})"
            )
        read_columns = None
        if columns is not None:
            wanted = [str(c) for c in columns]
            unknown = [c for c in wanted if c not in fields and c not in LABEL_COLUMNS]
            if unknown:
                raise ColumnError(
                    f"Unknown column(s) {', '.join(map(repr, unknown))} of the parcels layer of "
                    f"{self.path}; columns: {', '.join([*fields, *LABEL_COLUMNS])}."
                )
            read_columns = [_ID, *(c for c in wanted if c in fields and c != _ID)]

        # Spatial filters: one bounding box for the index, then exact tests in memory.
        box: BBox | None = None
        if bbox is not None:
            box = self._project_bbox(_check_bbox(bbox), bbox_crs)
        area = None
        if within is not None:
            area = self._within_geometry(within, within_crs, within_layer)
            minx, miny, maxx, maxy = (float(v) for v in area.bounds)
            box = _intersect(box, (minx, miny, maxx, maxy))
        near = None
        if near_poi is not None:
            category, distance = self._near_poi_arg(near_poi)
            pois = self.pois(category)
            if pois.empty:
                return self._empty(fields if read_columns is None else read_columns, out_crs)
            near = (shapely.STRtree(np.asarray(pois.geometry.values)), distance)
            pminx, pminy, pmaxx, pmaxy = (float(v) for v in pois.total_bounds)
            box = _intersect(
                box, (pminx - distance, pminy - distance, pmaxx + distance, pmaxy + distance)
            )
        if box is not None and (box[0] > box[2] or box[1] > box[3]):
            return self._empty(fields if read_columns is None else read_columns, out_crs)

        where = " AND ".join(f"({c})" for c in layer_conds) or None
        try:
            frame = pyogrio.read_dataframe(
                self.path, layer=PARCELS_LAYER, where=where, bbox=box, columns=read_columns
            )
        except (pyogrio.errors.DataLayerError, pyogrio.errors.DataSourceError) as exc:
            raise QueryError(f"GDAL refused the query on {self.path}: {exc}") from exc
        if area is not None and len(frame):
            points = frame.geometry.representative_point()
            frame = frame[shapely.intersects(area, np.asarray(points.values))]
        if near is not None and len(frame):
            tree, distance = near
            hits = tree.query(
                np.asarray(frame.geometry.values), predicate="dwithin", distance=distance
            )
            frame = frame.iloc[np.unique(hits[0])]
        frame = self._attach_labels(frame, label_conds)
        frame = frame.sort_values(_ID, kind="stable").reset_index(drop=True)
        if out_crs is not None:
            frame = frame.to_crs(out_crs)
        return frame

    def _label_conditions(
        self,
        *,
        cls: str | Sequence[str] | None,
        min_confidence: float | None,
        max_confidence: float | None,
        min_agreement: float | None,
        review_status: str | None,
        taxonomy_version: str | int | None,
        label_source: str | None,
        labeled_after: str | date | datetime | None,
        labeled_before: str | date | datetime | None,
    ) -> list[str]:
        """SQL conditions on the columns of the labels query, every value checked."""
        conds: list[str] = []
        classes = _as_list(cls)
        if classes is not None:
            _unknown("class", classes, self.classes)
            conds.append(f"label IN {_in_list(classes)}")
        for name, value, op, column in (
            ("min_confidence", min_confidence, ">=", "confidence"),
            ("max_confidence", max_confidence, "<=", "confidence"),
            ("min_agreement", min_agreement, ">=", "agreement"),
        ):
            if value is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError) as exc:
                raise QueryError(f"{name} must be a number in [0, 1], got {value!r}.") from exc
            if not 0.0 <= number <= 1.0:
                raise QueryError(f"{name} must be in [0, 1], got {value!r}.")
            conds.append(f"{column} {op} {_literal(number)}")
        if (
            min_confidence is not None
            and max_confidence is not None
            and float(min_confidence) > float(max_confidence)
        ):
            raise QueryError(
                f"min_confidence {min_confidence} is above max_confidence {max_confidence}: "
                "nothing can match."
            )
        if review_status is not None:
            _unknown("review status", [str(review_status)], list(REVIEW_STATUSES))
            conds.append(f"label IS NOT NULL AND review_status = {_literal(str(review_status))}")
        if label_source is not None:
            _unknown("label source", [str(label_source)], ["consensus", "prediction"])
            conds.append(f"label_source = {_literal(str(label_source))}")
        if taxonomy_version is not None:
            version = str(taxonomy_version).removeprefix("v")
            _unknown(
                "taxonomy version",
                [version],
                self._values("SELECT DISTINCT version FROM taxonomy_versions"),
            )
            conds.append(f"taxonomy_version = {_literal(version)}")
        if labeled_after is not None:
            conds.append(f"labeled_at >= {_literal(_timestamp(labeled_after, 'labeled_after'))}")
        if labeled_before is not None:
            conds.append(f"labeled_at < {_literal(_timestamp(labeled_before, 'labeled_before'))}")
        return conds

    def _project_bbox(self, bbox: BBox, bbox_crs: str | None) -> BBox:
        if bbox_crs is None:
            return bbox
        source = _parse_crs(bbox_crs, "the bounding box (bbox_crs=)")
        target = CRS.from_user_input(self.crs)
        if source == target:
            return bbox
        transformer = Transformer.from_crs(source, target, always_xy=True)
        out = transformer.transform_bounds(*bbox, densify_pts=21)
        return float(out[0]), float(out[1]), float(out[2]), float(out[3])

    def _within_geometry(
        self,
        within: str | os.PathLike[str] | shapely.Geometry | gpd.GeoSeries,
        within_crs: str | None,
        within_layer: str | None = None,
    ) -> shapely.Geometry:
        """One (multi)polygon in the project CRS, from a file, a geometry or a GeoSeries."""
        if isinstance(within, str | os.PathLike):
            from geolabel.vector import read_vector

            shapes = read_vector(
                Path(within),
                layer=within_layer,
                what="within polygons",
                layer_option="within_layer=",
            ).to_crs(self.crs)
        elif isinstance(within, gpd.GeoSeries | gpd.GeoDataFrame):
            if within.crs is None:
                raise CRSMismatchError(
                    "The within= GeoSeries has no CRS; set one with .set_crs(...) first."
                )
            shapes = within.to_crs(self.crs)
        elif isinstance(within, shapely.Geometry):
            source = _parse_crs(within_crs or self.crs, "the within= geometry (within_crs=)")
            shapes = gpd.GeoSeries([within], crs=source).to_crs(self.crs)
        else:
            raise QueryError(
                f"within= must be a vector file path, a shapely geometry or a GeoSeries, not "
                f"{type(within).__name__}."
            )
        geoms = np.asarray(shapes.geometry.values if hasattr(shapes, "geometry") else shapes)
        polygons = [g for g in geoms if g is not None and g.geom_type.endswith("Polygon")]
        if not polygons:
            raise QueryError(
                "within= holds no polygon; give a polygon (or a file of polygons) that "
                "outlines the area to keep."
            )
        area = shapely.union_all(polygons)
        shapely.prepare(area)
        return area

    @staticmethod
    def _near_poi_arg(near_poi: object) -> tuple[str, float]:
        category: object = None
        distance: object = None
        try:
            category, distance = near_poi  # type: ignore[misc]
            metres = float(distance)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise QueryError(
                f"near_poi must be (category, metres) such as ('school', 500), got {near_poi!r}."
            ) from exc
        if not math.isfinite(metres) or metres < 0:
            raise QueryError(f"near_poi distance must be a number of metres >= 0, got {distance}.")
        return str(category), metres

    def _attach_labels(self, frame: gpd.GeoDataFrame, label_conds: list[str]) -> gpd.GeoDataFrame:
        """Join the label columns of the parcels read (one query over a temp table of ids)."""
        ids = frame[_ID].astype(str).tolist()
        con = self._connect()
        try:
            con.execute("CREATE TEMP TABLE query_ids (ref TEXT PRIMARY KEY)")
            con.executemany("INSERT OR IGNORE INTO temp.query_ids VALUES (?)", ((i,) for i in ids))
            sql = (
                f"SELECT l.* FROM temp.query_ids q JOIN ({_LABELS_SQL.format(kind='parcel')}) l "
                "ON l.ref = q.ref"
            )
            labels = pd.read_sql_query(sql, con)
        finally:
            con.close()
        labels = labels.drop_duplicates("ref").rename(columns={"ref": _ID})
        labels["confidence"] = labels["confidence"].astype("float64")
        labels["agreement"] = labels["agreement"].astype("float64")
        labels["n_votes"] = labels["n_votes"].fillna(0).astype("int64")
        frame = frame.assign(**{_ID: frame[_ID].astype(str)})
        geometry = frame.geometry.name
        keep = [c for c in frame.columns if c not in LABEL_COLUMNS and c != geometry]
        merged = frame[[*keep, geometry]].merge(
            labels, on=_ID, how="inner" if label_conds else "left"
        )
        merged["n_votes"] = merged["n_votes"].fillna(0).astype("int64")
        merged["review_status"] = merged["review_status"].fillna("unreviewed")
        ordered = [*keep, *LABEL_COLUMNS, geometry]
        return gpd.GeoDataFrame(merged[ordered], geometry=geometry, crs=frame.crs)

    def _empty(self, fields: Sequence[str], out_crs: CRS | None) -> gpd.GeoDataFrame:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in [*fields, *LABEL_COLUMNS]})
        empty = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=self.crs), crs=self.crs)
        return empty.to_crs(out_crs) if out_crs is not None else empty


def summarize(
    frame: gpd.GeoDataFrame, *, output: str | None = None, filters: dict[str, Any] | None = None
) -> QuerySummary:
    """The summary record of a query result.

    Args:
        frame: What :meth:`ProjectQuery.parcels` returned.
        output: The file it was written to, if any.
        filters: The filters given.

    Returns:
        Counts per label, CRS, bounds.
    """
    counts = frame["label"].fillna("").value_counts() if len(frame) else pd.Series(dtype=int)
    bounds = None
    if len(frame):
        b = frame.total_bounds
        bounds = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
    return QuerySummary(
        n_parcels=len(frame),
        labels={str(k): int(v) for k, v in counts.items()},
        crs=str(frame.crs.to_string()) if frame.crs is not None else "",
        bounds=bounds,
        output=output,
        filters=dict(filters or {}),
    )


def write_parcels(frame: gpd.GeoDataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a query result as GeoJSON (WGS 84), GeoPackage (layer ``parcels``) or CSV (WKT).

    GeoJSON is written in WGS 84 longitude/latitude, as RFC 7946 asks; GeoPackage and CSV keep
    the frame's CRS (CSV geometry as WKT in a ``geometry`` column).

    Args:
        frame: What :meth:`ProjectQuery.parcels` returned.
        path: ``.geojson``, ``.gpkg`` or ``.csv``; an existing file is replaced.

    Returns:
        The path written.

    Raises:
        InputFileError: Another suffix, or the folder does not exist.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputFileError(
            f"Cannot write {out}: the output must end in {', '.join(OUTPUT_SUFFIXES)}."
        )
    if not out.parent.is_dir():
        raise InputFileError(f"Cannot write {out}: folder {out.parent} does not exist.")
    if suffix == ".csv":
        table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        table["geometry"] = shapely.to_wkt(np.asarray(frame.geometry.values), rounding_precision=3)
        table.to_csv(out, index=False)
        return out
    if out.exists():
        out.unlink()
    if suffix == ".geojson":
        pyogrio.write_dataframe(frame.to_crs(4326), out, driver="GeoJSON")
    else:
        pyogrio.write_dataframe(frame, out, layer=PARCELS_LAYER, driver="GPKG")
    return out
