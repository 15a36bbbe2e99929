"""Tests for geolabel.text.linking: normalisation, parsing and linking to the sample's parcels."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest

from geolabel.errors import ColumnError, LayerError
from geolabel.text.data import read_sample_annotations
from geolabel.text.linking import Gazetteer, link_entities, normalize_street, parse_address
from geolabel.text.records import EntitySpan


@pytest.fixture(scope="module")
def gazetteer(sample_dir):
    return Gazetteer.from_file(sample_dir / "city.gpkg")


def _entity(text, label="ADDRESS"):
    return EntitySpan(0, len(text), label, text)


def _link(gazetteer, text, label="ADDRESS"):
    links, reason = gazetteer.link("N1", _entity(text, label))
    return sorted(link.parcel_id for link in links), {link.method for link in links}, reason


class TestNormalizeStreet:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("Oak St.", "oak street"),
            ("OAK STREET", "oak street"),
            ("Cedar Ln", "cedar lane"),
            ("N. Harbor Blvd.", "north harbor boulevard"),
            ("Fifth Avenue", "5th avenue"),
            ("5TH AVE", "5th avenue"),
            ("Elm Streets", "elm street"),
            ("Hwy 101", "highway 101"),
        ],
    )
    def test_forms(self, raw, expected):
        assert normalize_street(raw) == expected


class TestParseAddress:
    @pytest.mark.parametrize(
        ("text", "kind", "streets", "numbers"),
        [
            ("1420 Oak St.", "number", ("Oak St",), (1420,)),
            ("22-28 High Street", "number", ("High Street",), (22, 28)),
            (
                "Elm Road between 3rd and 7th Street",
                "segment",
                ("Elm Road", "3rd street", "7th Street"),
                (),
            ),
            (
                "Cedar Ln. from 1st Ave. to 2nd Ave.",
                "segment",
                ("Cedar Ln.", "1st Ave.", "2nd Ave"),
                (),
            ),
            ("Oak St & 3rd Ave", "intersection", ("Oak St", "3rd Ave"), ()),
            ("Main St/5th Ave", "intersection", ("Main St", "5th Ave"), ()),
            ("400 block of Elm Street", "hundred_block", ("Elm Street",), (400,)),
            ("Cherry Street", "street", ("Cherry Street",), ()),
        ],
    )
    def test_parse(self, text, kind, streets, numbers):
        parsed = parse_address(text)
        assert (parsed.kind, parsed.streets, parsed.numbers) == (kind, streets, numbers)


class TestGazetteer:
    def test_address_exact(self, gazetteer):
        assert _link(gazetteer, "504 Birch St") == (["P0221"], {"address_exact"}, None)

    def test_address_fuzzy_has_a_score(self, gazetteer):
        links, _ = gazetteer.link("N1", _entity("504 Brich Street"))
        assert [(x.parcel_id, x.method) for x in links] == [("P0221", "address_fuzzy")]
        assert 0.8 <= links[0].confidence < 1.0

    def test_apn_with_and_without_dashes(self, gazetteer):
        assert _link(gazetteer, "412-001-001", "PARCEL_ID")[:2] == (["P0001"], {"apn"})
        assert _link(gazetteer, "412001001", "PARCEL_ID")[:2] == (["P0001"], {"apn"})

    def test_block_and_lot(self, gazetteer):
        assert _link(gazetteer, "Block 30, Lot 2", "PARCEL_ID")[:2] == (["P0221"], {"block_lot"})

    def test_segment_uses_street_order(self, gazetteer):
        pids, methods, _ = _link(gazetteer, "Willow Street between 1st Avenue and 4th Avenue")
        assert pids == ["P0265", "P0266", "P0267", "P0268", "P0269", "P0274", "P0275", "P0276"]
        assert methods == {"segment"}

    def test_intersection_gives_corner_parcels(self, gazetteer):
        pids, methods, _ = _link(gazetteer, "Oak Street and 2nd Avenue")
        assert methods == {"intersection"}
        corners = gazetteer.parcels.loc[pids]
        assert all(
            {r.street, r.corner} == {"Oak Street", "2nd Avenue"} for r in corners.itertuples()
        )
        assert "P0002" in pids

    @pytest.mark.parametrize(
        ("text", "label", "reason"),
        [
            ("12 Nowhere Boulevard", "ADDRESS", "not in the gazetteer"),
            ("9999 Oak Street", "ADDRESS", "no parcel numbered 9999"),
            ("Oak Street", "ADDRESS", "without a house number"),
            ("999-999-999", "PARCEL_ID", "no parcel with APN"),
            ("Block 99, Lot 1", "PARCEL_ID", "no parcel with block 99"),
        ],
    )
    def test_unlinked_reasons(self, gazetteer, text, label, reason):
        pids, _, why = _link(gazetteer, text, label)
        assert pids == [] and reason in why

    def test_unlinked_entities_are_reported_not_dropped(self, gazetteer):
        entities = [
            _entity("504 Birch St"),
            _entity("12 Nowhere Boulevard"),
            _entity("ORG X", "ORG"),
        ]
        links, unlinked = link_entities("N1", entities, gazetteer)
        assert [x.parcel_id for x in links] == ["P0221"]
        assert [(u.entity.text, u.notice_id) for u in unlinked] == [("12 Nowhere Boulevard", "N1")]
        _, without = link_entities("N1", entities, None)
        assert [u.reason for u in without] == ["no parcel gazetteer was given"] * 2

    def test_gold_entities_link_every_sample_notice(self, gazetteer, sample_dir):
        truth = {
            r["notice_id"]: r["parcel_ids"]
            for r in map(
                json.loads, (sample_dir / "truth" / "notices.jsonl").read_text().splitlines()
            )
        }
        wrong = []
        for notice in read_sample_annotations(sample_dir).notices:
            links, unlinked = link_entities(notice.notice_id, notice.entities, gazetteer)
            if sorted({x.parcel_id for x in links}) != truth[notice.notice_id] or unlinked:
                wrong.append(notice.notice_id)
        assert wrong == []

    def test_segment_without_street_order_walks_the_blocks(self, sample_dir):
        parcels = gpd.read_file(sample_dir / "city.gpkg", layer="parcels")
        gaz = Gazetteer.from_frame(parcels)  # no streets layer: no order
        pids, _, _ = _link(gaz, "Oak Street from 1st Avenue to 3rd Avenue")
        assert pids == ["P0001", "P0002", "P0003"]

    def test_missing_columns(self):
        with pytest.raises(ColumnError, match=r"lacks column.*house_number"):
            Gazetteer.from_frame(pd.DataFrame({"parcel_id": ["a"], "street": ["Oak Street"]}))

    def test_duplicate_ids(self):
        frame = pd.DataFrame(
            {"parcel_id": ["a", "a"], "street": ["X St"] * 2, "house_number": [1, 2]}
        )
        with pytest.raises(ColumnError, match="must be unique"):
            Gazetteer.from_frame(frame)

    def test_missing_layer(self, sample_dir):
        with pytest.raises(LayerError, match="no layer 'lots'"):
            Gazetteer.from_file(sample_dir / "city.gpkg", layer="lots")
