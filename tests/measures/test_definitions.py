"""Bad input: measure files that must fail with the file and JSON path, and runs that warn."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from careloop.core.errors import ValidationFailed
from careloop.measures import (
    builtin_measures,
    load_catalog,
    load_definition,
    parse_yaml,
    run_measures,
)
from careloop.measures.validation import validate_files
from careloop.warehouse import Warehouse
from tests.measures import fixture

GOOD = {
    "id": "good",
    "title": "A good measure",
    "type": "proportion",
    "denominator": {"visit": {"concepts": [9202]}},
    "numerator": {"observation": {"concepts": [2000000101], "value": {"in": [1]}, "at": "last"}},
}


def _problems(text: str, source: str = "m.yaml") -> list[str]:
    with pytest.raises(ValidationFailed) as info:
        parse_yaml(text, source=source)
    return [f"{d.location}: {d.message}" for d in info.value.details]


def test_the_issue_example_error_names_the_file_and_json_path():
    text = """
id: remission
title: t
type: proportion
denominator: {visit: {concepts: [9202]}}
numerator:
  all_of:
    - measurement: {concepts: [2000000101], value: {above: 1}}
"""
    assert _problems(text, "remission.yaml") == [
        "remission.yaml: $.numerator.all_of[0].measurement.value: "
        "expected one of eq, in, between, gt, lt, is_null"
    ]


def test_unknown_keys_are_named_at_every_level():
    text = """
id: m
title: t
type: proportion
colour: blue
denominator: {visit: {concepts: [9202], descendents: true}}
numerator: {labs: {concepts: [1]}}
"""
    problems = _problems(text)
    assert problems[0].startswith("m.yaml: $.colour: unknown key; expected one of id, title")
    assert problems[1].startswith("m.yaml: $.denominator.visit.descendents: unknown key")
    assert problems[2].startswith("m.yaml: $.numerator.labs: unknown key; expected one of all_of")


def test_wrong_types_are_reported_together():
    text = """
id: Not Kebab
title: 5
type: average
subject: ward
target: high
lookback: a while
stratify: [site, postcode]
denominator: {visit: {concepts: "9202"}}
numerator: {visit: {concepts: [9202, true], at: middle}}
"""
    problems = _problems(text)
    assert "m.yaml: $.id: expected a lower-kebab id such as remission-prevalence" in problems
    assert "m.yaml: $.title: expected a non-empty string" in problems
    assert "m.yaml: $.type: expected one of proportion, ratio, continuous, count" in problems
    assert "m.yaml: $.subject: expected one of person, visit" in problems
    assert "m.yaml: $.target: expected a number" in problems
    assert any(p.startswith("m.yaml: $.lookback: expected an amount and unit") for p in problems)
    assert any(p.startswith("m.yaml: $.stratify[1]: expected one of site, sex") for p in problems)
    assert "m.yaml: $.denominator.visit.concepts: expected a non-empty list of concept ids" in (
        problems
    )
    assert "m.yaml: $.numerator.visit.concepts[1]: expected a concept id (a whole number)" in (
        problems
    )
    assert "m.yaml: $.numerator.visit.at: expected one of any, first, last" in problems


def test_empty_criteria_are_refused():
    text = """
id: m
title: t
type: proportion
denominator: {visit: {concepts: [9202]}}
numerator: {all_of: []}
"""
    assert _problems(text) == [
        "m.yaml: $.numerator.all_of: empty criteria: list at least one criterion"
    ]


def test_circular_criteria_built_with_yaml_anchors_are_refused():
    text = """
id: m
title: t
type: count
denominator: &loop {all_of: [*loop]}
"""
    # PyYAML cannot even build this alias before the anchor closes; a list that
    # holds itself can be built, and is refused by depth.
    with pytest.raises(ValidationFailed):
        parse_yaml(text)
    data: dict = {**GOOD}
    loop: list = []
    loop.append({"all_of": loop})
    data["numerator"] = {"all_of": loop}
    from careloop.measures import parse_definition

    with pytest.raises(ValidationFailed, match="not valid") as info:
        parse_definition(data, source="loop.yaml")
    assert any("nested deeper than 8 levels (circular?)" in d.message for d in info.value.details)


def test_missing_keys_and_type_specific_keys():
    problems = _problems("id: m\ntitle: t\ntype: continuous\ndenominator: {visit: {concepts: [1]}}")
    assert "m.yaml: $.aggregate: required key is missing; expected one of mean, median" in problems
    assert any(p.startswith("m.yaml: $.value: continuous measures need") for p in problems)
    problems = _problems(
        "id: m\ntitle: t\ntype: proportion\nsubject: visit\nlookback: 3 months\n"
        "denominator: {visit: {concepts: [1]}}"
    )
    assert (
        "m.yaml: $.numerator: required key is missing; expected all_of, any_of, none_of or a "
        "criterion such as visit: {concepts: [9202]}" in problems
    )
    assert any(p.startswith("m.yaml: $.lookback: visit measures look at rows") for p in problems)
    problems = _problems(
        "id: m\ntitle: t\ntype: count\ndenominator: {visit: {concepts: [1], value: {eq: 1}}}"
    )
    assert problems == ["m.yaml: $.denominator.visit.value: visit rows have no value to test"]


def test_malformed_yaml_names_the_line():
    with pytest.raises(ValidationFailed) as info:
        parse_yaml("id: m\ntitle: [unclosed\n", source="broken.yaml")
    assert info.value.details[0].location.startswith("broken.yaml: line")


def test_the_definition_hash_is_stable_and_follows_the_content(tmp_path):
    a = parse_yaml("id: m\ntitle: t\ntype: count\ndenominator: {visit: {concepts: [9202]}}")
    b = parse_yaml("type: count\nid: m\ntitle: t\ndenominator:\n  visit:\n    concepts: [9202]\n")
    c = parse_yaml("id: m\ntitle: t\ntype: count\ndenominator: {visit: {concepts: [9203]}}")
    assert a.definition_hash == b.definition_hash != c.definition_hash
    path = tmp_path / "m.yaml"
    path.write_text("id: m\ntitle: t\ntype: count\ndenominator: {visit: {concepts: [9202]}}")
    assert load_definition(path).definition_hash == a.definition_hash


def test_every_builtin_measure_uses_only_concepts_of_the_concept_map():
    from careloop.content.ibd import concepts as c

    known = set(c.local_concepts()) | {
        c.OUTPATIENT_VISIT,
        c.INPATIENT_VISIT,
        c.EMERGENCY_ROOM_VISIT,
        c.EMERGENCY_AND_INPATIENT_VISIT,
        c.TELEHEALTH_VISIT,
        c.BODY_HEIGHT,
        c.BODY_WEIGHT,
    }
    for m in builtin_measures():
        for crit in m.criteria():
            assert set(crit.concepts) <= known, (m.id, crit.concepts)
    assert len(builtin_measures()) >= 10


def test_a_folder_with_a_bad_file_keeps_the_good_ones_and_reports_the_bad(tmp_path):
    (tmp_path / "good.yaml").write_text(
        "id: mine\ntitle: t\ntype: count\ndenominator: {visit: {concepts: [9202]}}\n"
    )
    (tmp_path / "bad.yaml").write_text("id: broken\ntitle: t\ntype: count\n")
    (tmp_path / "dup.yaml").write_text(
        "id: growth-assessed\ntitle: t\ntype: count\ndenominator: {visit: {concepts: [9202]}}\n"
    )
    catalog = load_catalog(measures_dir=tmp_path, entry_points=False)
    assert "mine" in catalog.ids and "broken" not in catalog.ids
    messages = [f"{p.location}: {p.message}" for p in catalog.problems]
    assert any(m.startswith("bad.yaml: $.denominator: required key is missing") for m in messages)
    assert any(
        "'growth-assessed' is already defined by builtin:growth-assessed.yaml" in m
        for m in messages
    )


def test_the_measures_folder_comes_from_the_environment(tmp_path):
    (tmp_path / "env.yaml").write_text(
        "id: from-env\ntitle: t\ntype: count\ndenominator: {visit: {concepts: [9202]}}\n"
    )
    catalog = load_catalog(environ={"CARELOOP_MEASURES_DIR": str(tmp_path)}, entry_points=False)
    assert catalog.ids[-1] == "from-env"


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse.connect(f"duckdb://{tmp_path / 'w.duckdb'}") as wh:
        fixture.load(wh)
        yield wh


def test_unknown_concepts_warn_with_the_id_and_the_file(warehouse, tmp_path):
    warehouse.create_schema(tables=["concept"])
    warehouse.insert(
        "concept",
        pd.DataFrame(
            {
                "concept_id": [9202],
                "concept_name": ["Outpatient Visit"],
                "domain_id": "Visit",
                "vocabulary_id": "Visit",
                "concept_class_id": "Visit",
                "concept_code": "OP",
                "valid_start_date": date(1970, 1, 1),
                "valid_end_date": date(2099, 12, 31),
            }
        ),
    )
    path = tmp_path / "odd.yaml"
    path.write_text(
        "id: odd\ntitle: t\ntype: count\n"
        "denominator: {any_of: [visit: {concepts: [9202, 123456]}, "
        "observation: {concepts: [2000099999]}]}\n"
    )
    (check,) = validate_files([path], warehouse=warehouse)
    assert check.ok
    assert [w.split(" is not")[0] for w in check.warnings] == [
        "odd.yaml: concept 123456",
        "odd.yaml: concept 2000099999",
    ]


def test_a_missing_table_fails_its_measure_and_the_others_still_run(tmp_path):
    with Warehouse.connect(f"duckdb://{tmp_path / 'w.duckdb'}") as wh:
        fixture.load(wh, skip=("measurement",))
        wh.drop_table("measurement")
        run = run_measures(wh, builtin_measures(), start=date(2024, 1, 1), end=date(2024, 1, 31))
    failed = {f.measure_id for f in run.failures}
    assert failed == {"growth-assessed", "data-completeness", "pucai-median"}
    message = next(f.message for f in run.failures if f.measure_id == "growth-assessed")
    assert "growth-assessed" in message and "'measurement'" in message
    assert set(run.results.measure_id) == {m.id for m in builtin_measures()} - failed
    assert not run.ok


def test_periods_without_data_are_reported(warehouse):
    run = run_measures(
        warehouse, builtin_measures()[:2], start=date(2019, 1, 1), end=date(2019, 3, 31)
    )
    assert run.failures == ()
    assert any("no subjects in any period from 2019-01-01" in w for w in run.warnings)
    assert (run.results.denominator == 0).all()


def test_text_compared_with_a_number_column_is_refused():
    text = (
        "id: m\ntitle: t\ntype: count\ndenominator: {observation: {concepts: [1], value: {eq: x}}}"
    )
    assert _problems(text) == [
        "m.yaml: $.denominator.observation.value: value_as_number holds numbers; compare text "
        "with value_column: value_as_string"
    ]


def test_a_definition_reads_in_plain_language():
    from careloop.measures import describe_definition

    remission = next(m for m in builtin_measures() if m.id == "remission-prevalence")
    text = describe_definition(remission)
    assert text.startswith("Patients in clinical remission at their last visit. Counted: patients")
    assert "in the 12 months up to the end of each month" in text
    assert "the last recorded physician global assessment of IBD activity: quiescent (1)" in text
    assert text.endswith("Higher is better. The target is 80%.")
    for m in builtin_measures():
        assert m.title in describe_definition(m)


class _EntryPoint:
    """Stands in for an installed package's entry point."""

    def __init__(self, name, obj):
        self.name, self.value, self._obj = name, f"fake:{name}", obj

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def test_entry_points_add_measures_and_a_broken_one_is_reported(monkeypatch, tmp_path):
    from careloop.measures import catalog as catalog_module

    (tmp_path / "ep.yaml").write_text(
        "id: from-a-path\ntitle: t\ntype: count\ndenominator: {visit: {concepts: [9202]}}\n"
    )
    own = parse_yaml("id: from-code\ntitle: t\ntype: count\ndenominator: {visit: {concepts: [1]}}")
    points = [
        _EntryPoint("code", lambda: [own]),
        _EntryPoint("path", str(tmp_path / "ep.yaml")),
        _EntryPoint("broken", ImportError("no module named plugin")),
    ]
    monkeypatch.setattr(
        catalog_module.metadata,
        "entry_points",
        lambda group: points if group == "careloop.measures" else [],
    )
    catalog = load_catalog(environ={})
    assert catalog.ids[-2:] == ["from-code", "from-a-path"]
    assert catalog.get("from-code").source == "entry point code (fake:code)"
    assert [p.location for p in catalog.problems] == ["entry point broken (fake:broken)"]
    assert "ImportError: no module named plugin" in catalog.problems[0].message


def test_a_concept_table_of_local_concepts_only_does_not_flag_standard_ids(warehouse, tmp_path):
    # What the registry refresh writes: careloop-local concepts, no vocabulary.
    warehouse.create_schema(tables=["concept"])
    warehouse.insert(
        "concept",
        pd.DataFrame(
            {
                "concept_id": [2000000101, 2000012345],
                "concept_name": ["PGA", "A form field"],
                "domain_id": "Observation",
                "vocabulary_id": "careloop",
                "concept_class_id": "Field",
                "concept_code": ["pga", "x"],
                "valid_start_date": date(1970, 1, 1),
                "valid_end_date": date(2099, 12, 31),
            }
        ),
    )
    path = tmp_path / "ok.yaml"
    path.write_text(
        "id: ok\ntitle: t\ntype: count\n"
        "denominator: {any_of: [visit: {concepts: [9202]}, "
        "observation: {concepts: [2000012345, 2000099999]}]}\n"
    )
    (check,) = validate_files([path], warehouse=warehouse)
    assert [w.split(" is not")[0] for w in check.warnings] == ["ok.yaml: concept 2000099999"]
