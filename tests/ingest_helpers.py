"""Fixtures for the ingest tests: the sample's notices in other shapes, and a loopback portal.

Everything is generated from ``data/sample`` into a temporary folder; the portal is a
``http.server`` on 127.0.0.1 serving recorded responses (a Socrata resource, an ArcGIS
feature layer, a CKAN dataset) with scripted faults: 5xx answers, timeouts and malformed pages.
"""

from __future__ import annotations

import csv
import html
import json
import threading
import time
import urllib.parse
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import SAMPLE


def sample_notices() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLE / "notices.jsonl").read_text().splitlines()]


def write_csv(notices: list[dict[str, Any]], path: Path, *, encoding: str = "cp1252") -> Path:
    """A city's CSV export: its own column names, US dates, entities escaped, Windows-1252."""
    with path.open("w", newline="", encoding=encoding, errors="strict") as f:
        writer = csv.writer(f)
        writer.writerow(["ID", "Notice Type", "Date Posted", "Subject", "Body"])
        for n in notices:
            y, m, d = n["published"].split("-")
            writer.writerow(
                [
                    n["notice_id"],
                    n["kind"].replace("_", " ").title(),
                    f"{m}/{d}/{y}",
                    f"  {n['title']} ",
                    n["text"].replace("&", "&amp;").replace("\n\n", "\r\n\r\n  "),
                ]
            )
    return path


CSV_FIELDS = {
    "notice_id": "ID",
    "kind": "Notice Type",
    "published": "Date Posted",
    "title": "Subject",
    "text": "Body",
}


def page_html(n: dict[str, Any]) -> str:
    """A saved notice page: site navigation, header, footer, scripts around the notice."""
    body = "".join(
        "<p>\n  " + "<br>\n  ".join(html.escape(line) for line in para.split("\n")) + "\n</p>"
        for para in n["text"].split("\n\n")
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>City of Example | {html.escape(n["title"])}</title>
<meta name="notice-id" content="{n["notice_id"]}">
<meta name="notice-kind" content="{n["kind"]}">
<script>window.analytics = {{"track": "NOTICE OF TRACKING"}};</script>
<style>p {{ margin: 0 }}</style></head>
<body>
<div class="cookie-banner">We use cookies. Accept?</div>
<header class="site-header"><h1>City of Example</h1><nav><a href="/">Home</a>
<a href="/notices">Public Notices</a></nav></header>
<div class="breadcrumbs">Home &gt; Notices &gt; {n["notice_id"]}</div>
<main><article>
<header><h1>{html.escape(n["title"])}</h1>
<time datetime="{n["published"]}">{n["published"]}</time></header>
{body}
<div class="share-links">Share on social media</div>
</article>
<aside class="sidebar">Related notices: subscribe to our newsletter</aside></main>
<footer>&copy; 2025 City of Example. All rights reserved.</footer>
</body></html>"""


def write_pages(notices: list[dict[str, Any]], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in notices:
        (folder / f"{n['notice_id']}.html").write_text(page_html(n), encoding="utf-8")
    return folder


def socrata_rows(notices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as a Socrata resource serves them (floating timestamps, its own field names)."""
    return [
        {
            "notice_number": n["notice_id"],
            "notice_type": n["kind"].upper(),
            "publish_date": f"{n['published']}T00:00:00.000",
            "subject": n["title"],
            "description": n["text"].replace("\n", "\r\n"),
        }
        for n in notices
    ]


SOCRATA_FIELDS = {
    "notice_id": "notice_number",
    "kind": "notice_type",
    "published": "publish_date",
    "title": "subject",
    "text": "description",
}


class Portal:
    """A loopback HTTP server with recorded portal responses and scripted faults.

    ``faults[(path, offset)]`` is a queue of ``"503"``, ``"429"``, ``"404"``, ``"timeout"`` or
    ``"malformed"``: each request to that page takes the next fault, then pages are served
    normally. ``requests`` records (path, query, user agent) of every request.
    """

    def __init__(self, *, delay: float = 1.0) -> None:
        self.socrata: dict[str, list[dict[str, Any]]] = {}
        self.arcgis: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        self.json: dict[str, Any] = {}
        self.faults: dict[tuple[str, int], deque[str]] = defaultdict(deque)
        self.requests: list[tuple[str, dict[str, str], str]] = []
        self.delay = delay
        portal = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                portal._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *a: None  # type: ignore[method-assign]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Portal:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fault(self, path: str, offset: int, *kinds: str) -> None:
        self.faults[(path, offset)].extend(kinds)

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        ctype: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        path = parsed.path
        self.requests.append((path, query, h.headers.get("User-Agent", "")))
        offset = int(query.get("$offset", query.get("resultOffset", "0")))
        queue = self.faults.get((path, offset))
        if queue:
            fault = queue.popleft()
            if fault in ("503", "500", "429", "404"):
                extra = {"Retry-After": "7"} if fault == "429" else None
                self._send(h, int(fault), b"busy", "text/plain", extra)
                return
            if fault == "timeout":
                time.sleep(self.delay)
            elif fault == "malformed":
                self._send(h, 200, b'[{"notice_number": "N0', "application/json")
                return
        if path in self.socrata:
            self._send(h, 200, json.dumps(self._socrata(path, query)).encode(), "application/json")
        elif path in self.arcgis or path.removesuffix("/query") in self.arcgis:
            self._send(h, 200, json.dumps(self._arcgis(path, query)).encode(), "application/json")
        elif path in self.json:
            self._send(h, 200, json.dumps(self.json[path]).encode(), "application/json")
        elif path in self.files:
            ctype, body = self.files[path]
            self._send(h, 200, body, ctype)
        else:
            self._send(h, 404, b"not found", "text/plain")

    def _socrata(self, path: str, query: dict[str, str]) -> list[dict[str, Any]]:
        rows = list(self.socrata[path])
        where = query.get("$where")
        if where:
            field, _, literal = where.partition(" > ")
            value = literal.strip().strip("'")
            rows = [r for r in rows if str(r.get(field.strip(), "")) > value]
        order = query.get("$order", ":id").split(",")[0]
        if order != ":id":
            rows.sort(key=lambda r: str(r.get(order, "")))
        offset, limit = int(query.get("$offset", 0)), int(query.get("$limit", 1000))
        return rows[offset : offset + limit]

    def _arcgis(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        base = path.removesuffix("/query")
        info, features = self.arcgis[base]
        if not path.endswith("/query"):
            return info
        offset = int(query.get("resultOffset", 0))
        count = min(int(query.get("resultRecordCount", 1000)), info["maxRecordCount"])
        where = query.get("where", "1=1")
        if where != "1=1":
            field, _, literal = where.partition(" > ")
            features = [f for f in features if f["properties"][field.strip()] > float(literal)]
        page = features[offset : offset + count]
        return {
            "type": "FeatureCollection",
            "features": page,
            "exceededTransferLimit": offset + count < len(features),
        }
