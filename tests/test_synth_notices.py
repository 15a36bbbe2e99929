"""Tests for geolabel.synth.notices: determinism, exact spans, parcel truth, writers, errors."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from geolabel.errors import ColumnError, InputFileError, LabelError
from geolabel.synth.notices import (
    ENTITY_LABELS,
    NOTICE_KINDS,
    PARCEL_COLUMNS,
    Notice,
    NoticeEntity,
    generate_notices,
    write_notice_truth,
    write_notices,
)

AVENUES = ["1st Avenue", "2nd Avenue", "3rd Avenue", "4th Avenue", "5th Avenue"]
CROSS_STREETS = ["Oak Street", "Elm Road", "Main Street", "Riverside Drive"]
ZONING_OF = {
    "residential": ["R-1", "R-2", "R-3"],
    "commercial": ["C-1", "C-2"],
    "industrial": ["M-1"],
    "institutional": ["P"],
    "park": ["OS"],
    "water": ["OS"],
    "vacant": ["R-1", "C-1"],
    "construction": ["R-3", "MU-3"],
    "mixed_use": ["MU-3"],
}
LAND_USES = list(ZONING_OF)
ABBREVIATIONS = {"street": "st", "avenue": "ave", "road": "rd", "drive": "dr"}


def make_city(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A grid city: east-west streets crossing north-south avenues, 4 parcels per block face.

    Along every street, block k lies between cross streets k and k+1; its first parcel sits at
    the corner with cross street k and its last at the corner with cross street k+1.
    """
    rng = np.random.default_rng(seed)
    streets = pd.DataFrame(
        {
            "name": AVENUES + CROSS_STREETS,
            "orientation": ["ns"] * len(AVENUES) + ["ew"] * len(CROSS_STREETS),
            "order": list(range(len(AVENUES))) + list(range(len(CROSS_STREETS))),
        }
    )
    rows = []
    apns = rng.choice(10**9, size=400, replace=False)
    block_no = 0
    for street, crosses in [(s, AVENUES) for s in CROSS_STREETS] + [
        (a, CROSS_STREETS) for a in AVENUES
    ]:
        for k in range(len(crosses) - 1):
            block_no += 1
            for i in range(4):
                land_use = LAND_USES[int(rng.integers(len(LAND_USES)))]
                number = 100 * (k + 1) + 2 * i
                apn = f"{apns[len(rows)]:09d}"
                rows.append(
                    {
                        "parcel_id": f"P{len(rows) + 1:04d}",
                        "apn": f"{apn[:3]}-{apn[3:6]}-{apn[6:]}",
                        "block": block_no,
                        "lot": i + 1,
                        "house_number": number,
                        "street": street,
                        "address": f"{number} {street}",
                        "cross_from": crosses[k],
                        "cross_to": crosses[k + 1],
                        "corner": crosses[k] if i == 0 else crosses[k + 1] if i == 3 else None,
                        "district": "Northgate" if k < 2 else "Riverside",
                        "land_use": land_use,
                        "zoning": ZONING_OF[land_use][int(rng.integers(len(ZONING_OF[land_use])))],
                    }
                )
    return pd.DataFrame(rows), streets


@pytest.fixture(scope="module")
def city() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_city()


@pytest.fixture(scope="module")
def notices(city) -> list[Notice]:
    parcels, streets = city
    return generate_notices(parcels, streets, n=200, seed=3)


def normalise_street(text: str) -> str:
    """Lower-case, drop periods and spell suffixes out: 'Oak St.' -> 'oak street'."""
    words = text.lower().replace(".", "").split()
    full = {v: k for k, v in ABBREVIATIONS.items()}
    return " ".join(full.get(w, w) for w in words)


def street_lookup() -> dict[str, str]:
    return {name.lower(): name for name in AVENUES + CROSS_STREETS}


SEGMENT_RE = re.compile(r"^(?P<s>.+?) (?:between|from) (?P<a>.+?) (?:and|to) (?P<b>.+)$", re.I)
HOUSE_NUMBER_RE = re.compile(r"\d+ ")  # "1420 Oak St", not "5th Ave and Oak St"
INTERSECTION_RE = re.compile(r"^(?P<a>.+?) (?:and|&|at) (?P<b>.+)$", re.I)


class TestDeterminism:
    def test_same_seed_same_notices(self, city, notices):
        parcels, streets = city
        assert generate_notices(parcels, streets, n=200, seed=3) == notices

    def test_row_order_does_not_matter(self, city, notices):
        parcels, streets = city
        shuffled = parcels.sample(frac=1.0, random_state=1).reset_index(drop=True)
        assert generate_notices(shuffled, streets.iloc[::-1], n=200, seed=3) == notices

    def test_other_seed_other_notices(self, city, notices):
        parcels, streets = city
        other = generate_notices(parcels, streets, n=200, seed=4)
        assert [x.text for x in other] != [x.text for x in notices]


class TestNoticeShape:
    def test_count_ids_and_dates(self, notices):
        assert len(notices) == 200
        assert [x.notice_id for x in notices] == [f"N{i:04d}" for i in range(1, 201)]
        published = [x.published for x in notices]
        assert published == sorted(published)
        assert published[0] >= "2025-01-06"
        assert published[-1] <= "2026-01-08"
        assert len(set(published)) > 100

    def test_kind_mix(self, notices):
        counts = Counter(x.kind for x in notices)
        assert counts == {
            "zoning_hearing": 40,
            "planning_application": 30,
            "demolition_permit": 20,
            "building_permit": 30,
            "road_works": 30,
            "street_closure": 20,
            "tender": 30,
        }
        assert set(counts) == set(NOTICE_KINDS)

    def test_small_n_keeps_sum(self, city):
        parcels, streets = city
        assert len(generate_notices(parcels, streets, n=7, seed=0)) == 7
        assert generate_notices(parcels, streets, n=0) == []


class TestSpans:
    def test_spans_exact_sorted_disjoint(self, notices):
        for notice in notices:
            previous_end = 0
            for entity in notice.entities:
                assert notice.text[entity.start : entity.end] == entity.text
                assert entity.start >= previous_end, notice.notice_id
                assert entity.text == entity.text.strip()
                previous_end = entity.end

    def test_every_label_occurs_often(self, notices):
        counts = Counter(e.label for x in notices for e in x.entities)
        for label in ENTITY_LABELS:
            assert counts[label] >= 20, (label, counts)

    def test_zoning_spans_are_codes_only(self, notices):
        codes = {c for cs in ZONING_OF.values() for c in cs}
        spans = [e.text for x in notices for e in x.entities if e.label == "ZONING"]
        assert set(spans) <= codes
        assert any(" (" in x.text and "Residential)" in x.text for x in notices)

    def test_date_ranges_are_one_span_without_preposition(self, notices):
        dates = [e.text for x in notices for e in x.entities if e.label == "DATE"]
        assert not any(d.lower().startswith(("from ", "between ", "on ")) for d in dates)
        assert any(" to " in d for d in dates)
        assert any(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in dates)
        assert any(re.fullmatch(r"\d{2}/\d{2}/\d{4}", d) for d in dates)
        assert any(re.search(r"[ap]\.m\.", d) for d in dates)

    def test_entity_rejects_bad_offsets(self):
        with pytest.raises(LabelError):
            NoticeEntity(5, 3, "DATE", "x")
        with pytest.raises(LabelError):
            NoticeEntity(0, 3, "PERSON", "Ann")

    def test_notice_rejects_mismatched_span(self):
        with pytest.raises(LabelError, match="does not match"):
            Notice(
                "N0001",
                "tender",
                "2025-01-06",
                "t",
                "Oak Street",
                (NoticeEntity(0, 3, "ADDRESS", "Elm"),),
                (),
                (),
            )


class TestParcelTruth:
    def test_referenced_parcels_exist(self, city, notices):
        known = set(city[0]["parcel_id"])
        for notice in notices:
            assert notice.parcel_ids, notice.notice_id
            assert set(notice.parcel_ids) <= known
            assert list(notice.parcel_ids) == sorted(set(notice.parcel_ids))

    def test_address_and_apn_match_referenced_parcel(self, city, notices):
        rows = {r["parcel_id"]: r for r in city[0].to_dict("records")}
        checked_addresses = checked_ids = 0
        for notice in notices:
            mine = [rows[pid] for pid in notice.parcel_ids]
            addresses = {normalise_street(r["address"]) for r in mine}
            ids = {r["apn"].replace("-", "") for r in mine}
            ids |= {f"Block {r['block']}, Lot {r['lot']}" for r in mine}
            for entity in notice.entities:
                if entity.label == "ADDRESS" and HOUSE_NUMBER_RE.match(entity.text):
                    assert normalise_street(entity.text) in addresses, (notice.notice_id, entity)
                    checked_addresses += 1
                elif entity.label == "PARCEL_ID":
                    assert entity.text.replace("-", "") in ids, (notice.notice_id, entity)
                    checked_ids += 1
        assert checked_addresses >= 100
        assert checked_ids >= 50

    def test_segment_notices_list_parcels_between_cross_streets(self, city, notices):
        parcels, streets = city
        order = dict(zip(streets["name"], streets["order"], strict=True))
        lookup = street_lookup()
        checked = 0
        for notice in notices:
            for entity in notice.entities:
                match = SEGMENT_RE.match(entity.text) if entity.label == "ADDRESS" else None
                if match is None or not re.search(r" (between|from) ", entity.text, re.I):
                    continue
                street, a, b = (lookup[normalise_street(match[g])] for g in ("s", "a", "b"))
                assert notice.streets == (street, a, b)
                lo, hi = sorted((order[a], order[b]))
                on_street = parcels[parcels["street"] == street]
                inside = on_street[
                    on_street["cross_from"].map(order).between(lo, hi)
                    & on_street["cross_to"].map(order).between(lo, hi)
                ]
                assert notice.parcel_ids == tuple(sorted(inside["parcel_id"]))
                checked += 1
        assert checked >= 40

    def test_intersection_notices_list_corner_parcels(self, city, notices):
        parcels = city[0]
        lookup = street_lookup()
        checked = 0
        for notice in notices:
            if notice.kind not in ("road_works", "street_closure") or len(notice.streets) != 2:
                continue
            a, b = notice.streets
            (entity,) = [e for e in notice.entities if e.label == "ADDRESS"]
            match = INTERSECTION_RE.match(entity.text)
            assert match is not None
            assert {lookup[normalise_street(match[g])] for g in ("a", "b")} == {a, b}
            corners = parcels[
                ((parcels["street"] == a) & (parcels["corner"] == b))
                | ((parcels["street"] == b) & (parcels["corner"] == a))
            ]
            assert notice.parcel_ids == tuple(sorted(corners["parcel_id"]))
            checked += 1
        assert checked >= 3

    @staticmethod
    def share(uses: Counter, plausible: set[str]) -> float:
        return sum(uses[u] for u in plausible) / sum(uses.values())

    def test_land_use_plausibility(self, city, notices):
        land_use = dict(zip(city[0]["parcel_id"], city[0]["land_use"], strict=True))
        base = Counter(land_use.values())

        def uses_of(*kinds):
            return Counter(
                land_use[pid] for x in notices if x.kind in kinds for pid in x.parcel_ids
            )

        # Permits land on construction and vacant parcels far more often than the base rate.
        permit_uses = uses_of("demolition_permit", "building_permit")
        sites = {"construction", "vacant"}
        assert self.share(permit_uses, sites) >= max(0.5, 2 * self.share(base, sites))
        assert permit_uses["park"] + permit_uses["water"] <= 3
        # Rezonings concentrate on residential, commercial and mixed-use parcels.
        zoning_uses = uses_of("zoning_hearing")
        urban = {"residential", "commercial", "mixed_use"}
        assert self.share(zoning_uses, urban) >= max(0.5, 2 * self.share(base, urban))
        assert zoning_uses["park"] + zoning_uses["water"] <= 2


class TestVariety:
    def test_openings_vary(self, notices):
        openings = {" ".join(x.text.split()[:8]) for x in notices}
        assert len(openings) >= 20

    def test_each_kind_has_varied_openings(self, notices):
        for kind in NOTICE_KINDS:
            openings = {" ".join(x.text.split()[:4]) for x in notices if x.kind == kind}
            assert len(openings) >= 3, kind

    def test_address_forms_vary(self, notices):
        addresses = [e.text for x in notices for e in x.entities if e.label == "ADDRESS"]
        assert any("St." in a or "Ave." in a for a in addresses)
        assert any(a.isupper() for a in addresses)
        assert any(" & " in a for a in addresses) or any(" at " in a for a in addresses)


class TestWriters:
    def test_round_trip(self, notices, tmp_path):
        public, truth = tmp_path / "notices.jsonl", tmp_path / "truth.jsonl"
        write_notices(notices, public)
        write_notice_truth(notices, truth)
        public_rows = [json.loads(line) for line in public.read_text("utf-8").splitlines()]
        truth_rows = [json.loads(line) for line in truth.read_text("utf-8").splitlines()]
        assert len(public_rows) == len(truth_rows) == len(notices)
        for notice, row, gold in zip(notices, public_rows, truth_rows, strict=True):
            assert set(row) == {"notice_id", "kind", "published", "title", "text"}
            assert row["text"] == notice.text and row["notice_id"] == gold["notice_id"]
            entities = tuple(NoticeEntity(**e) for e in gold["entities"])
            assert entities == notice.entities
            assert tuple(gold["parcel_ids"]) == notice.parcel_ids
            for e in gold["entities"]:
                assert row["text"][e["start"] : e["end"]] == e["text"]

    def test_public_file_hides_truth(self, notices, tmp_path):
        path = tmp_path / "notices.jsonl"
        write_notices(notices, path)
        raw = path.read_text("utf-8")
        assert "entities" not in raw and "parcel_ids" not in raw
        assert not re.search(r'"P\d{4}"', raw)

    def test_byte_deterministic(self, city, notices, tmp_path):
        again = generate_notices(*city, n=200, seed=3)
        for writer in (write_notices, write_notice_truth):
            a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
            writer(notices, a)
            writer(again, b)
            assert a.read_bytes() == b.read_bytes()
            assert b"\r\n" not in a.read_bytes()

    def test_unwritable_path(self, notices, tmp_path):
        with pytest.raises(InputFileError, match="cannot write"):
            write_notices(notices, tmp_path / "missing" / "x.jsonl")


class TestBadInput:
    @pytest.mark.parametrize("column", ["apn", "cross_from", "zoning"])
    def test_missing_parcel_column_named(self, city, column):
        parcels, streets = city
        with pytest.raises(ColumnError, match=column):
            generate_notices(parcels.drop(columns=[column]), streets, n=5)

    def test_missing_street_column_named(self, city):
        parcels, streets = city
        with pytest.raises(ColumnError, match="orientation"):
            generate_notices(parcels, streets.drop(columns=["orientation"]), n=5)

    def test_column_error_is_key_error(self, city):
        parcels, streets = city
        with pytest.raises(KeyError):
            generate_notices(parcels[["parcel_id"]], streets, n=5)

    def test_unknown_cross_street(self, city):
        parcels, streets = city
        broken = parcels.copy()
        broken.loc[0, "cross_to"] = "Nowhere Lane"
        with pytest.raises(ColumnError, match="Nowhere Lane"):
            generate_notices(broken, streets, n=5)

    def test_bad_apn(self, city):
        parcels, streets = city
        broken = parcels.copy()
        broken.loc[0, "apn"] = "12-34"
        with pytest.raises(ColumnError, match="apn"):
            generate_notices(broken, streets, n=5)

    def test_empty_parcels(self, city):
        parcels, streets = city
        with pytest.raises(ColumnError, match="empty"):
            generate_notices(parcels.iloc[0:0], streets, n=5)

    def test_required_columns_constant(self):
        assert "corner" in PARCEL_COLUMNS and "zoning" in PARCEL_COLUMNS

    def test_negative_n(self, city):
        with pytest.raises(ValueError, match="n must be"):
            generate_notices(*city, n=-1)
