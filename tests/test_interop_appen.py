"""Tests of geolabel.interop.appen: unit CSV out, full and aggregated reports in."""

# ruff: noqa: F811  (pytest fixtures imported from test_interop are parameters here)

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.crowd.consensus import aggregate_project
from geolabel.crowd.majority_vote import MajorityVote
from geolabel.crowd.wmv import WeightedMajorityVote
from geolabel.errors import AggregationError, AnnotationImportError, StoreError
from geolabel.interop import (
    annotator_attrs,
    export_tasks,
    gold_answers,
    import_file,
    reference_labels,
)
from geolabel.interop.appen import TRUST_KEY, trust_weights
from geolabel.store import Project

from .conftest import DATA
from .test_interop import TRUTH, base_dir, project_path  # noqa: F401  (fixtures)

runner = CliRunner()
FIXTURES = DATA / "interop"


def state(path: Path) -> tuple[int, int, int, list]:
    with Project.open(path) as p:
        return (
            len(p.annotations()),
            len(gold_answers(p)),
            len(reference_labels(p)),
            p.annotators()["attrs"].tolist(),
        )


def consensus(votes: pd.DataFrame) -> dict[str, str]:
    return MajorityVote().fit_predict(votes[["item", "annotator", "label"]]).to_dict()


class TestAppenExport:
    def test_units_csv_with_gold_columns(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            out = export_tasks(
                p,
                tmp_path,
                "appen",
                "parcel",
                items=["P0001", "P0002", "P0003"],
                url_prefix="https://chips.example.org/",
                gold={"P0002": "park"},
                answer="land_use",
            )
        assert (out.n_tasks, out.n_gold) == (3, 1)
        rows = list(csv.DictReader(io.StringIO(Path(out.paths[0]).read_text())))
        assert [r["geolabel_item"] for r in rows] == ["P0001", "P0002", "P0003"]
        assert rows[0]["image_url"] == "https://chips.example.org/chips/P0001.png"
        assert [r["_golden"] for r in rows] == ["", "TRUE", ""]
        assert rows[1]["land_use_gold"] == "park" and rows[1]["land_use_gold_reason"]
        assert len(json.loads(rows[0]["geolabel_transform"])) == 6

    def test_bad_gold_and_kind_are_refused(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            with pytest.raises(StoreError, match="mixed_use"):
                export_tasks(
                    p, tmp_path, "appen", "parcel", url_prefix="u/", gold={"P1": "mixed_use"}
                )
            with pytest.raises(StoreError, match="not tiles"):
                export_tasks(p, tmp_path, "appen", "tile", url_prefix="u/")


class TestAppenFullReport:
    def test_documented_report_tainted_duplicates_gold_and_trust(self, project_path):
        with Project.open(project_path) as p:
            result = import_file(p, FIXTURES / "appen_full_report.csv", "appen")
            assert (result.n_labels, result.n_added, result.n_gold) == (9, 9, 1)
            assert result.n_skipped == {"tainted": 1, "duplicate judgment": 1}
            votes = p.annotations(kind="parcel")
            assert gold_answers(p).to_dict() == {"P0002": "park"}
            trust = annotator_attrs(p, TRUST_KEY).to_dict()
            weights = trust_weights(p)
        assert trust == {"appen:41": 0.95, "appen:42": 0.9, "appen:43": 0.55}
        assert "appen:44" not in trust  # only tainted work: not an annotator of this project
        assert votes["seconds"].iloc[0] == 25.0
        assert votes["created_at"].iloc[0].startswith("2024-05-01T10:01:30")
        assert consensus(votes) == {"P0001": "institutional", "P0002": "park", "P0003": "water"}
        k = 8  # parcel classes of the sample taxonomy
        assert weights["appen:41"] == pytest.approx(np.log((k - 1) * 0.95 / 0.05))
        # the trust prior decides where the majority cannot: one trusted worker vs two others
        tie = pd.DataFrame(
            {
                "item": ["P9", "P9", "P9"],
                "annotator": ["appen:41", "appen:43", "appen:42"],
                "label": ["park", "water", "water"],
            }
        )
        assert MajorityVote().fit_predict(tie).to_dict() == {"P9": "water"}
        wmv = WeightedMajorityVote(weights={**weights.to_dict(), "appen:42": 0.0})
        assert wmv.fit_predict(tie).to_dict() == {"P9": "park"}

    def test_reimport_changes_nothing(self, project_path):
        file = FIXTURES / "appen_full_report.csv"
        with Project.open(project_path) as p:
            import_file(p, file, "appen")
        before = state(project_path)
        with Project.open(project_path) as p:
            again = import_file(p, file, "appen")
        assert again.already_imported and again.n_added == 0
        assert state(project_path) == before

    def test_round_trip_units_to_the_same_consensus(self, project_path, tmp_path):
        items = ["P0001", "P0002", "P0003", "P0004", "P0005"]
        with Project.open(project_path) as p:
            out = export_tasks(
                p,
                tmp_path,
                "appen",
                "parcel",
                items=items,
                url_prefix="u/",
                gold={"P0003": str(TRUTH["P0003"])},
            )
        units = list(csv.DictReader(io.StringIO(Path(out.paths[0]).read_text())))
        rng = np.random.default_rng(5)
        header = [
            "_unit_id",
            "_created_at",
            "_golden",
            "_id",
            "_started_at",
            "_tainted",
            "_trust",
            "_worker_id",
            "label",
            *units[0].keys(),
        ]
        report, votes = [], []
        for u, unit in enumerate(units):
            for w, (worker, trust) in enumerate((("7", 0.9), ("8", 0.8), ("9", 0.4))):
                truth = str(TRUTH[unit["geolabel_item"]])
                answer = truth if w < 2 or u % 2 else str(rng.choice(["park", "water"]))
                votes.append(
                    {"item": unit["geolabel_item"], "annotator": f"appen:{worker}", "label": answer}
                )
                stamp = f"5/2/2024 09:{u:02d}:{10 * w + 5:02d}"
                report.append(
                    [
                        3000 + u,
                        stamp,
                        "true" if unit["_golden"] else "false",
                        f"{u}{w}",
                        f"5/2/2024 09:{u:02d}:00",
                        "false",
                        trust,
                        worker,
                        answer,
                        *unit.values(),
                    ]
                )
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerows(report)
        file = tmp_path / "full.csv"
        file.write_text(buffer.getvalue())
        expected = consensus(pd.DataFrame(votes))
        with Project.open(project_path) as p:
            result = import_file(p, file, "appen")
            stored = p.annotations(kind="parcel")
            assert gold_answers(p).to_dict() == {"P0003": str(TRUTH["P0003"])}
        assert result.n_added == len(votes)
        assert consensus(stored) == expected == {i: str(TRUTH[i]) for i in items}


class TestAppenAggregatedReport:
    def test_references_with_confidence_apart_from_votes(self, project_path):
        file = FIXTURES / "appen_aggregated_report.csv"
        with Project.open(project_path) as p:
            result = import_file(p, file, "appen")
            refs = reference_labels(p, "appen")
            assert len(p.annotations()) == 0  # a reference is not a vote
            assert gold_answers(p).to_dict() == {"P0002": "park"}
        assert (result.n_references, result.n_labels) == (3, 0)
        assert refs[["item", "label"]].values.tolist() == [
            ["P0001", "institutional"],
            ["P0002", "park"],
            ["P0003", "water"],
        ]
        assert refs["confidence"].tolist() == pytest.approx([0.7213, 0.8012, 0.7649])
        before = state(project_path)
        with Project.open(project_path) as p:
            assert import_file(p, file, "appen").already_imported
        assert state(project_path) == before

    def test_reference_agrees_with_consensus_of_the_full_report(self, project_path):
        with Project.open(project_path) as p:
            import_file(p, FIXTURES / "appen_full_report.csv", "appen")
            import_file(p, FIXTURES / "appen_aggregated_report.csv", "appen")
            votes = p.annotations(kind="parcel")
            refs = reference_labels(p).set_index("item")["label"].to_dict()
        assert consensus(votes) == refs


class TestAppenBadInput:
    def test_malformed_row_is_named_and_nothing_stored(self, project_path):
        with Project.open(project_path) as p, pytest.raises(AnnotationImportError) as info:
            import_file(p, FIXTURES / "appen_full_malformed.csv", "appen")
        assert "row 4 has 9 fields but the header has 18" in str(info.value)
        assert state(project_path)[:3] == (0, 0, 0)

    def test_unknown_label_is_named_and_nothing_stored(self, project_path):
        with Project.open(project_path) as p, pytest.raises(AnnotationImportError) as info:
            import_file(p, FIXTURES / "appen_full_unknown_label.csv", "appen")
        message = str(info.value)
        assert "'mixed_use'" in message and "P0001" in message and "row 4" in message
        assert state(project_path)[:3] == (0, 0, 0)

    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ("a,b\n1,2\n", "neither an Appen full report"),
            ("_worker_id,_id,label,label_gold\n1,2,park,\n", "no geolabel_item column"),
            ("_worker_id,_id,geolabel_item,x,y\n1,2,P0001,a,b\n", "pass --output"),
            (
                "_worker_id,_id,_trust,geolabel_item,label,label_gold\n1,2,high,P0001,park,\n",
                "_trust 'high'",
            ),
            ("", "is empty"),
        ],
    )
    def test_bad_reports(self, project_path, tmp_path, text, match):
        file = tmp_path / "report.csv"
        file.write_text(text)
        with Project.open(project_path) as p, pytest.raises(AnnotationImportError, match=match):
            import_file(p, file, "appen")


class TestAppenCli:
    def test_export_import_and_bad_file(self, project_path, tmp_path):
        gold = tmp_path / "gold.csv"
        gold.write_text("item,label\nP0002,park\n")
        args = ["export", str(project_path), "--format", "appen", "-o", str(tmp_path / "ap")]
        result = runner.invoke(app, [*args, "--item", "P0002", "--gold", str(gold)])
        assert result.exit_code == 2 and "--url-prefix" in result.output
        result = runner.invoke(
            app, [*args, "--item", "P0002", "--gold", str(gold), "--url-prefix", "https://x/"]
        )
        assert result.exit_code == 0, result.output
        assert "1 gold" in result.output
        file = FIXTURES / "appen_full_report.csv"
        result = runner.invoke(app, ["import", str(project_path), str(file), "--format", "appen"])
        assert result.exit_code == 0, result.output
        assert "imported 9 new annotation(s)" in result.output and "1 tainted" in result.output
        bad = FIXTURES / "appen_full_malformed.csv"
        result = runner.invoke(app, ["import", str(project_path), str(bad), "--format", "appen"])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "row 4" in result.output

    def test_aggregate_with_appen_trust_weights(self, project_path, tmp_path):
        def aggregate(*extra: str):
            return runner.invoke(app, ["aggregate", str(project_path), *extra])

        result = aggregate("--method", "wmv", "--weights", "appen-trust")
        assert result.exit_code == 1 and "No Appen trust scores are stored" in result.output
        assert "Traceback" not in result.output
        result = aggregate("--weights", "appen-trust")
        assert result.exit_code == 2 and "goes with --method wmv" in result.output
        file = FIXTURES / "appen_full_report.csv"
        assert runner.invoke(app, ["import", str(project_path), str(file), "--format", "appen"])
        args = ["--method", "wmv", "--weights", "appen-trust", "--json"]
        result = aggregate(*args)
        assert result.exit_code == 0, result.output
        with Project.open(project_path) as p:
            current = p.current_consensus().set_index("item")
            w = trust_weights(p)
        # P0001: appen:41 and 42 say institutional, 43 residential; weighed by trust, not 2/3.
        share = (w["appen:41"] + w["appen:42"]) / w.sum()
        assert current.loc["P0001", "label"] == "institutional"
        assert current.loc["P0001", "confidence"] == pytest.approx(share)
        # A voter from elsewhere has no trust score: named, unless given a default weight.
        other = tmp_path / "other.csv"
        other.write_text("item,annotator,label\nP0001,field-1,residential\n")
        with Project.open(project_path) as p:
            p.import_annotations_csv(other, allowed_labels=p.current_taxonomy().class_ids)
        result = aggregate(*args)
        assert result.exit_code == 1 and "'field-1'" in result.output
        assert "pass default_weight=" in result.output
        result = aggregate(*args, "--default-weight", "0")
        assert result.exit_code == 0, result.output
        with Project.open(project_path) as p:
            current = p.current_consensus().set_index("item")
        assert current.loc["P0001", "confidence"] == pytest.approx(share)
        # The library side: the same weights by name, without a write; other names refused.
        with Project.open(project_path) as p:
            again = aggregate_project(
                p, method="wmv", weights="appen-trust", default_weight=0.0, write=False
            )
            assert again.labels == result_labels(current)
            with pytest.raises(AggregationError, match="'appen-trust'"):
                aggregate_project(p, method="wmv", weights="appen", write=False)


def result_labels(current: pd.DataFrame) -> dict[str, int]:
    """Consensus labels counted by class, as ConsensusResult.labels reports them."""
    return {str(k): int(v) for k, v in current["label"].value_counts().items()}
