"""Tests of geolabel.ingest.config: source lists in TOML and YAML, and every setting checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from geolabel.errors import IngestConfigError, InputFileError
from geolabel.ingest.config import SourceConfig, Thresholds, file_source, load_sources

TOML = """
[qa]
max_dropped_fraction = 0.3
min_text_chars = 20

[[source]]
name = "portal"
kind = "socrata"
location = "http://127.0.0.1:9/resource/x.json"
timezone = "America/Los_Angeles"
schedule = "daily"
incremental = "publish_date"
fields = { notice_id = "notice_number", text = "description" }
values = { kind = { BP = "building_permit" } }

[[source]]
name = "pages"
kind = "html"
location = "pages"
"""


class TestLoadSources:
    def test_toml(self, tmp_path: Path) -> None:
        path = tmp_path / "sources.toml"
        path.write_text(TOML)
        sources = load_sources(path)
        portal, pages = sources.sources
        assert portal.fields == {"notice_id": "notice_number", "text": "description"}
        assert portal.values == {"kind": {"BP": "building_permit"}}
        assert (portal.schedule, portal.incremental) == ("daily", "publish_date")
        assert pages.location == str(tmp_path / "pages")
        assert sources.thresholds.max_dropped_fraction == 0.3
        assert sources.thresholds.min_text_chars == 20
        assert sources.sha256 is not None and len(sources.sha256) == 64
        assert [s.name for s in sources.only(["pages"]).sources] == ["pages"]
        with pytest.raises(IngestConfigError, match=r"no source named 'nope'.*portal, pages"):
            sources.only(["nope"])

    def test_yaml(self, tmp_path: Path) -> None:
        path = tmp_path / "sources.yaml"
        path.write_text(
            "source:\n  - name: feed\n    kind: feed\n    location: /tmp/feed.xml\n"
            "qa:\n  max_short_fraction: 0.5\n"
        )
        sources = load_sources(path)
        assert sources.sources[0].kind == "feed"
        assert sources.thresholds.max_short_fraction == 0.5

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (
                "[[source]]\nname='a'\nkind='csv'\nlocation='x.csv'\nlocaton='y'\n",
                "unknown setting\\(s\\) locaton",
            ),
            ("[[source]]\nname='a'\nkind='ftp'\nlocation='x'\n", "unknown kind 'ftp'"),
            ("[[source]]\nname='a'\nkind='socrata'\nlocation='data.gov'\n", "needs an http"),
            ("[[source]]\nname='a'\nkind='ckan'\nlocation='http://x'\n", "needs dataset"),
            (
                "[[source]]\nname='a'\nkind='csv'\nlocation='x'\ntimezone='Mars/Base'\n",
                "unknown time zone 'Mars/Base'",
            ),
            (
                "[[source]]\nname='a'\nkind='csv'\nlocation='x'\nfields={body='Body'}\n",
                "unknown geolabel field\\(s\\) body",
            ),
            (
                "[[source]]\nname='a'\nkind='csv'\nlocation='x'\n[[source]]\nname='a'\n"
                "kind='csv'\nlocation='y'\n",
                "appear twice",
            ),
            ("[[source]]\nname='a'\nkind='csv'\n", "has no 'location'"),
            (
                "[qa]\nmax_dropped=1\n[[source]]\nname='a'\nkind='csv'\nlocation='x'\n",
                "unknown qa setting",
            ),
            ("sources = []\n", "unknown top-level key"),
            ("[qa]\n", "no sources"),
            ("[[source]]\nname='a b'\nkind='csv'\nlocation='x'\n", "name 'a b' is not valid"),
            ("[[source]]\nname='a'\nkind='csv'\nlocation='x'\nretries=-1\n", "retries must"),
            ("[[source]]\nname='a'\nkind='csv'\nlocation='x'\ntimeout=0\n", "timeout must"),
            (
                "[[source]]\nname='a'\nkind='csv'\nlocation='x'\nencoding='klingon'\n",
                "unknown encoding",
            ),
        ],
    )
    def test_wrong_settings(self, tmp_path: Path, text: str, message: str) -> None:
        path = tmp_path / "sources.toml"
        path.write_text(text)
        with pytest.raises(IngestConfigError, match=message):
            load_sources(path)

    def test_file_problems(self, tmp_path: Path) -> None:
        with pytest.raises(InputFileError, match="does not exist"):
            load_sources(tmp_path / "none.toml")
        bad = tmp_path / "bad.toml"
        bad.write_text("[[source]\n")
        with pytest.raises(InputFileError, match="does not parse"):
            load_sources(bad)
        other = tmp_path / "sources.ini"
        other.write_text("x")
        with pytest.raises(IngestConfigError, match=r"\.toml or \.yaml"):
            load_sources(other)


class TestSourceConfig:
    def test_auto_kind(self, tmp_path: Path) -> None:
        assert SourceConfig(name="a", kind="auto", location="x.geojson").resolved_kind == (
            "geojson"
        )
        assert SourceConfig(name="a", kind="auto", location=str(tmp_path)).resolved_kind == ("html")
        with pytest.raises(IngestConfigError, match="cannot tell the kind"):
            _ = SourceConfig(name="a", kind="auto", location="x.dat").resolved_kind

    def test_file_source(self, tmp_path: Path) -> None:
        path = tmp_path / "my notices.csv"
        path.write_text("id,text\n")
        config = file_source(path, fields={"text": "Body"})
        assert (config.name, config.fields) == ("my_notices.csv", {"text": "Body"})
        with pytest.raises(InputFileError, match="does not exist"):
            file_source(tmp_path / "none.csv")


class TestThresholds:
    def test_checked(self) -> None:
        with pytest.raises(IngestConfigError, match=r"max_dropped_fraction must be"):
            Thresholds(max_dropped_fraction=-1)
        with pytest.raises(IngestConfigError, match="near_duplicate_similarity"):
            Thresholds(near_duplicate_similarity=1.5)
