"""The expert review web app: queue, item pages, decisions, map and taxonomy (FastAPI + Jinja2).

:func:`create_app` builds the ASGI app for one project. Pages are rendered on the server with
Jinja2 (autoescaping on: every user-provided text is escaped); a little JavaScript, served by the
app itself (nothing from a CDN), handles the decision form, its keyboard shortcuts and the
reviewer token. A JSON API serves scripts and tests:

* ``GET /api/queue`` (filters ``hotspot``, ``district``, ``pair``; ``limit``),
* ``GET /api/items/{item}``,
* ``POST /api/decisions`` (token required; 401 without a valid one, 409 when the item changed
  since the reviewer loaded it, 422 for a label outside the taxonomy),
* ``POST /api/proposals/apply`` and ``POST /api/proposals/{id}/reject`` (admin token).

Writes go through :func:`geolabel.review.decisions.record_decision`: one short
``BEGIN IMMEDIATE`` transaction with SQLite's busy timeout, with the item's version checked and
bumped inside it, so two reviewers can never both decide the same version. Every request opens
its own :class:`~geolabel.store.Project`. No request path reaches the file system: static
assets are looked up in a fixed table, chips are cached under a hash of a checked item id, and
the map file is chosen when the app starts.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from geolabel.errors import (
    ColumnError,
    GeolabelError,
    LabelError,
    ReviewConflictError,
    ReviewerAuthError,
    ReviewError,
)
from geolabel.review.chips import chip_cache_dir, render_chip
from geolabel.review.decisions import Decision, record_decision, review_states
from geolabel.review.evolution import (
    TaxonomyProposal,
    apply_proposals,
    proposals,
    reject_proposals,
)
from geolabel.review.queue import QueueWeights, project_queue
from geolabel.review.reviewers import Reviewer, authenticate
from geolabel.review.tables import current_taxonomy, read_connection, table_exists
from geolabel.store import Project

__all__ = ["DecisionIn", "create_app"]

_HERE = Path(__file__).resolve().parent
_STATIC: dict[str, tuple[Path, str]] = {
    "app.js": (_HERE / "static" / "app.js", "text/javascript; charset=utf-8"),
    "app.css": (_HERE / "static" / "app.css", "text/css; charset=utf-8"),
}
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'"
)
_SHORTCUT_KEYS = "1234567890"


class DecisionIn(BaseModel):
    """Body of ``POST /api/decisions``; the reviewer comes from the token, not the body."""

    item: str = Field(min_length=1, max_length=200)
    label: str = Field(min_length=1, max_length=100)
    rationale: str = Field(min_length=1, max_length=5000)
    version: int | None = Field(default=None, ge=0)
    proposal: dict[str, Any] | None = None


class ApplyIn(BaseModel):
    """Body of ``POST /api/proposals/apply``."""

    proposal_ids: list[str] | None = None
    flag: str = "evidence"


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-geolabel-token") or None


def _plain(value: Any) -> Any:
    """Make a pandas/numpy value JSON-able (NaN/NA -> None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _pair_key(text: str) -> frozenset[str]:
    return frozenset(t for t in re.split(r"[^A-Za-z0-9_]+", text.lower()) if t)


class _State:
    """What the app caches between requests (guarded by a lock; keyed by a store stamp)."""

    def __init__(
        self,
        project_path: Path,
        chip_dir: Path | None,
        map_html: Path | None,
        disagreement: pd.DataFrame | None,
        hotspots: pd.DataFrame | None,
        permutations: int | None,
    ) -> None:
        self.permutations = permutations
        self.project_path = project_path
        self.chip_dir = chip_dir
        self.map_html = map_html
        self.disagreement = disagreement
        self.hotspots = hotspots
        self.lock = threading.Lock()
        self.queue: tuple[tuple[Any, ...], pd.DataFrame] | None = None
        self.reliability: tuple[tuple[Any, ...], dict[str, dict[str, Any]]] | None = None

    @contextmanager
    def project(self) -> Iterator[Project]:
        with Project.open(self.project_path) as project:
            yield project

    def stamp(self, project: Project) -> tuple[Any, ...]:
        with read_connection(project) as con:
            parts: list[Any] = [
                con.execute("SELECT MAX(fid) FROM annotations").fetchone()[0],
                con.execute("SELECT MAX(fid) FROM predictions").fetchone()[0],
            ]
            if table_exists(con, "notice_links"):
                parts.append(con.execute("SELECT MAX(fid) FROM notice_links").fetchone()[0])
        return tuple(parts)

    def base_queue(self, project: Project) -> pd.DataFrame:
        stamp = self.stamp(project)
        with self.lock:
            if self.queue is None or self.queue[0] != stamp:
                q = project_queue(
                    project,
                    disagreement=self.disagreement,
                    hotspots=self.hotspots,
                    include_decided=True,
                    include_relabel=False,
                    permutations=self.permutations,
                )
                self.queue = (stamp, pd.DataFrame(q.drop(columns="geometry")))
            return self.queue[1]

    def open_queue(self, project: Project) -> pd.DataFrame:
        """The queue with live review states: decided items out, relabel items first.

        The ranking (disagreement, hotspots, impact) is cached; the review states change with
        every decision and are applied on each request, the way
        :func:`~geolabel.review.queue.project_queue` applies them.
        """
        q = self.base_queue(project)
        states = review_states(project).set_index("item")
        version = str(current_taxonomy(project).version)
        decided = set(
            states.index[(states["status"] == "decided") & (states["taxonomy_version"] == version)]
        )
        relabel = set(states.index[states["status"] == "relabel"])
        q = q[~q["item"].isin(decided - relabel)].copy()
        q["version"] = q["item"].map(states["version"]).fillna(0).astype(int)
        flagged = q["item"].isin(relabel)
        q["status"] = np.where(flagged, "relabel", "open")
        q["priority"] = (q["priority"] + QueueWeights().relabel * flagged).round(6)
        q["reason"] = [
            f"relabel after a taxonomy split; {r}" if f else r
            for r, f in zip(q["reason"], flagged, strict=True)
        ]
        order = np.lexsort((q["item"].to_numpy(), -q["priority"].to_numpy()))
        q = q.iloc[order].reset_index(drop=True)
        q["rank"] = np.arange(1, len(q) + 1)
        return q

    def reliability_of(self, project: Project) -> dict[str, dict[str, Any]]:
        stamp = self.stamp(project)
        with self.lock:
            if self.reliability is None or self.reliability[0] != stamp:
                from geolabel.crowd.consensus import project_reliability

                try:
                    report = project_reliability(project, n_permutations=19)
                    table = {
                        a.annotator: {
                            "ds_accuracy": round(a.ds_accuracy, 3),
                            "gold_accuracy": None
                            if a.gold_accuracy is None
                            else round(a.gold_accuracy, 3),
                            "consensus_agreement": round(a.consensus_agreement, 3),
                            "spammer_score": round(a.spammer_score, 3),
                            "suspected_spammer": a.suspected_spammer,
                            "n_votes": a.n_votes,
                        }
                        for a in report.annotators
                    }
                except GeolabelError:
                    table = {}
                self.reliability = (stamp, table)
            return self.reliability[1]


def _filter(
    q: pd.DataFrame, hotspot: str | None, district: str | None, pair: str | None
) -> pd.DataFrame:
    if hotspot:
        q = q[q["hotspot_id"].astype(str) == hotspot]
    if district:
        q = q[q["district"].astype(str) == district]
    if pair:
        want = _pair_key(pair)
        q = q[q["top_pair"].map(lambda p: isinstance(p, str) and _pair_key(p) == want)]
    return q


def item_detail(state: _State, project: Project, item: str) -> dict[str, Any]:
    """Everything the item page shows, as JSON-able data.

    Raises:
        ReviewError: The item is not in the project.
    """
    items = project.items()
    match = items[items["item"].astype(str) == item]
    if match.empty:
        raise _NotFound(f"Item {item!r} is not in this project.")
    kind = str(match["kind"].iloc[0])
    taxonomy = current_taxonomy(project)
    states = review_states(project).set_index("item")
    state_row = states.loc[item] if item in states.index else None
    history = project.consensus_history(item)
    consensus = None
    if len(history):
        last = history.iloc[-1]
        consensus = {
            "label": last["label"],
            "method": last["method"],
            "confidence": _plain(last["confidence"]),
            "review_id": _plain(last["review_id"]),
            "taxonomy_version": last["taxonomy_version"],
        }
    preds = project.predictions()
    preds = preds[preds["item"] == item]
    model = None
    if len(preds):
        last_pred = preds.iloc[-1]
        probas = {str(k): float(v) for k, v in dict(last_pred["probas"]).items()}
        model = {
            "label": last_pred["label"],
            "confidence": _plain(last_pred["confidence"]),
            "model_version": last_pred["model_version"],
            "probas": dict(sorted(probas.items(), key=lambda kv: -kv[1])),
        }
    votes = project.annotations()
    votes = votes[votes["item"] == item]
    reliability = state.reliability_of(project) if len(votes) else {}
    vote_rows = [
        {
            "annotator": str(v["annotator"]),
            "label": str(v["label"]),
            "created_at": str(v["created_at"]),
            "reliability": reliability.get(str(v["annotator"])),
        }
        for v in votes.to_dict(orient="records")
    ]
    in_play = {v["label"] for v in vote_rows}
    if consensus is not None:
        in_play.add(str(consensus["label"]))
    if model is not None:
        in_play.add(str(model["label"]))
    classes = [
        {
            "id": c.id,
            "name": c.name,
            "colour": c.colour,
            "definition": c.definition,
            "examples": list(c.examples),
            "counterexamples": list(c.counterexamples),
            "edge_rules": list(c.edge_rules),
        }
        for c in taxonomy.classes
        if c.id in in_play
    ]
    links = project.notice_links()
    links = links[links["item"] == item]
    notices = project.notices()
    texts = (
        dict(zip(notices["notice_id"].astype(str), notices["text"].astype(str), strict=True))
        if len(notices)
        else {}
    )
    notice_rows = [
        {
            "notice_id": str(nid),
            "text": texts.get(str(nid), ""),
            "entity": str(ent),
            "method": str(method),
        }
        for nid, ent, method in zip(links["notice_id"], links["text"], links["method"], strict=True)
    ]
    reviews = project.reviews()
    reviews = reviews[reviews["item"] == item]
    queue = state.base_queue(project)
    qrow = queue[queue["item"] == item]
    allowed = taxonomy.parcel_class_ids if kind == "parcel" else taxonomy.class_ids
    return {
        "item": item,
        "kind": kind,
        "version": 0 if state_row is None else int(str(state_row["version"])),
        "status": "open" if state_row is None else str(state_row["status"]),
        "queue": None if qrow.empty else _records(qrow)[0],
        "consensus": consensus,
        "model": model,
        "votes": vote_rows,
        "classes_in_play": classes,
        "notices": notice_rows,
        "reviews": _records(reviews[["review_id", "reviewer", "label", "note", "created_at"]]),
        "taxonomy": {
            "name": taxonomy.name,
            "version": taxonomy.version,
            "labels": [
                {
                    "id": cid,
                    "name": taxonomy.get(cid).name,
                    "colour": taxonomy.get(cid).colour,
                    "key": _SHORTCUT_KEYS[k] if k < len(_SHORTCUT_KEYS) else "",
                }
                for k, cid in enumerate(allowed)
            ],
        },
    }


class _NotFound(GeolabelError, LookupError):
    """A requested item or proposal does not exist (HTTP 404)."""


def _status_of(exc: GeolabelError) -> int:
    if isinstance(exc, ReviewerAuthError):
        return 401
    if isinstance(exc, ReviewConflictError):
        return 409
    if isinstance(exc, _NotFound):
        return 404
    if isinstance(exc, LabelError | ReviewError | ColumnError):
        return 422
    return 400


def create_app(
    project_path: str | Path,
    *,
    map_html: str | Path | None = None,
    chip_dir: str | Path | None = None,
    disagreement: pd.DataFrame | None = None,
    hotspots: pd.DataFrame | None = None,
    permutations: int | None = None,
    warm: bool = False,
) -> FastAPI:
    """Build the review app for one project.

    Args:
        project_path: The project GeoPackage (opened per request).
        map_html: A map made by ``geolabel map`` to serve at ``/map``; when None the app asks
            :mod:`geolabel.review.maps` for one on first request, if that module exists.
        chip_dir: Cache folder of image chips (``<project>_review/chips`` when None).
        disagreement: A disagreement frame to rank by (computed when None).
        hotspots: A hotspot items frame (computed when None and available).
        permutations: Gi* permutations when the app computes the hotspots itself.
        warm: Rank the queue now (disagreement and hotspots can take a while on a big
            project) rather than on the first request.

    Returns:
        The FastAPI app.

    Raises:
        ProjectNotFoundError: ``project_path`` is not a project.
    """
    path = Path(project_path).resolve()
    Project.open(path).close()  # fail early on a wrong path
    state = _State(
        path,
        None if chip_dir is None else Path(chip_dir),
        None if map_html is None else Path(map_html).resolve(),
        disagreement,
        hotspots,
        permutations,
    )
    if warm:
        with state.project() as project:
            state.base_queue(project)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
    )
    app = FastAPI(title="geolabel review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.review = state

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        with state.project() as project:
            context.setdefault("project_name", project.name)
        html_text = env.get_template(name).render(**context)
        return HTMLResponse(html_text, status_code=status)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[..., Any]) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.url.path.startswith("/map/view"):
            response.headers.setdefault("Content-Security-Policy", _CSP)
            response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response

    @app.exception_handler(GeolabelError)
    async def geolabel_error(request: Request, exc: GeolabelError) -> Response:
        status = _status_of(exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc), "status": status}, status_code=status)
        return page("error.html", status=status, message=str(exc), status_code=status)

    # ------------------------------------------------------------------ static assets

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        entry = _STATIC.get(name)
        if entry is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(entry[0].read_bytes(), media_type=entry[1])

    # ------------------------------------------------------------------ JSON API

    @app.get("/api/queue")
    def api_queue(
        hotspot: str | None = None,
        district: str | None = None,
        pair: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        with state.project() as project:
            q = _filter(state.open_queue(project), hotspot, district, pair)
        limit = max(1, min(limit, 10_000))
        return {"n_items": len(q), "items": _records(q.head(limit))}

    @app.get("/api/items/{item}")
    def api_item(item: str) -> dict[str, Any]:
        with state.project() as project:
            return item_detail(state, project, item)

    @app.post("/api/decisions", status_code=201)
    def api_decide(body: DecisionIn, request: Request) -> dict[str, Any]:
        with state.project() as project:
            reviewer = authenticate(project, _token(request))
            props: tuple[TaxonomyProposal, ...] = ()
            if body.proposal:
                data = dict(body.proposal)
                data.setdefault("rationale", body.rationale)
                if data.get("kind") in ("split", "gold_item") and not data.get("items"):
                    data["items"] = [body.item]
                if data.get("kind") == "gold_item" and not data.get("label"):
                    data["label"] = body.label
                props = (TaxonomyProposal.from_dict(data),)
            with read_connection(project) as con:
                known = con.execute(
                    "SELECT 1 FROM items WHERE item_id = ?", (body.item,)
                ).fetchone()
            if known is None:
                raise _NotFound(f"Item {body.item!r} is not in this project.")
            result = record_decision(
                project,
                Decision(
                    body.item,
                    body.label,
                    reviewer.reviewer_id,
                    body.rationale,
                    body.version,
                    props,
                ),
            )
        return asdict(result)

    def _admin(project: Project, request: Request) -> Reviewer:
        reviewer = authenticate(project, _token(request))
        if reviewer.role != "admin":
            raise ReviewerAuthError(
                f"Reviewer {reviewer.reviewer_id} is not an admin; applying taxonomy changes "
                "needs an admin token (`geolabel reviewers add NAME --admin`)."
            )
        return reviewer

    @app.post("/api/proposals/apply")
    def api_apply(body: ApplyIn, request: Request) -> dict[str, Any]:
        with state.project() as project:
            admin = _admin(project, request)
            if body.flag not in ("evidence", "all"):
                raise ReviewError(f"flag must be 'evidence' or 'all', got {body.flag!r}.")
            change = apply_proposals(
                project,
                body.proposal_ids,
                applied_by=admin.reviewer_id,
                flag="all" if body.flag == "all" else "evidence",
            )
        return asdict(change)

    @app.post("/api/proposals/{proposal_id}/reject")
    def api_reject(proposal_id: str, request: Request) -> dict[str, Any]:
        with state.project() as project:
            admin = _admin(project, request)
            reject_proposals(project, [proposal_id], by=admin.reviewer_id)
        return {"proposal_id": proposal_id, "status": "rejected"}

    # ------------------------------------------------------------------ pages

    @app.get("/")
    def index() -> RedirectResponse:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/queue", response_class=HTMLResponse)
    def queue_page(
        hotspot: str | None = None, district: str | None = None, pair: str | None = None
    ) -> HTMLResponse:
        with state.project() as project:
            full = state.open_queue(project)
        q = _filter(full, hotspot, district, pair)
        hotspots = sorted({str(h) for h in full["hotspot_id"].dropna()})
        districts = sorted({str(d) for d in full["district"].dropna()})
        pairs = sorted({str(p) for p in full["top_pair"].dropna()})
        return page(
            "queue.html",
            rows=_records(q.head(500)),
            n_items=len(q),
            hotspots=hotspots,
            districts=districts,
            pairs=pairs,
            selected={"hotspot": hotspot or "", "district": district or "", "pair": pair or ""},
        )

    @app.get("/items/{item}", response_class=HTMLResponse)
    def item_page(item: str) -> HTMLResponse:
        with state.project() as project:
            detail = item_detail(state, project, item)
            q = state.open_queue(project)
        others = [i for i in q["item"].astype(str) if i != item]
        return page("item.html", d=detail, next_item=others[0] if others else None)

    @app.get("/items/{item}/chip.png")
    def chip(item: str) -> Response:
        with state.project() as project:
            known = project.items("parcel")
            if item not in set(known["item"].astype(str)):
                raise _NotFound(f"Item {item!r} is not a parcel of this project.")
            folder = state.chip_dir or chip_cache_dir(project)
            path = render_chip(project, item, cache_dir=folder)
        return FileResponse(path, media_type="image/png")

    @app.get("/map", response_class=HTMLResponse)
    def map_page() -> HTMLResponse:
        with state.project() as project:
            q = state.open_queue(project)
        available = state.map_html is None or state.map_html.is_file()
        inside = q[q["hotspot_id"].notna()]
        hotspots = [
            {"hotspot_id": str(h), "n_items": len(g), "top_pair": _mode(g["top_pair"])}
            for h, g in inside.groupby("hotspot_id")
        ]
        return page("map.html", hotspots=hotspots, available=available)

    @app.get("/map/view")
    def map_view() -> Response:
        with state.project() as project:
            path = _map_file(state, project)
        if path is None:
            return Response(
                "No map: make one with `geolabel map PROJECT -o map.html` and "
                "start the app with --map map.html.",
                status_code=404,
                media_type="text/plain",
            )
        return FileResponse(path, media_type="text/html")

    @app.get("/taxonomy", response_class=HTMLResponse)
    def taxonomy_page() -> HTMLResponse:
        with state.project() as project:
            versions = project.taxonomy_versions()
            current = project.current_taxonomy()
            pending = proposals(project, status="pending")
            done = proposals(project)
            done = done[done["status"] != "pending"]

        def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return [
                {
                    "proposal_id": r["proposal_id"],
                    "by": r["proposed_by"],
                    "item": _plain(r["item"]),
                    "change": r["proposal"].describe(),
                    "rationale": r["rationale"],
                    "status": r["status"],
                    "version": r["taxonomy_version"],
                }
                for r in frame.to_dict(orient="records")
            ]

        return page(
            "taxonomy.html",
            versions=_records(versions),
            taxonomy=current,
            pending=rows(pending),
            resolved=rows(done),
        )

    @app.get("/guidelines", response_class=HTMLResponse)
    def guidelines_page() -> HTMLResponse:
        from geolabel.review.guidelines import project_guidelines

        with state.project() as project:
            return HTMLResponse(project_guidelines(project, "html"))

    return app


def _mode(values: pd.Series) -> str | None:
    counts = values.dropna().astype(str).value_counts()
    return None if counts.empty else str(counts.index[0])


def _map_file(state: _State, project: Project) -> Path | None:
    """The map HTML to serve: the one given at start, else one made by geolabel.review.maps.

    The generated map is cached in ``<project>_review/map.html`` (first view can take a while:
    it computes the hotspots); delete the file to refresh it.
    """
    if state.map_html is not None:
        return state.map_html if state.map_html.is_file() else None
    target = chip_cache_dir(project).parent / "map.html"
    if target.is_file():
        return target
    from geolabel.review.maps import project_map

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        project_map(project, target)  # writes one self-contained HTML file
    except GeolabelError:
        return None
    return target if target.is_file() else None
