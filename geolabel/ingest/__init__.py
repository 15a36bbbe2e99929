"""Upstream collection: notices and parcels from files and portals, cleaned and checked.

Modules: :mod:`~geolabel.ingest.config` (the source list), :mod:`~geolabel.ingest.readers`
(files: CSV, XLSX, JSON, JSONL, GeoJSON, GeoPackage, Shapefile and zips, saved HTML pages,
RSS/Atom, text), :mod:`~geolabel.ingest.html` (page text without boilerplate),
:mod:`~geolabel.ingest.portals` (Socrata, ArcGIS REST, CKAN over HTTP with timeouts, retries,
rate limit), :mod:`~geolabel.ingest.normalize` (field mapping, text, dates, addresses,
geometry), :mod:`~geolabel.ingest.dedupe` (exact and near duplicates),
:mod:`~geolabel.ingest.qa` (the report and its checks), :mod:`~geolabel.ingest.tables` (the
ingest tables of the project) and :mod:`~geolabel.ingest.pull` (one pull, one transaction).
"""

from geolabel.ingest.config import SourceConfig, SourceList, Thresholds, file_source, load_sources
from geolabel.ingest.pull import run_pull
from geolabel.ingest.qa import PullReport, render_html, render_markdown

__all__ = [
    "PullReport",
    "SourceConfig",
    "SourceList",
    "Thresholds",
    "file_source",
    "load_sources",
    "render_html",
    "render_markdown",
    "run_pull",
]
