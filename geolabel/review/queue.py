r"""The expert review queue: disputed parcels ranked by hotspot, disagreement, impact and conflict.

The queue takes the two frames of the disagreement and hotspot analysis
(:func:`geolabel.review.disagreement.project_disagreement` and the ``items`` frame of
:func:`geolabel.review.hotspots.project_hotspots`; tests and other callers can build them by
hand) and ranks every item by a priority in :math:`[0, 1 + w_r]`:

.. math:: P_i = w_h H_i + w_d D_i + w_m C_i + w_i I_i + w_r R_i

* :math:`H_i` **hotspot membership**: :math:`\sqrt{s_h / s_{\max}}` for an item of a
  significant Gi* hotspot :math:`h` of :math:`s_h` significant parcels (the largest hotspot's
  items get 1), 0 otherwise. Hotspots come first because a cluster of disputes usually means
  the guidelines (or the taxonomy) are wrong there, which one decision can settle for many
  parcels -- the more parcels, the more one decision settles, so larger hotspots lead;
* :math:`D_i` **disagreement**: the combined score of the disagreement frame, divided by its
  maximum when it exceeds 1 and clipped to :math:`[0, 1]`;
* :math:`C_i` **model-crowd conflict**: ``model_crowd_disagreement`` (a 0-1 score or a flag),
  0 where no model has predicted;
* :math:`I_i` **impact**: :math:`\frac12(1 - 2^{-n_i}) + \frac12 r_i`, with :math:`n_i` the
  number of municipal notices linked to the parcel (store table ``notice_links``) and
  :math:`r_i` the percentile rank of its area among all parcels (large parcels weigh more);
* :math:`R_i` **relabel flag**: 1 for an item a taxonomy split left ambiguous (it has no valid
  label until someone decides), which puts those items ahead of everything else.

Default weights are :class:`QueueWeights` (0.4, 0.3, 0.15, 0.15, 1.0). Ties are broken by
item id, so the order is reproducible. Items already decided under the current taxonomy
version drop out of the queue (pass ``include_decided=True`` to keep them).

The queue is a GeoDataFrame (parcel polygons in the project CRS) that
:func:`export_queue` writes as a GeoPackage layer and as CSV, with empty ``decision_label``,
``decision_rationale`` and ``reviewer`` columns for QGIS users to fill in and
``geolabel review import`` to read back (the ``version`` column guards against overwriting a
decision someone else made meanwhile).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from geolabel.errors import ColumnError, InputFileError, LayerError, ReviewError

if TYPE_CHECKING:
    from geolabel.store import Project

__all__ = [
    "DECISION_COLUMNS",
    "QUEUE_COLUMNS",
    "QueueWeights",
    "build_queue",
    "export_queue",
    "project_queue",
]

QUEUE_COLUMNS: tuple[str, ...] = (
    "rank",
    "item",
    "priority",
    "reason",
    "status",
    "version",
    "hotspot_id",
    "in_hotspot",
    "gi_z",
    "q_value",
    "disagreement",
    "vote_entropy",
    "observed_disagreement",
    "posterior_entropy",
    "n_votes",
    "consensus_label",
    "model_label",
    "model_crowd_disagreement",
    "top_pair",
    "n_notices",
    "area_m2",
    "impact",
    "district",
)
"""Columns of the queue, in order (the GeoDataFrame adds ``geometry``)."""

DECISION_COLUMNS: tuple[str, ...] = ("decision_label", "decision_rationale", "reviewer")
"""Empty columns added on export, for reviewers working in QGIS or a spreadsheet."""


@dataclass(frozen=True, slots=True)
class QueueWeights:
    """Weights of the queue priority (see the module docstring for the formula).

    Attributes:
        hotspot: Weight of membership in a significant hotspot.
        disagreement: Weight of the combined disagreement score.
        conflict: Weight of the model-crowd conflict.
        impact: Weight of impact (linked notices and parcel size).
        relabel: Weight of the relabel flag set by a taxonomy split.
    """

    hotspot: float = 0.4
    disagreement: float = 0.3
    conflict: float = 0.15
    impact: float = 0.15
    relabel: float = 1.0

    def __post_init__(self) -> None:
        for name in ("hotspot", "disagreement", "conflict", "impact", "relabel"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
                raise ReviewError(
                    f"QueueWeights.{name} must be a finite number >= 0, got {value!r}."
                )


def _require(frame: pd.DataFrame, columns: Collection[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ColumnError(
            f"{what} lacks column(s) {', '.join(missing)} (it has: "
            f"{', '.join(map(str, frame.columns)) or 'none'}); build it with "
            "geolabel.review.disagreement.project_disagreement / "
            "geolabel.review.hotspots.project_hotspots, or name the columns so."
        )
    if frame["item"].isna().any():
        raise ColumnError(f"{what}: the item column has blank values; every row needs an item.")
    if frame["item"].astype(str).duplicated().any():
        dup = frame.loc[frame["item"].astype(str).duplicated(), "item"].astype(str).tolist()
        raise ColumnError(f"{what}: items appear more than once: {', '.join(dup[:5])}.")


def _unit_score(values: pd.Series, what: str) -> pd.Series:
    """Return ``values`` as floats in [0, 1] (booleans as 0/1; NaN as 0; max-scaled above 1)."""
    if values.dtype == bool or values.dtype == object:
        try:
            numeric = values.map(
                lambda v: (
                    np.nan if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)
                )
            ).astype(float)
        except (TypeError, ValueError) as exc:
            raise ColumnError(f"column {what!r} must hold numbers or booleans ({exc}).") from exc
    else:
        numeric = pd.to_numeric(values, errors="coerce").astype(float)
    if (numeric < 0).any():
        raise ColumnError(f"column {what!r} has negative values; scores must be >= 0.")
    numeric = numeric.fillna(0.0)
    top = float(numeric.max()) if len(numeric) else 0.0
    if top > 1.0:
        numeric = numeric / top
    return numeric.clip(0.0, 1.0)


def _reason(row: pd.Series) -> str:
    parts: list[str] = []
    if row["status"] == "relabel":
        parts.append("relabel after a taxonomy split")
    if row["in_hotspot"]:
        parts.append(f"hotspot {row['hotspot_id']}")
    if isinstance(row["top_pair"], str) and row["top_pair"]:
        parts.append(f"votes split {row['top_pair']}")
    if row["model_crowd_disagreement"] and float(row["model_crowd_disagreement"]) >= 0.5:
        parts.append(f"model says {row['model_label']}, crowd {row['consensus_label']}")
    if row["n_notices"]:
        parts.append(f"{int(row['n_notices'])} notice(s)")
    return "; ".join(parts) if parts else "disagreement"


def build_queue(
    disagreement: pd.DataFrame,
    hotspots: pd.DataFrame | None = None,
    *,
    parcels: gpd.GeoDataFrame | None = None,
    notice_links: pd.DataFrame | None = None,
    relabel: Collection[str] = (),
    decided: Collection[str] = (),
    versions: dict[str, int] | None = None,
    weights: QueueWeights | None = None,
) -> gpd.GeoDataFrame:
    """Rank items for expert review.

    Args:
        disagreement: One row per item: ``item`` and ``disagreement`` (required), and any of
            ``n_votes``, ``vote_entropy``, ``observed_disagreement``, ``posterior_entropy``,
            ``consensus_label``, ``model_label``, ``model_crowd_disagreement``, ``top_pair``.
        hotspots: The hotspot analysis per item: ``item``, ``significant``, ``hotspot_id``,
            optional ``gi_z``, ``q_value``; ``None`` when there is none.
        parcels: Parcel polygons with ``parcel_id`` (and optionally ``district``), for the
            geometry, area and district of each item; ``None`` gives a queue without geometry.
        notice_links: Links from notices to items (``notice_id``, ``item``).
        relabel: Items a taxonomy split left ambiguous; they enter the queue even without
            disagreement.
        decided: Items already decided under the current taxonomy; they are left out.
        versions: Item -> review-state version, for optimistic concurrency (0 when absent).
        weights: Priority weights; :class:`QueueWeights` defaults when None.

    Returns:
        The queue, highest priority first, columns :data:`QUEUE_COLUMNS` plus ``geometry``
        (``None`` geometries when ``parcels`` is None or lacks an item).

    Raises:
        ColumnError: A frame lacks a required column, has blank or duplicate items, or a
            score column holds non-numbers.
    """
    w = weights if weights is not None else QueueWeights()
    _require(disagreement, ("item", "disagreement"), "the disagreement frame")
    frame = disagreement.copy()
    frame["item"] = frame["item"].astype(str)
    extra = sorted(set(map(str, relabel)) - set(frame["item"]))
    if extra:
        frame = pd.concat([frame, pd.DataFrame({"item": extra})], ignore_index=True)
    defaults: dict[str, object] = {
        "n_votes": 0,
        "vote_entropy": np.nan,
        "observed_disagreement": np.nan,
        "posterior_entropy": np.nan,
        "consensus_label": None,
        "model_label": None,
        "model_crowd_disagreement": 0.0,
        "top_pair": None,
    }
    for column, value in defaults.items():
        if column not in frame.columns:
            frame[column] = pd.Series([value] * len(frame), index=frame.index, dtype=object)
    frame["disagreement"] = _unit_score(frame["disagreement"], "disagreement")
    frame["model_crowd_disagreement"] = _unit_score(
        frame["model_crowd_disagreement"], "model_crowd_disagreement"
    )

    if hotspots is not None and len(hotspots):
        _require(hotspots, ("item", "significant", "hotspot_id"), "the hotspot items frame")
        hs = hotspots.copy()
        hs["item"] = hs["item"].astype(str)
        for column in ("gi_z", "q_value"):
            if column not in hs.columns:
                hs[column] = np.nan
        hs = hs[["item", "significant", "hotspot_id", "gi_z", "q_value"]]
        frame = frame.merge(hs, on="item", how="left")
    else:
        frame["significant"] = False
        frame["hotspot_id"] = None
        frame["gi_z"] = np.nan
        frame["q_value"] = np.nan
    significant = frame["significant"].map(lambda v: bool(v) if pd.notna(v) else False)
    frame["in_hotspot"] = significant & frame["hotspot_id"].notna()
    frame["hotspot_id"] = [
        str(h) if inside else None
        for h, inside in zip(frame["hotspot_id"], frame["in_hotspot"], strict=True)
    ]

    if notice_links is not None and len(notice_links):
        _require_links(notice_links)
        counts = (
            notice_links.assign(item=notice_links["item"].astype(str))
            .groupby("item")["notice_id"]
            .nunique()
        )
        frame["n_notices"] = frame["item"].map(counts).fillna(0).astype(int)
    else:
        frame["n_notices"] = 0

    geometry: gpd.GeoSeries | None = None
    crs = None
    frame["area_m2"] = np.nan
    frame["district"] = None
    area_rank = pd.Series(0.0, index=frame.index)
    if parcels is not None:
        if "parcel_id" not in parcels.columns:
            raise ColumnError(
                "the parcels layer lacks column 'parcel_id'; pass the project's parcels layer."
            )
        by_id = parcels.assign(parcel_id=parcels["parcel_id"].astype(str)).set_index("parcel_id")
        crs = parcels.crs
        all_areas = by_id.geometry.area
        ranks = all_areas.rank(pct=True, method="average")
        frame["area_m2"] = frame["item"].map(all_areas).astype(float).round(1)
        area_rank = frame["item"].map(ranks).astype(float).fillna(0.0)
        if "district" in by_id.columns:
            frame["district"] = frame["item"].map(by_id["district"])
        geometry = gpd.GeoSeries(frame["item"].map(by_id.geometry).to_numpy(), crs=crs)
    frame["impact"] = 0.5 * (1.0 - np.power(2.0, -frame["n_notices"].astype(float))) + 0.5 * (
        area_rank
    )

    relabel_set = set(map(str, relabel))
    frame["status"] = np.where(frame["item"].isin(relabel_set), "relabel", "open")
    versions = versions or {}
    frame["version"] = frame["item"].map(lambda i: int(versions.get(i, 0))).astype(int)
    sizes = (
        hotspots.loc[hotspots["significant"].fillna(False).astype(bool), "hotspot_id"]
        .dropna()
        .astype(str)
        .value_counts()
        if hotspots is not None and len(hotspots)
        else pd.Series(dtype="int64")
    )
    size = frame["hotspot_id"].map(sizes).astype(float).fillna(0.0)
    largest = float(sizes.max()) if len(sizes) else 1.0
    membership = np.where(frame["in_hotspot"], np.sqrt(size.clip(lower=1.0) / largest), 0.0)
    frame["priority"] = (
        w.hotspot * membership
        + w.disagreement * frame["disagreement"]
        + w.conflict * frame["model_crowd_disagreement"]
        + w.impact * frame["impact"]
        + w.relabel * (frame["status"] == "relabel").astype(float)
    ).round(6)
    keep = ~frame["item"].isin(set(map(str, decided)) - relabel_set)
    frame = frame.loc[keep]
    if geometry is not None:
        geometry = geometry.loc[keep.to_numpy()]
    order = np.lexsort((frame["item"].to_numpy(), -frame["priority"].to_numpy()))
    frame = frame.iloc[order].reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    frame["reason"] = frame.apply(_reason, axis=1) if len(frame) else pd.Series(dtype=str)
    out = frame[list(QUEUE_COLUMNS)]
    geoms = (
        gpd.GeoSeries([None] * len(out), crs=crs)
        if geometry is None
        else gpd.GeoSeries(geometry.iloc[order].to_numpy(), crs=crs)
    )
    return gpd.GeoDataFrame(out, geometry=geoms.to_numpy(), crs=crs)


def _require_links(links: pd.DataFrame) -> None:
    missing = [c for c in ("notice_id", "item") if c not in links.columns]
    if missing:
        raise ColumnError(
            f"the notice links lack column(s) {', '.join(missing)}; pass Project.notice_links()."
        )


def project_queue(
    project: Project,
    *,
    disagreement: pd.DataFrame | None = None,
    hotspots: pd.DataFrame | None = None,
    weights: QueueWeights | None = None,
    include_decided: bool = False,
    include_relabel: bool = True,
    permutations: int | None = None,
    use_hotspots: bool = True,
) -> gpd.GeoDataFrame:
    """Build the review queue of a project.

    Args:
        project: An open project.
        disagreement: The disagreement frame; computed with
            :func:`geolabel.review.disagreement.project_disagreement` when None.
        hotspots: The hotspot items frame; from
            :func:`geolabel.review.hotspots.project_hotspots` when None (and ``use_hotspots``).
        weights: Priority weights.
        include_decided: Keep items already decided under the current taxonomy version.
        include_relabel: Route items flagged for relabeling to the head of the queue (False
            ranks them like any other item; the web app applies the flags live).
        permutations: Permutations of the Gi* test when the hotspots are computed here (the
            hotspot module's default when None).
        use_hotspots: False ranks without hotspot membership when ``hotspots`` is None
            (faster: no Gi* test).

    Returns:
        The queue (see :func:`build_queue`), with each item's review-state version.

    Raises:
        ColumnError: A given frame lacks required columns.
        StoreError: The project cannot be read.
    """
    from geolabel.review.decisions import review_states
    from geolabel.review.tables import current_taxonomy

    if disagreement is None:
        from geolabel.review.disagreement import project_disagreement

        disagreement = project_disagreement(project)
    if hotspots is None and use_hotspots:
        from geolabel.review.hotspots import project_hotspots

        try:
            result = project_hotspots(project, disagreement=disagreement, permutations=permutations)
            hotspots = result.items
        except ReviewError as exc:  # too few observed parcels yet: rank without hotspots
            warnings.warn(f"No hotspots in the queue: {exc}", UserWarning, stacklevel=2)
            hotspots = None
    try:
        parcels = project.read_layer("parcels")
    except LayerError:
        parcels = None
    states = review_states(project)
    taxonomy = current_taxonomy(project)
    current = states["taxonomy_version"] == str(taxonomy.version)
    decided = (
        []
        if include_decided
        else states.loc[(states["status"] == "decided") & current, "item"].tolist()
    )
    relabel = states.loc[states["status"] == "relabel", "item"].tolist() if include_relabel else []
    versions = dict(zip(states["item"], states["version"].astype(int), strict=True))
    return build_queue(
        disagreement,
        hotspots,
        parcels=parcels,
        notice_links=project.notice_links(),
        relabel=relabel,
        decided=decided,
        versions=versions,
        weights=weights,
    )


def export_queue(
    queue: gpd.GeoDataFrame,
    *,
    gpkg: str | os.PathLike[str] | None = None,
    csv: str | os.PathLike[str] | None = None,
    layer: str = "review_queue",
) -> list[Path]:
    """Write the queue as a GeoPackage layer and/or a CSV file, with empty decision columns.

    The GeoPackage layer (replaced if it exists) opens in QGIS; the CSV holds the same columns
    with the geometry as the centroid's ``x``/``y``. Fill ``decision_label``,
    ``decision_rationale`` and ``reviewer`` and read the file back with
    :func:`geolabel.review.decisions.import_decisions`.

    Args:
        queue: The queue from :func:`build_queue`/:func:`project_queue`.
        gpkg: GeoPackage path to write the layer into (created if missing).
        csv: CSV path.
        layer: Layer name in the GeoPackage.

    Returns:
        The paths written.

    Raises:
        InputFileError: Neither path given, a folder does not exist, or writing fails.
    """
    if gpkg is None and csv is None:
        raise InputFileError("export_queue: give a GeoPackage path, a CSV path, or both.")
    out = queue.copy()
    for column in DECISION_COLUMNS:
        out[column] = ""
    written: list[Path] = []
    for target in (gpkg, csv):
        if target is not None and not Path(target).parent.is_dir():
            raise InputFileError(
                f"Cannot write {target}: folder {Path(target).parent} does not exist; create it."
            )
    try:
        if gpkg is not None:
            path = Path(gpkg)
            has_geometry = out.geometry.notna().any()
            data = out if has_geometry else pd.DataFrame(out.drop(columns="geometry"))
            import pyogrio

            pyogrio.write_dataframe(data, path, layer=layer, driver="GPKG")
            written.append(path)
        if csv is not None:
            path = Path(csv)
            table = pd.DataFrame(out.drop(columns="geometry"))
            has = out.geometry.notna() & ~out.geometry.is_empty
            centroids = out.geometry[has].centroid
            table["x"] = np.nan
            table["y"] = np.nan
            table.loc[has.to_numpy(), "x"] = centroids.x.round(2).to_numpy()
            table.loc[has.to_numpy(), "y"] = centroids.y.round(2).to_numpy()
            table.to_csv(path, index=False, lineterminator="\n")
            written.append(path)
    except OSError as exc:
        raise InputFileError(f"Cannot write the review queue: {exc}") from exc
    return written
