"""Pulling records from open-data portals over HTTP: Socrata, ArcGIS REST and CKAN.

:class:`HttpClient` is the one way geolabel talks to a portal: every request has a timeout,
a ``User-Agent``, a polite rate limit (at most ``rate_limit`` requests per second), and is
retried on a 5xx or 429 answer, a timeout, a dropped connection or a page that is not the JSON
promised, waiting ``backoff * 2**k`` seconds before retry ``k + 1`` (or the server's
``Retry-After``, capped at a minute). Other 4xx answers are not retried. Each retry is recorded
with its reason, and lands in the pull's QA report.

Paging:

* **Socrata** (SODA): ``GET <resource>.json?$limit=N&$offset=K&$order=:id`` until a page comes
  back shorter than ``N``; an incremental pull adds ``$where=<field> > '<last value>'`` and
  orders by that field.
* **ArcGIS REST** feature layers: ``GET <layer>?f=json`` for ``maxRecordCount`` (the page
  size is capped by it), then ``GET <layer>/query?where=...&outFields=*&f=geojson&
  resultOffset=K&resultRecordCount=N`` while the server says ``exceededTransferLimit`` or a
  page is full.
* **CKAN**: ``GET <site>/api/3/action/package_show?id=<dataset>``, then every resource whose
  format is one of ``resource_formats``, read like a file.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from shapely.geometry import shape

from geolabel.errors import FetchError
from geolabel.ingest.config import SourceConfig
from geolabel.ingest.readers import ReadResult, read_bytes
from geolabel.ingest.records import RawRecord

__all__ = ["HttpClient", "pull_arcgis", "pull_ckan", "pull_portal", "pull_socrata"]

_RETRY_STATUSES: Final = frozenset((408, 425, 429, 500, 502, 503, 504))
_MAX_RETRY_AFTER: Final = 60.0
_CKAN_KINDS: Final = {"csv": "csv", "json": "json", "geojson": "geojson", "xlsx": "xlsx"}


class HttpClient:
    """GET with timeouts, retries with exponential backoff, a rate limit and a User-Agent.

    Args:
        timeout: Seconds to wait for the connection and for each read.
        retries: Retries after the first attempt.
        backoff: Seconds before the first retry; doubled at each retry.
        rate_limit: Most requests per second.
        user_agent: The ``User-Agent`` header.
        headers: Other headers (an app token...).
        sleep: Function that waits (tests pass one that records the waits).
        clock: Monotonic clock in seconds.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 1.0,
        rate_limit: float = 2.0,
        user_agent: str = "geolabel-ingest",
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.rate_limit = rate_limit
        self.user_agent = user_agent
        self.headers = dict(headers or {})
        self._sleep = sleep
        self._clock = clock
        self._last: float | None = None
        self.requests = 0
        self.retry_log: list[str] = []
        self.waits: list[float] = []

    @classmethod
    def for_source(cls, config: SourceConfig, **overrides: Any) -> HttpClient:
        """Build the client a source's settings describe (its app token read from the env)."""
        headers: dict[str, str] = {}
        if config.app_token_env and os.environ.get(config.app_token_env):
            headers["X-App-Token"] = os.environ[config.app_token_env]
        settings: dict[str, Any] = {
            "timeout": config.timeout,
            "retries": config.retries,
            "backoff": config.backoff,
            "rate_limit": config.rate_limit,
            "user_agent": config.user_agent,
            "headers": headers,
        }
        settings.update(overrides)
        return cls(**settings)

    def _wait_turn(self) -> None:
        """Sleep so that requests are at least ``1 / rate_limit`` seconds apart."""
        now = self._clock()
        if self._last is not None:
            wait = self._last + 1.0 / self.rate_limit - now
            if wait > 0:
                self.waits.append(wait)
                self._sleep(wait)
                now = self._clock()
        self._last = now

    def _once(self, url: str) -> bytes:
        self._wait_turn()
        self.requests += 1
        request = urllib.request.Request(
            url, headers={"User-Agent": self.user_agent, "Accept": "application/json, */*"}
        )
        for key, value in self.headers.items():
            request.add_header(key, value)
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            body: bytes = response.read()
            return body

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        what: str,
        parse: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """GET ``url`` and return its body (or ``parse(body)``), retrying what can be retried.

        Args:
            url: The URL, without query.
            params: Query parameters.
            what: What is fetched, for the retry log and errors (``"socrata page 2"``).
            parse: Turns the body into data; a ``ValueError`` from it counts as a malformed
                page and is retried.

        Returns:
            The body, or what ``parse`` made of it.

        Raises:
            FetchError: An answer that is not retried (404...), or a failure after every retry.
        """
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise FetchError(
                f"{what}: {url!r} is not an http(s) URL; geolabel only fetches http and https."
            )
        full = url + ("?" + urllib.parse.urlencode(params) if params else "")
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                body = self._once(full)
                return parse(body) if parse is not None else body
            except urllib.error.HTTPError as exc:
                if exc.code not in _RETRY_STATUSES:
                    raise FetchError(
                        f"{what}: HTTP {exc.code} {exc.reason}; check the source's location "
                        "(and dataset or token)."
                    ) from exc
                reason = f"HTTP {exc.code}"
                header = exc.headers.get("Retry-After") if exc.headers else None
                if header and header.strip().isdigit():
                    retry_after = min(float(header), _MAX_RETRY_AFTER)
            except TimeoutError:
                reason = f"timeout after {self.timeout:g} s"
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError | socket.timeout):
                    reason = f"timeout after {self.timeout:g} s"
                else:
                    reason = f"connection failed ({exc.reason})"
            except (ConnectionError, http.client.HTTPException) as exc:
                reason = f"connection failed ({type(exc).__name__})"
            except ValueError as exc:
                reason = f"malformed page ({str(exc)[:80]})"
            if attempt >= self.retries:
                raise FetchError(
                    f"{what}: {reason}, still after {self.retries} retr"
                    f"{'y' if self.retries == 1 else 'ies'}; try again later or raise "
                    "timeout/retries for this source."
                )
            attempt += 1
            self.retry_log.append(f"{what}: {reason} (retry {attempt} of {self.retries})")
            wait = retry_after if retry_after is not None else self.backoff * 2 ** (attempt - 1)
            if wait > 0:
                self.waits.append(wait)
                self._sleep(wait)


def _json(body: bytes) -> Any:
    """Parse a JSON page; anything else raises ``ValueError`` (a malformed page)."""
    try:
        return json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at offset {exc.pos}") from exc


def _socrata_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def pull_socrata(
    config: SourceConfig, client: HttpClient, watermark: str | None = None
) -> ReadResult:
    """Page through a Socrata (SODA) resource.

    Args:
        config: The source (location: the resource's ``.json`` URL).
        client: The HTTP client.
        watermark: Largest ``config.incremental`` value of the previous pull.

    Returns:
        The records.

    Raises:
        FetchError: A page could not be fetched, or is not a JSON list of records.
    """
    out = ReadResult()
    params: dict[str, Any] = {"$limit": config.page_size, "$order": ":id"}
    if config.incremental:
        params["$order"] = f"{config.incremental},:id"
        if watermark is not None:
            numeric = config.incremental_type == "id" and _is_number(watermark)
            literal = watermark if numeric else _socrata_literal(watermark)
            params["$where"] = f"{config.incremental} > {literal}"
    page = 0
    while True:
        page += 1
        params["$offset"] = (page - 1) * config.page_size
        what = f"{config.name}: socrata page {page}"

        def parse(body: bytes, what: str = what) -> list[Any]:
            data = _json(body)
            if not isinstance(data, list):
                raise ValueError(f"expected a JSON list of rows, got {type(data).__name__}")
            return data

        rows = client.get(config.location, params, what=what, parse=parse)
        for number, row in enumerate(rows, start=1):
            origin = f"socrata page {page} #{number}"
            if isinstance(row, Mapping):
                out.records.append(RawRecord(dict(row), origin))
        if len(rows) < config.page_size:
            break
    return out


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _arcgis_where(config: SourceConfig, watermark: str | None) -> str:
    if not config.incremental or watermark is None:
        return "1=1"
    if config.incremental_type == "id" or not _is_number(watermark):
        if _is_number(watermark):
            return f"{config.incremental} > {watermark}"
        return f"{config.incremental} > '{watermark.replace(chr(39), chr(39) * 2)}'"
    stamp = datetime.fromtimestamp(float(watermark) / 1000.0, tz=UTC)
    return f"{config.incremental} > TIMESTAMP '{stamp:%Y-%m-%d %H:%M:%S}'"


def pull_arcgis(
    config: SourceConfig, client: HttpClient, watermark: str | None = None
) -> ReadResult:
    """Page through an ArcGIS REST feature layer as GeoJSON.

    Args:
        config: The source (location: the layer URL, ``.../FeatureServer/0``).
        client: The HTTP client.
        watermark: Largest ``config.incremental`` value of the previous pull (epoch
            milliseconds for date fields, as ArcGIS gives them).

    Returns:
        The records, with their geometries in EPSG:4326.

    Raises:
        FetchError: A page could not be fetched or is not GeoJSON.
    """
    out = ReadResult()
    base = config.location.rstrip("/")
    info = client.get(base, {"f": "json"}, what=f"{config.name}: arcgis layer info", parse=_json)
    page_size = config.page_size
    if isinstance(info, Mapping) and isinstance(info.get("maxRecordCount"), int):
        page_size = max(1, min(page_size, int(info["maxRecordCount"])))
    order = config.incremental or (
        str(info.get("objectIdField"))
        if isinstance(info, Mapping) and info.get("objectIdField")
        else None
    )
    params: dict[str, Any] = {
        "where": _arcgis_where(config, watermark),
        "outFields": "*",
        "f": "geojson",
        "resultRecordCount": page_size,
    }
    if order:
        params["orderByFields"] = order
    page = 0
    while True:
        page += 1
        params["resultOffset"] = (page - 1) * page_size
        what = f"{config.name}: arcgis page {page}"

        def parse(body: bytes) -> Mapping[str, Any]:
            data = _json(body)
            if not isinstance(data, Mapping) or not isinstance(data.get("features"), list):
                if isinstance(data, Mapping) and "error" in data:
                    raise ValueError(f"server error {data['error']}")
                raise ValueError("expected a GeoJSON FeatureCollection")
            return data

        data = client.get(f"{base}/query", params, what=what, parse=parse)
        features = data["features"]
        for number, feature in enumerate(features, start=1):
            origin = f"arcgis page {page} #{number}"
            if not isinstance(feature, Mapping):
                continue
            geometry = shape(feature["geometry"]) if feature.get("geometry") else None
            fields = dict(feature.get("properties") or {})
            if "id" in feature and "id" not in fields:
                fields["id"] = feature["id"]
            out.records.append(RawRecord(fields, origin, geometry, "EPSG:4326"))
        exceeded = bool(data.get("exceededTransferLimit")) or bool(
            (data.get("properties") or {}).get("exceededTransferLimit")
        )
        if not features or (not exceeded and len(features) < page_size):
            break
    return out


def pull_ckan(config: SourceConfig, client: HttpClient) -> ReadResult:
    """Read a CKAN dataset's resources (``package_show``), each like a file.

    Args:
        config: The source (location: the CKAN site root; ``dataset``: the package).
        client: The HTTP client.

    Returns:
        The records of every resource in one of ``config.resource_formats``.

    Raises:
        FetchError: The dataset or a resource could not be fetched, or CKAN said no.
    """
    out = ReadResult()
    base = config.location.rstrip("/")
    data = client.get(
        f"{base}/api/3/action/package_show",
        {"id": config.dataset},
        what=f"{config.name}: ckan package_show",
        parse=_json,
    )
    if not isinstance(data, Mapping) or not data.get("success"):
        error = data.get("error") if isinstance(data, Mapping) else None
        raise FetchError(
            f"{config.name}: CKAN refused package_show for dataset {config.dataset!r}: {error}; "
            "check the dataset id."
        )
    resources = (data.get("result") or {}).get("resources") or []
    chosen = [
        r
        for r in resources
        if isinstance(r, Mapping) and str(r.get("format", "")).lower() in config.resource_formats
    ]
    if not chosen:
        formats = sorted({str(r.get("format")) for r in resources if isinstance(r, Mapping)})
        raise FetchError(
            f"{config.name}: dataset {config.dataset!r} has no resource in "
            f"{', '.join(config.resource_formats)} (it has: {', '.join(formats) or 'none'}); "
            "set resource_formats."
        )
    for number, resource in enumerate(chosen, start=1):
        fmt = str(resource["format"]).lower()
        name = str(resource.get("name") or resource.get("id") or f"resource {number}")
        body = client.get(str(resource["url"]), None, what=f"{config.name}: ckan {name}")
        kind = _CKAN_KINDS.get(fmt, "json")
        filename = name if "." in name else f"{name}.{fmt}"
        out.extend(read_bytes(body, kind, f"ckan {filename}", config))
    return out


def pull_portal(
    config: SourceConfig, client: HttpClient | None = None, watermark: str | None = None
) -> ReadResult:
    """Pull a portal source (Socrata, ArcGIS or CKAN) with its own client settings.

    Args:
        config: The source.
        client: A client to use instead of the one the source's settings describe.
        watermark: Largest ``config.incremental`` value of the previous pull.

    Returns:
        The records, with the requests made and every retry and its reason.

    Raises:
        FetchError: The portal could not be read, even after retries.
    """
    client = client or HttpClient.for_source(config)
    before_requests, before_retries = client.requests, len(client.retry_log)
    if config.kind == "socrata":
        out = pull_socrata(config, client, watermark)
    elif config.kind == "arcgis":
        out = pull_arcgis(config, client, watermark)
    elif config.kind == "ckan":
        out = pull_ckan(config, client)
    else:
        raise FetchError(f"source {config.name!r} is a {config.kind} source, not a portal.")
    out.requests += client.requests - before_requests
    out.retries.extend(client.retry_log[before_retries:])
    return out
