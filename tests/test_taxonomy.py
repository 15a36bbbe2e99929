"""Tests for geolabel.taxonomy: loading, validation, lookups, serialisation, guidelines, remaps."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from geolabel.errors import LabelError, TaxonomyError
from geolabel.taxonomy import (
    ChangelogEntry,
    DecisionNode,
    DecisionTree,
    Taxonomy,
    TaxonomyClass,
    TaxonomyRemap,
    dump_taxonomy,
    load_remap,
    load_taxonomy,
    remap_from_dict,
    remap_labels,
    render_guidelines,
    taxonomy_from_dict,
    taxonomy_from_yaml,
)

SAMPLE = Path(__file__).parents[1] / "data" / "sample"
LAND_USE = SAMPLE / "taxonomy.yaml"
POI = SAMPLE / "taxonomies" / "poi.yaml"
NOTICE = SAMPLE / "taxonomies" / "notice_entities.yaml"


def toy() -> dict[str, Any]:
    """A small valid taxonomy exercising every feature; each call returns a fresh copy."""
    return {
        "name": "toy",
        "version": 2,
        "item_kind": "parcel",
        "description": "A toy taxonomy.",
        "changelog": [
            {"version": 1, "date": "2024-01-01", "changes": ["First release."]},
            {"version": 2, "date": "2024-02-01", "changes": ["Added park."]},
        ],
        "classes": [
            {
                "id": "built",
                "code": 1,
                "name": "Built",
                "colour": "#ff0000",
                "definition": "Any building.",
            },
            {
                "id": "house",
                "code": 2,
                "name": "House",
                "colour": "#ffaa00",
                "parent": "built",
                "definition": "A building people live in.",
                "examples": ["A bungalow."],
                "counterexamples": ["A shop."],
                "edge_rules": ["Flats over shops count as house."],
            },
            {
                "id": "park",
                "code": 3,
                "name": "Park",
                "colour": "#00ff00",
                "definition": "Green space for recreation.",
            },
            {
                "id": "road",
                "code": 4,
                "name": "Road",
                "colour": "#444444",
                "definition": "Public carriageway.",
                "parcel": False,
            },
        ],
        "decision_tree": {
            "root": "green_q",
            "nodes": [
                {"id": "green_q", "question": "Mostly green?", "yes": "park", "no": "home_q"},
                {
                    "id": "home_q",
                    "question": "Do people live there?",
                    "yes": "house",
                    "no": "built",
                },
            ],
        },
    }


def _cls(d: dict[str, Any], class_id: str) -> dict[str, Any]:
    return next(c for c in d["classes"] if c["id"] == class_id)


def _node(d: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in d["decision_tree"]["nodes"] if n["id"] == node_id)


Mutation = Callable[[dict[str, Any]], object]

# (case id, mutation applied to toy(), fragment the error message must contain)
BAD_TAXONOMIES: list[tuple[str, Mutation, str]] = [
    ("missing_name", lambda d: d.pop("name"), "top level: missing required key 'name'"),
    ("bad_name", lambda d: d.update(name="land use"), "name 'land use' is not a valid identifier"),
    ("missing_classes", lambda d: d.pop("classes"), "missing required key 'classes'"),
    ("version_zero", lambda d: d.update(version=0), "version must be a positive integer"),
    ("version_string", lambda d: d.update(version="2"), "got '2'; write it without quotes"),
    ("version_float", lambda d: d.update(version=2.0), "version must be a positive integer"),
    ("version_bool", lambda d: d.update(version=True), "got True"),
    ("item_kind_typo", lambda d: d.update(item_kind="parcels"), "(did you mean 'parcel'?)"),
    ("item_kind_unknown", lambda d: d.update(item_kind="region"), "use one of parcel, pixel"),
    ("unknown_top_key", lambda d: d.update(clases=[]), "unknown key 'clases' (did you mean"),
    ("description_not_str", lambda d: d.update(description=5), "description must be a string"),
    ("classes_empty", lambda d: d.update(classes=[]), "classes: must be a non-empty list"),
    ("classes_mapping", lambda d: d.update(classes={"a": 1}), "classes: must be a non-empty list"),
    ("class_not_mapping", lambda d: d["classes"].append("water"), "classes[4]: expected a mapping"),
    (
        "missing_colour",
        lambda d: _cls(d, "built").pop("colour"),
        "class 'built': missing required key 'colour'",
    ),
    ("empty_colour", lambda d: _cls(d, "built").update(colour=None), 'unquoted "#" starts a YAML'),
    ("bad_colour", lambda d: _cls(d, "built").update(colour="red"), "colour 'red' is not a hex"),
    ("short_colour", lambda d: _cls(d, "built").update(colour="#f00"), "'#f00' is not a hex"),
    (
        "duplicate_colour",
        lambda d: _cls(d, "house").update(colour="#FF0000"),
        "colour '#FF0000' is already used by class 'built'",
    ),
    (
        "misspelt_key",
        lambda d: _cls(d, "park").update(color="#00ff00"),
        "unknown key 'color' (did you mean 'colour'?)",
    ),
    ("missing_id", lambda d: _cls(d, "park").pop("id"), "classes[2]: missing required key 'id'"),
    (
        "duplicate_id",
        lambda d: _cls(d, "house").update(id="built"),
        "duplicate class id 'built', already used by class 'built'",
    ),
    ("id_case_clash", lambda d: _cls(d, "house").update(id="Built"), "differs only in case"),
    ("id_digit_first", lambda d: _cls(d, "park").update(id="2park"), "id '2park' is not a valid"),
    ("id_hyphen", lambda d: _cls(d, "park").update(id="green-space"), "'green-space' is not a"),
    ("id_not_str", lambda d: _cls(d, "park").update(id=3), "id 3 is not a valid identifier"),
    (
        "duplicate_code",
        lambda d: _cls(d, "house").update(code=1),
        "duplicate code 1, already used by class 'built'",
    ),
    (
        "reserved_code_0",
        lambda d: _cls(d, "park").update(code=0),
        "code 0 is reserved for unlabeled/background",
    ),
    ("reserved_code_255", lambda d: _cls(d, "park").update(code=255), "code 255 is reserved"),
    ("code_too_big", lambda d: _cls(d, "park").update(code=300), "code 300 is out of range"),
    ("code_negative", lambda d: _cls(d, "park").update(code=-3), "code -3 is out of range"),
    ("code_string", lambda d: _cls(d, "park").update(code="3"), "code '3' is not an integer"),
    ("code_bool", lambda d: _cls(d, "park").update(code=True), "code True is not an integer"),
    ("missing_code", lambda d: _cls(d, "park").pop("code"), "missing required key 'code'"),
    (
        "duplicate_name",
        lambda d: _cls(d, "park").update(name="built"),
        "name 'built' is already used by class 'built'",
    ),
    (
        "unknown_parent",
        lambda d: _cls(d, "house").update(parent="biult"),
        "parent 'biult' is not a class id in this taxonomy (did you mean 'built'?)",
    ),
    ("self_parent", lambda d: _cls(d, "built").update(parent="built"), "is its own parent"),
    (
        "parent_cycle",
        lambda d: _cls(d, "built").update(parent="house"),
        "parent cycle built -> house -> built",
    ),
    (
        "empty_definition",
        lambda d: _cls(d, "park").update(definition="   "),
        "definition must be a non-empty string",
    ),
    ("missing_definition", lambda d: _cls(d, "park").pop("definition"), "key 'definition'"),
    ("name_not_str", lambda d: _cls(d, "park").update(name=["P"]), "name must be a non-empty"),
    (
        "examples_string",
        lambda d: _cls(d, "house").update(examples="A bungalow."),
        "examples must be a list of strings",
    ),
    (
        "example_not_str",
        lambda d: _cls(d, "house").update(examples=["ok", 7]),
        "examples[1] must be a non-empty string",
    ),
    (
        "edge_rule_empty",
        lambda d: _cls(d, "house").update(edge_rules=[""]),
        "edge_rules[0] must be a non-empty string",
    ),
    ("parcel_not_bool", lambda d: _cls(d, "road").update(parcel="no"), "parcel must be true or"),
    (
        "tree_unknown_target",
        lambda d: _node(d, "green_q").update(yes="parc"),
        "leads to 'parc', which is neither a node id nor a class id (did you mean 'park'?)",
    ),
    (
        "tree_unknown_root",
        lambda d: d["decision_tree"].update(root="start"),
        "root 'start' is not a node id",
    ),
    ("tree_missing_root", lambda d: d["decision_tree"].pop("root"), "missing required key 'root'"),
    (
        "tree_cycle",
        lambda d: _node(d, "home_q").update(no="green_q"),
        "cycle green_q -> home_q -> green_q",
    ),
    (
        "tree_self_loop",
        lambda d: _node(d, "home_q").update(no="home_q"),
        "cycle home_q -> home_q",
    ),
    (
        "tree_unreachable_node",
        lambda d: d["decision_tree"]["nodes"].append(
            {"id": "orphan_q", "question": "Lost?", "yes": "park", "no": "built"}
        ),
        "node 'orphan_q' cannot be reached from root 'green_q'",
    ),
    (
        "tree_duplicate_node",
        lambda d: d["decision_tree"]["nodes"].append(
            {"id": "home_q", "question": "Again?", "yes": "park", "no": "built"}
        ),
        "duplicate node id 'home_q'",
    ),
    (
        "tree_node_named_like_class",
        lambda d: d["decision_tree"]["nodes"].append(
            {"id": "park", "question": "Park?", "yes": "park", "no": "built"}
        ),
        "node id 'park' is also a class id",
    ),
    (
        "tree_same_answers",
        lambda d: _node(d, "home_q").update(no="house"),
        "both answers lead to 'house'",
    ),
    ("tree_missing_no", lambda d: _node(d, "home_q").pop("no"), "missing required key 'no'"),
    ("tree_empty_question", lambda d: _node(d, "home_q").update(question=""), "question must be"),
    (
        "tree_pixel_only_leaf",
        lambda d: _node(d, "home_q").update(no="road"),
        "leads to class 'road', which cannot label a parcel",
    ),
    ("tree_no_nodes", lambda d: d["decision_tree"].update(nodes=[]), "nodes must be a non-empty"),
    ("tree_not_mapping", lambda d: d.update(decision_tree=["q"]), "decision_tree: expected a"),
    (
        "tree_node_not_mapping",
        lambda d: d["decision_tree"]["nodes"].append("q3"),
        "decision_tree.nodes[2]: expected a mapping",
    ),
    ("changelog_not_list", lambda d: d.update(changelog="v1"), "changelog: must be a list"),
    (
        "changelog_bad_date",
        lambda d: d["changelog"][0].update(date="May 2024"),
        "date 'May 2024' is not a date; write it as YYYY-MM-DD",
    ),
    (
        "changelog_future_version",
        lambda d: d["changelog"][1].update(version=3),
        "entry for v3 is newer than the taxonomy version 2",
    ),
    (
        "changelog_duplicate_version",
        lambda d: d["changelog"][1].update(version=1),
        "a changelog entry for v1 already exists",
    ),
    (
        "changelog_empty_changes",
        lambda d: d["changelog"][0].update(changes=[]),
        "changes is empty",
    ),
]


class TestTaxonomyFromDict:
    def test_toy_is_valid(self) -> None:
        tax = taxonomy_from_dict(toy())
        assert tax.name == "toy"
        assert tax.version == 2
        assert tax.class_ids == ("built", "house", "park", "road")
        assert tax.get("house").examples == ("A bungalow.",)
        assert tax.changelog[1] == ChangelogEntry(2, "2024-02-01", ("Added park.",))

    @pytest.mark.parametrize(
        ("mutate", "fragment"),
        [pytest.param(m, f, id=case) for case, m, f in BAD_TAXONOMIES],
    )
    def test_bad_taxonomy(self, mutate: Mutation, fragment: str) -> None:
        data = toy()
        mutate(data)
        with pytest.raises(TaxonomyError) as info:
            taxonomy_from_dict(data, source="bad.yaml")
        message = str(info.value)
        assert message.startswith("bad.yaml: invalid taxonomy")
        assert fragment in message

    def test_all_problems_reported_together(self) -> None:
        data = toy()
        _cls(data, "built").update(colour="red")
        _cls(data, "house").update(code=1)
        _node(data, "green_q").update(yes="parc")
        with pytest.raises(TaxonomyError) as info:
            taxonomy_from_dict(data)
        lines = str(info.value).splitlines()
        assert "3 problems" in lines[0]
        assert len(lines) == 4
        assert any("colour 'red'" in line for line in lines[1:])
        assert any("duplicate code 1" in line for line in lines[1:])
        assert any("leads to 'parc'" in line for line in lines[1:])

    def test_error_is_also_value_error(self) -> None:
        with pytest.raises(ValueError, match="missing required key 'name'"):
            taxonomy_from_dict({k: v for k, v in toy().items() if k != "name"})

    def test_not_a_mapping(self) -> None:
        with pytest.raises(TaxonomyError, match="expected a mapping"):
            taxonomy_from_dict(["name", "toy"])  # type: ignore[arg-type]

    def test_unreachable_class_is_fine(self) -> None:
        data = toy()
        data["classes"].append(
            {"id": "water", "code": 5, "name": "Water", "colour": "#0000ff", "definition": "Wet."}
        )
        tax = taxonomy_from_dict(data)
        assert tax.decision_tree is not None
        assert "water" not in tax.decision_tree.leaves()

    def test_pixel_only_leaf_allowed_outside_parcel_taxonomies(self) -> None:
        data = toy()
        data["item_kind"] = "pixel"
        _node(data, "home_q").update(no="road")
        tax = taxonomy_from_dict(data)
        assert tax.decision_tree is not None
        assert "road" in tax.decision_tree.leaves()

    def test_optional_sections_may_be_absent(self) -> None:
        data = toy()
        for key in ("description", "changelog", "decision_tree"):
            del data[key]
        tax = taxonomy_from_dict(data)
        assert tax.decision_tree is None
        assert tax.changelog == ()
        assert tax.description == ""

    def test_yaml_11_booleans_for_yes_no_keys(self) -> None:
        # A file read with plain yaml.safe_load has True/False instead of "yes"/"no" keys.
        data = yaml.safe_load(LAND_USE.read_text(encoding="utf-8"))
        assert True in data["decision_tree"]["nodes"][0]
        assert taxonomy_from_dict(data) == load_taxonomy(LAND_USE)

    def test_upper_case_ids_allowed(self) -> None:
        data = toy()
        _cls(data, "road").update(id="ROAD_1")
        assert "ROAD_1" in taxonomy_from_dict(data)

    def test_date_objects_become_iso_strings(self) -> None:
        text = LAND_USE.read_text(encoding="utf-8")
        assert "date: 2024-05-06" in text  # unquoted: YAML reads a datetime.date
        assert load_taxonomy(LAND_USE).changelog[0].date == "2024-05-06"


class TestLoadTaxonomy:
    def _write(self, tmp_path: Path, text: str, name: str = "tax.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(TaxonomyError, match="taxonomy file not found"):
            load_taxonomy(tmp_path / "nope.yaml")

    def test_directory(self, tmp_path: Path) -> None:
        with pytest.raises(TaxonomyError, match="is a directory"):
            load_taxonomy(tmp_path)

    def test_not_utf8(self, tmp_path: Path) -> None:
        path = tmp_path / "latin1.yaml"
        path.write_bytes("name: caf\xe9\n".encode("latin-1"))
        with pytest.raises(TaxonomyError, match="is not UTF-8"):
            load_taxonomy(path)

    def test_empty_file(self, tmp_path: Path) -> None:
        with pytest.raises(TaxonomyError, match="the taxonomy is empty"):
            load_taxonomy(self._write(tmp_path, "# nothing here\n"))

    def test_top_level_list(self, tmp_path: Path) -> None:
        with pytest.raises(TaxonomyError, match=r"top level: expected a mapping.*got a list"):
            load_taxonomy(self._write(tmp_path, "- name: toy\n"))

    def test_syntax_error_gives_line(self, tmp_path: Path) -> None:
        text = "name: toy\nversion: 1\nclasses:\n  - id: a\n   code: 1\n"
        path = self._write(tmp_path, text)
        with pytest.raises(TaxonomyError) as info:
            load_taxonomy(path)
        assert str(path) in str(info.value)
        assert "YAML error at line 5" in str(info.value)

    def test_unclosed_quote(self, tmp_path: Path) -> None:
        path = self._write(tmp_path, 'name: "toy\nversion: 1\n')
        with pytest.raises(TaxonomyError, match=r"YAML error at line \d+"):
            load_taxonomy(path)

    def test_duplicate_key_gives_line(self, tmp_path: Path) -> None:
        text = "name: toy\nversion: 1\nname: other\n"
        with pytest.raises(TaxonomyError, match=r"line 3.*duplicate key 'name'"):
            load_taxonomy(self._write(tmp_path, text))

    def test_problems_carry_line_numbers(self, tmp_path: Path) -> None:
        text = yaml.safe_dump(toy(), sort_keys=False).replace("code: 2", "code: 1")
        with pytest.raises(TaxonomyError) as info:
            load_taxonomy(self._write(tmp_path, text))
        line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip() == "- id: house")
        assert f"class 'house' (line {line}): duplicate code 1" in str(info.value)

    def test_unquoted_hash_colour(self, tmp_path: Path) -> None:
        text = yaml.safe_dump(toy(), sort_keys=False).replace("'#ff0000'", "#ff0000")
        with pytest.raises(TaxonomyError, match=r"key 'colour' is empty.*unquoted"):
            load_taxonomy(self._write(tmp_path, text))

    def test_yes_no_words_are_not_booleans(self, tmp_path: Path) -> None:
        # `parcel: no` is the string "no" in YAML 1.2 and would be True-ish if coerced.
        text = yaml.safe_dump(toy(), sort_keys=False).replace("parcel: false", "parcel: no")
        with pytest.raises(TaxonomyError, match="parcel must be true or false, got 'no'"):
            load_taxonomy(self._write(tmp_path, text))

    def test_loads_toy_from_file(self, tmp_path: Path) -> None:
        path = self._write(tmp_path, yaml.safe_dump(toy(), sort_keys=False))
        assert load_taxonomy(path) == taxonomy_from_dict(toy())

    def test_str_path(self) -> None:
        assert load_taxonomy(str(LAND_USE)) == load_taxonomy(LAND_USE)


class TestRecords:
    def test_class_validates_itself(self) -> None:
        with pytest.raises(TaxonomyError, match="code 0 is reserved"):
            TaxonomyClass(id="a", code=0, name="A", colour="#000000", definition="A.")

    def test_class_reports_all_its_problems(self) -> None:
        with pytest.raises(TaxonomyError) as info:
            TaxonomyClass(id="a b", code=300, name="A", colour="black", definition="")
        assert "4 problems" in str(info.value)

    def test_class_normalises(self) -> None:
        cls = TaxonomyClass(
            id="a",
            code=1,
            name=" A ",
            colour="#ABCDEF",
            definition=" Def. ",
            examples=["x "],  # type: ignore[arg-type]
        )
        assert cls.colour == "#abcdef"
        assert cls.name == "A"
        assert cls.definition == "Def."
        assert cls.examples == ("x",)

    def test_taxonomy_checks_cross_class_rules(self) -> None:
        a = TaxonomyClass(id="a", code=1, name="A", colour="#000000", definition="A.")
        b = TaxonomyClass(id="b", code=1, name="B", colour="#111111", definition="B.")
        with pytest.raises(TaxonomyError, match="duplicate code 1"):
            Taxonomy(name="t", version=1, item_kind="parcel", classes=(a, b))

    def test_taxonomy_rejects_plain_dicts(self) -> None:
        with pytest.raises(TaxonomyError, match="use taxonomy_from_dict"):
            Taxonomy(name="t", version=1, item_kind="parcel", classes=({"id": "a"},))  # type: ignore[arg-type]

    def test_tree_validates_structure(self) -> None:
        nodes = (DecisionNode("a", "A?", "b", "x"), DecisionNode("b", "B?", "a", "y"))
        with pytest.raises(TaxonomyError, match="cycle a -> b -> a"):
            DecisionTree(root="a", nodes=nodes)

    def test_changelog_entry_validates(self) -> None:
        with pytest.raises(TaxonomyError, match="is not a date"):
            ChangelogEntry(version=1, date="yesterday", changes=("x",))

    def test_asdict_is_json_ready(self) -> None:
        # The CLI prints records with dataclasses.asdict(); that must work on every record.
        tax = load_taxonomy(LAND_USE)
        data = json.loads(json.dumps(dataclasses.asdict(tax)))
        assert data["classes"][8]["id"] == "road"
        assert data["classes"][8]["parcel"] is False
        assert data["decision_tree"]["root"] == "water_q"
        remap = remap_from_dict(copy.deepcopy(V1_TO_V2))
        assert dataclasses.asdict(remap)["mapping"]["park"] == ("green_space",)

    def test_records_are_frozen_and_hashable(self) -> None:
        tax = load_taxonomy(LAND_USE)
        with pytest.raises(AttributeError):
            tax.version = 2  # type: ignore[misc]
        assert hash(tax) == hash(load_taxonomy(LAND_USE))


class TestLookups:
    @pytest.fixture
    def tax(self) -> Taxonomy:
        return taxonomy_from_dict(toy())

    def test_class_ids_and_parcel_ids(self, tax: Taxonomy) -> None:
        assert tax.class_ids == ("built", "house", "park", "road")
        assert tax.parcel_class_ids == ("built", "house", "park")

    def test_get_unknown_lists_valid_ids(self, tax: Taxonomy) -> None:
        with pytest.raises(LabelError) as info:
            tax.get("hous")
        message = str(info.value)
        assert "did you mean 'house'?" in message
        assert "valid ids: built, house, park, road" in message

    def test_codes_and_colours(self, tax: Taxonomy) -> None:
        assert tax.code_of("park") == 3
        assert tax.id_of_code(3) == "park"
        assert tax.colour_of("built") == "#ff0000"
        assert tax.codes == {"built": 1, "house": 2, "park": 3, "road": 4}
        assert tax.colours["road"] == "#444444"

    def test_colours_is_a_copy(self, tax: Taxonomy) -> None:
        tax.colours["park"] = "#000000"
        assert tax.colour_of("park") == "#00ff00"

    @pytest.mark.parametrize(
        ("code", "fragment"),
        [
            (0, "reserved for unlabeled/background"),
            (255, "reserved for ignore"),
            (9, "codes in use"),
        ],
    )
    def test_id_of_bad_code(self, tax: Taxonomy, code: int, fragment: str) -> None:
        with pytest.raises(LabelError, match=re.escape(fragment)):
            tax.id_of_code(code)

    def test_hierarchy(self, tax: Taxonomy) -> None:
        assert tax.ancestors("house") == ("built",)
        assert tax.ancestors("built") == ()
        assert tax.children("built") == ("house",)

    def test_container_protocol(self, tax: Taxonomy) -> None:
        assert "park" in tax
        assert "Park" not in tax
        assert 3 not in tax
        assert len(tax) == 4
        assert [c.id for c in tax] == list(tax.class_ids)


class TestValidateLabels:
    @pytest.fixture
    def tax(self) -> Taxonomy:
        return taxonomy_from_dict(toy())

    def test_known_labels_pass(self, tax: Taxonomy) -> None:
        tax.validate_labels(["park", "house", "road", "park"])  # no error

    def test_unknown_labels_listed_with_allowed(self, tax: Taxonomy) -> None:
        with pytest.raises(LabelError) as info:
            tax.validate_labels(["park", "mixed_use", "mixed_use", "Park", None])
        message = str(info.value)
        assert message.startswith("4 labels not in taxonomy toy v2")
        assert "'mixed_use' x2" in message
        assert "'Park' (did you mean 'park'?)" in message
        assert "None" in message
        assert "Allowed: built, house, park, road" in message

    def test_parcels_only_rejects_pixel_classes(self, tax: Taxonomy) -> None:
        tax.validate_labels(["road"])
        with pytest.raises(LabelError, match=r"'road' \(pixel-only, parcel: false\)"):
            tax.validate_labels(["park", "road"], parcels_only=True)

    def test_accepts_any_iterable(self, tax: Taxonomy) -> None:
        with pytest.raises(LabelError, match="1 label not in"):
            tax.validate_labels(label for label in ("park", "lake"))


class TestSerialisation:
    @pytest.mark.parametrize("path", [LAND_USE, POI, NOTICE], ids=lambda p: p.stem)
    def test_yaml_round_trip(self, path: Path) -> None:
        tax = load_taxonomy(path)
        again = taxonomy_from_yaml(tax.to_yaml())
        assert again == tax
        assert again.to_dict() == tax.to_dict()

    def test_toy_round_trip_keeps_parcel_flag_and_parent(self) -> None:
        tax = taxonomy_from_dict(toy())
        text = tax.to_yaml()
        assert "parcel: false" in text
        assert "parcel: true" not in text  # default left out
        assert "'yes'" not in text  # tree keys written as plain yes/no
        again = taxonomy_from_yaml(text)
        assert again == tax
        assert again.get("road").parcel is False
        assert again.get("house").parent == "built"

    def test_dump_and_load(self, tmp_path: Path) -> None:
        tax = load_taxonomy(LAND_USE)
        path = dump_taxonomy(tax, tmp_path / "out.yaml")
        assert load_taxonomy(path) == tax
        assert path.read_text(encoding="utf-8").startswith(
            f"# land_use v1 taxonomy; sha256 {tax.sha256}"
        )

    def test_dump_to_missing_directory(self, tmp_path: Path) -> None:
        with pytest.raises(TaxonomyError, match="cannot write the taxonomy"):
            dump_taxonomy(taxonomy_from_dict(toy()), tmp_path / "no" / "such" / "dir.yaml")

    def test_sha256_stable(self) -> None:
        first = load_taxonomy(LAND_USE).sha256
        assert re.fullmatch(r"[0-9a-f]{64}", first)
        assert load_taxonomy(LAND_USE).sha256 == first
        assert taxonomy_from_yaml(load_taxonomy(LAND_USE).to_yaml()).sha256 == first

    def test_sha256_ignores_formatting_and_defaults(self) -> None:
        plain = taxonomy_from_dict(toy())
        data = toy()
        data = {k: data[k] for k in reversed(list(data))}  # other key order
        _cls(data, "built").update(parcel=True, parent=None, examples=[], colour="#FF0000")
        _cls(data, "park")["definition"] = "  Green space for recreation.\n"
        assert taxonomy_from_dict(data).sha256 == plain.sha256

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda d: _cls(d, "park").update(definition="Any green space."),
            lambda d: _cls(d, "park").update(code=9),
            lambda d: _cls(d, "park").update(colour="#00ff01"),
            lambda d: d.update(version=3, changelog=[]),
            lambda d: d["classes"].reverse(),
            lambda d: _node(d, "green_q").update(question="Green?"),
        ],
        ids=["definition", "code", "colour", "version", "class_order", "tree"],
    )
    def test_sha256_changes_with_content(self, mutate: Mutation) -> None:
        data = toy()
        mutate(data)
        assert taxonomy_from_dict(data).sha256 != taxonomy_from_dict(toy()).sha256

    def test_to_dict_is_plain_data(self) -> None:
        d = taxonomy_from_dict(toy()).to_dict()
        assert isinstance(d["classes"], list)
        assert isinstance(d["classes"][1]["examples"], list)
        assert d["decision_tree"]["nodes"][0] == {
            "id": "green_q",
            "question": "Mostly green?",
            "yes": "park",
            "no": "home_q",
        }


class TestDecisionTree:
    @pytest.fixture
    def tree(self) -> DecisionTree:
        tree = load_taxonomy(LAND_USE).decision_tree
        assert tree is not None
        return tree

    def test_classify(self, tree: DecisionTree) -> None:
        assert tree.classify({"water_q": True}) == "water"
        shops_under_flats = {
            "water_q": False,
            "works_q": False,
            "civic_q": False,
            "built_q": True,
            "goods_q": False,
            "homes_q": True,
        }
        assert tree.classify(shops_under_flats) == "residential"
        assert tree.classify({**shops_under_flats, "homes_q": False}) == "commercial"

    def test_classify_missing_answer(self, tree: DecisionTree) -> None:
        with pytest.raises(TaxonomyError, match="no answer for decision node 'works_q'"):
            tree.classify({"water_q": False})

    def test_node_lookup(self, tree: DecisionTree) -> None:
        assert tree.node("water_q").yes == "water"
        with pytest.raises(TaxonomyError, match="did you mean 'water_q'"):
            tree.node("watr_q")


class TestGuidelines:
    @pytest.fixture
    def tax(self) -> Taxonomy:
        return load_taxonomy(LAND_USE)

    def test_markdown_has_every_class(self, tax: Taxonomy) -> None:
        text = tax.render_guidelines()
        for cls in tax.classes:
            assert f"### {cls.code}. {cls.name} (`{cls.id}`)" in text
            assert cls.definition in text
            for line in (*cls.examples, *cls.counterexamples, *cls.edge_rules):
                assert f"- {line}" in text

    def test_markdown_has_the_tree_nested(self, tax: Taxonomy) -> None:
        text = tax.render_guidelines("markdown")
        assert tax.decision_tree is not None
        for node in tax.decision_tree.nodes:
            assert node.question in text
        lines = text.splitlines()
        root = next(line for line in lines if "Q1. Does open water" in line)
        homes = next(line for line in lines if "Are homes (houses, flats)" in line)
        assert root.startswith("- Q1.")
        assert len(homes) - len(homes.lstrip()) > len(root) - len(root.lstrip())
        assert "  - Yes: **Water** (`water`)" in lines
        assert "The tree does not lead to: **Road** (`road`)" in text

    def test_markdown_has_changelog_and_table(self, tax: Taxonomy) -> None:
        text = tax.render_guidelines()
        assert "## Changelog" in text
        assert "- v1 (2024-05-06)" in text
        assert "| 9 | `road` | Road | `#4d4d4d` | no (pixel-only) |" in text
        assert tax.sha256[:12] in text

    def test_text_format_has_no_markup(self, tax: Taxonomy) -> None:
        text = render_guidelines(tax, "text")
        assert "**" not in text
        assert "`" not in text
        assert not any(line.startswith("#") for line in text.splitlines())
        assert "land_use v1: annotation guidelines\n==================================" in text
        assert "Decision tree\n-------------" in text
        for cls in tax.classes:
            assert cls.name in text

    def test_shared_node_rendered_once(self) -> None:
        data = toy()
        data["decision_tree"]["nodes"] = [
            {"id": "a_q", "question": "First?", "yes": "b_q", "no": "c_q"},
            {"id": "c_q", "question": "Second?", "yes": "b_q", "no": "park"},
            {"id": "b_q", "question": "Shared?", "yes": "house", "no": "built"},
        ]
        data["decision_tree"]["root"] = "a_q"
        text = taxonomy_from_dict(data).render_guidelines()
        assert text.count("Shared?") == 1
        assert "- Yes: go to Q2 above." in text

    def test_unknown_format(self, tax: Taxonomy) -> None:
        with pytest.raises(TaxonomyError, match="unknown guideline format 'html'"):
            tax.render_guidelines("html")  # type: ignore[arg-type]


def _land_use_v2() -> Taxonomy:
    """Sample v1 plus a mixed_use class, and park renamed to green_space."""
    data = load_taxonomy(LAND_USE).to_dict()
    data["version"] = 2
    data["changelog"].append(
        {
            "version": 2,
            "date": "2024-09-01",
            "changes": ["Added mixed_use.", "park -> green_space."],
        }
    )
    _cls(data, "park")["id"] = "green_space"
    data["classes"].append(
        {
            "id": "mixed_use",
            "code": 10,
            "name": "Mixed use",
            "colour": "#c44e52",
            "definition": "Shops or offices on the ground floor with homes above.",
        }
    )
    for node in data["decision_tree"]["nodes"]:
        for answer in ("yes", "no"):
            if node[answer] == "park":
                node[answer] = "green_space"
    return taxonomy_from_dict(data)


V1_TO_V2: dict[str, Any] = {
    "name": "land_use",
    "from_version": 1,
    "to_version": 2,
    "mapping": {
        "residential": ["residential", "mixed_use"],
        "commercial": ["commercial", "mixed_use"],
        "industrial": "industrial",
        "institutional": "institutional",
        "park": "green_space",
        "water": "water",
        "vacant": "vacant",
        "construction": "construction",
        "road": "road",
    },
}


class TestRemap:
    @pytest.fixture
    def remap(self) -> TaxonomyRemap:
        return remap_from_dict(copy.deepcopy(V1_TO_V2))

    def test_remap_labels_with_split(self, remap: TaxonomyRemap) -> None:
        old, new = load_taxonomy(LAND_USE), _land_use_v2()
        result = remap_labels(
            ["park", "commercial", "water", "residential"], remap, old=old, new=new
        )
        assert result.labels == ("green_space", None, "water", None)
        assert result.ambiguous == (1, 3)
        assert result.candidates[1] == ("commercial", "mixed_use")
        new.validate_labels(label for label in result.labels if label is not None)

    def test_on_split_first(self, remap: TaxonomyRemap) -> None:
        result = remap_labels(["commercial", "vacant"], remap, on_split="first")
        assert result.labels == ("commercial", "vacant")
        assert result.ambiguous == (0,)

    def test_splits(self, remap: TaxonomyRemap) -> None:
        assert remap.splits == {
            "residential": ("residential", "mixed_use"),
            "commercial": ("commercial", "mixed_use"),
        }
        assert remap.targets("park") == ("green_space",)

    def test_unknown_labels(self, remap: TaxonomyRemap) -> None:
        with pytest.raises(LabelError, match=r"2 labels not in remap v1->v2: 'prak' \(did you"):
            remap_labels(["park", "prak", "prak"], remap)

    def test_every_old_class_must_be_mapped(self) -> None:
        data = copy.deepcopy(V1_TO_V2)
        del data["mapping"]["vacant"]
        remap = remap_from_dict(data)
        with pytest.raises(TaxonomyError, match="old class 'vacant' is not mapped"):
            remap.check(load_taxonomy(LAND_USE), _land_use_v2())

    def test_targets_must_exist(self) -> None:
        data = copy.deepcopy(V1_TO_V2)
        data["mapping"]["park"] = "greenspace"
        with pytest.raises(
            TaxonomyError, match="'greenspace', which is not a class of land_use v2"
        ):
            remap_labels(["park"], remap_from_dict(data), new=_land_use_v2())

    def test_mapped_ids_must_exist_in_old(self) -> None:
        data = copy.deepcopy(V1_TO_V2)
        data["mapping"]["mixed"] = "mixed_use"
        with pytest.raises(
            TaxonomyError, match="maps 'mixed', which is not a class of land_use v1"
        ):
            remap_from_dict(data).check(old=load_taxonomy(LAND_USE))

    def test_versions_must_match(self, remap: TaxonomyRemap) -> None:
        v1 = load_taxonomy(LAND_USE)
        with pytest.raises(TaxonomyError) as info:
            remap.check(old=v1, new=v1)
        assert "expects new version 2, but the new taxonomy is land_use v1" in str(info.value)
        assert "old class" not in str(info.value)

    def test_name_must_match(self, remap: TaxonomyRemap) -> None:
        with pytest.raises(TaxonomyError, match="remap is for taxonomy 'land_use'"):
            remap.check(old=load_taxonomy(POI))

    @pytest.mark.parametrize(
        ("mutate", "fragment"),
        [
            (lambda d: d.pop("mapping"), "missing required key 'mapping'"),
            (lambda d: d.update(mapping={}), "mapping: must be a non-empty mapping"),
            (lambda d: d["mapping"].update(park=[]), "must map to a new class id or a non-empty"),
            (lambda d: d["mapping"].update(park=["a", "a"]), "lists the same target twice"),
            (lambda d: d["mapping"].update(park="green space"), "target 'green space' is not a"),
            (lambda d: d.update(from_version=0), "from_version must be a positive integer"),
            (lambda d: d.update(to_version="2"), "to_version must be a positive integer"),
        ],
        ids=["no_mapping", "empty", "empty_split", "dup_target", "bad_target", "v0", "v_str"],
    )
    def test_bad_remap(self, mutate: Mutation, fragment: str) -> None:
        data = copy.deepcopy(V1_TO_V2)
        mutate(data)
        with pytest.raises(TaxonomyError, match=re.escape(fragment)):
            remap_from_dict(data)

    def test_load_remap_round_trip(self, tmp_path: Path, remap: TaxonomyRemap) -> None:
        path = tmp_path / "v1_to_v2.yaml"
        path.write_text(yaml.safe_dump(remap.to_dict(), sort_keys=False), encoding="utf-8")
        assert load_remap(path) == remap
        assert remap.to_dict() == V1_TO_V2

    def test_load_remap_missing(self, tmp_path: Path) -> None:
        with pytest.raises(TaxonomyError, match="remap file not found"):
            load_remap(tmp_path / "none.yaml")

    def test_unknown_on_split(self, remap: TaxonomyRemap) -> None:
        with pytest.raises(TaxonomyError, match="unknown on_split 'guess'"):
            remap_labels(["park"], remap, on_split="guess")  # type: ignore[arg-type]


class TestShippedTaxonomies:
    @pytest.mark.parametrize("path", [LAND_USE, POI, NOTICE], ids=lambda p: p.stem)
    def test_loads_and_guides(self, path: Path) -> None:
        tax = load_taxonomy(path)
        assert tax.version == 1
        assert tax.changelog and tax.changelog[-1].version == tax.version
        for cls in tax.classes:
            assert len(cls.examples) >= 2, cls.id
            assert len(cls.counterexamples) >= 1, cls.id
        assert all(cls.name in tax.render_guidelines() for cls in tax.classes)

    def test_land_use(self) -> None:
        tax = load_taxonomy(LAND_USE)
        assert (tax.name, tax.item_kind) == ("land_use", "parcel")
        assert tax.codes == {
            "residential": 1,
            "commercial": 2,
            "industrial": 3,
            "institutional": 4,
            "park": 5,
            "water": 6,
            "vacant": 7,
            "construction": 8,
            "road": 9,
        }
        assert tax.parcel_class_ids == tax.class_ids[:-1]
        assert "mixed_use" not in tax
        assert all(cls.edge_rules for cls in tax.classes)

    def test_land_use_tree_covers_parcel_classes(self) -> None:
        tax = load_taxonomy(LAND_USE)
        assert tax.decision_tree is not None
        assert sorted(tax.decision_tree.leaves()) == sorted(tax.parcel_class_ids)

    def test_land_use_says_how_to_label_shops_under_flats(self) -> None:
        rules = " ".join(load_taxonomy(LAND_USE).get("residential").edge_rules)
        assert "shops with flats above" in rules.lower()
        assert "floor area" in rules

    def test_poi(self) -> None:
        tax = load_taxonomy(POI)
        assert tax.item_kind == "poi"
        assert set(tax.class_ids) == {
            "school",
            "hospital",
            "transit",
            "shop",
            "restaurant",
            "place_of_worship",
            "park_facility",
            "public_service",
        }

    def test_notice_entities(self) -> None:
        tax = load_taxonomy(NOTICE)
        assert tax.item_kind == "notice"
        assert tax.class_ids == ("ADDRESS", "PARCEL_ID", "DATE", "PROJECT", "ORG", "ZONING")
        assert tax.id_of_code(2) == "PARCEL_ID"
