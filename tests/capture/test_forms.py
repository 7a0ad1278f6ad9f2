"""The form model: versions by content hash, the public API, purity, the examples."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

import careloop.capture
from careloop.capture import (
    FieldType,
    example_forms,
    parse_expression,
    questionnaire,
    read_forms_yaml,
    write_forms_yaml,
)
from careloop.capture.expressions import FUNCTIONS
from careloop.capture.forms import VALIDATION_TYPES, Field, Form, check_forms

SMALL = """
name: f
fields:
  - {name: a, type: radio, label: A, choices: {"1": Yes, "0": No}}
  - {name: b, type: text, show_if: "[a]='1'"}
"""


def test_the_public_api_is_sorted_and_importable():
    names = careloop.capture.__all__
    # isort's order, as ruff keeps it: CONSTANTS, then Classes, then functions.
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in names:
        assert hasattr(careloop.capture, name), name


def test_the_content_hash_is_stable_and_ignores_expression_spacing():
    one = read_forms_yaml(SMALL).form("f")
    two = read_forms_yaml(SMALL.replace("\"[a]='1'\"", "'[a] = \"1\"'")).form("f")
    assert one.content_hash() == two.content_hash()
    assert len(one.content_hash()) == 64 and one.version == one.content_hash()[:12]
    assert one == two


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.replace("label: A", "label: A2"),
        lambda t: t.replace('"0": No', '"0": Nope'),
        lambda t: t.replace("[a]='1'", "[a]='0'"),
        lambda t: t.replace("type: text", "type: notes"),
        lambda t: t.replace("name: b, ", "name: b, required: true, "),
    ],
)
def test_any_change_of_meaning_makes_a_new_version(change):
    before = read_forms_yaml(SMALL).form("f")
    after = read_forms_yaml(change(SMALL)).form("f")
    assert before.content_hash() != after.content_hash()


def test_the_hash_survives_a_round_trip_through_every_format():
    from careloop.capture import read_questionnaire, write_questionnaire

    form = example_forms().form("ibd_visit")
    assert read_forms_yaml(write_forms_yaml(form)).form("ibd_visit").content_hash() == (
        form.content_hash()
    )
    assert read_questionnaire(write_questionnaire(form)).content_hash() == form.content_hash()


def test_forms_are_frozen():
    form = example_forms().form("ibd_visit")
    with pytest.raises(dataclasses.FrozenInstanceError):
        form.name = "x"  # type: ignore[misc]


def test_a_missing_form_or_field_is_a_key_error_naming_what_exists():
    d = example_forms()
    with pytest.raises(KeyError, match="ibd_visit, ibd_symptoms_prom"):
        d.form("nope")
    with pytest.raises(KeyError):
        d.form("ibd_visit").field("nope")


def test_check_forms_catches_what_a_program_can_build_wrongly():
    bad = Form(
        "f",
        (
            Field("a", FieldType.RADIO),
            Field("b", FieldType.CALC),
            Field("c", FieldType.TEXT, calculation=parse_expression("1 + 1")),
            Field("d", FieldType.CALC, calculation=parse_expression("[d] + 1")),
            Field("e", FieldType.TEXT, validation="integer", min_value="2020-01-01"),
        ),
    )
    found = check_forms([bad], locate=lambda form, field: f"{form}.{field}")
    messages = {d.location: d.message for d in found}
    assert "needs choices" in messages["f.a"]
    assert "needs a calculation" in messages["f.b"]
    assert "cannot have a calculation" in messages["f.c"]
    assert "its own field" in messages["f.d"]
    assert "does not fit validation 'integer'" in messages["f.e"]


def test_the_example_registry_has_the_improvecarenow_style_content():
    d = example_forms()
    visit, prom = d.form("ibd_visit"), d.form("ibd_symptoms_prom")
    assert [c.label for c in visit.field("pga").choices] == [
        "Quiescent",
        "Mild",
        "Moderate",
        "Severe",
    ]
    assert visit.field("disease_type").code is not None
    assert visit.field("weight_kg").code == visit.field("weight_kg").code.__class__(
        "LOINC", "29463-7", "Body weight"
    )
    assert visit.field("bmi").type is FieldType.CALC
    assert prom.patient_reported and not visit.patient_reported
    assert {f.omop_domain for f in d.fields() if f.omop_domain} == {
        "Condition", "Measurement", "Observation", "Drug",
    }  # fmt: skip


def test_the_capture_package_imports_no_database_or_web_code():
    code = (
        "import sys, careloop.capture, careloop.capture.examples;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'fastapi', 'starlette', 'typer', 'alembic', 'psycopg')"
        " or m.startswith(('careloop.store', 'careloop.web', 'careloop.cli', 'careloop.trust'))];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


DOCS = Path(__file__).resolve().parents[2] / "docs" / "capture" / "forms.md"


def test_the_docs_name_every_type_function_and_extension():
    text = DOCS.read_text(encoding="utf-8")
    for t in FieldType:
        assert f"`{t.value}`" in text, t
    for v in VALIDATION_TYPES:
        assert v in text, v
    for name in FUNCTIONS:
        assert f"`{name}" in text, name
    source = "".join(
        f.read_text(encoding="utf-8") for f in Path(questionnaire.__file__).parent.glob("*.py")
    )
    for name in set(re.findall(r'_ext\(\s*"([a-z-]+)"', source)) | {"branching-logic"}:
        assert f"`{name}`" in text or f"…{name}" in text, name
