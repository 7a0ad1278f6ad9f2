"""Forms in the registry: content-addressed versions; old responses keep theirs.

Forms are installation-wide, so each test imports the example under its own
form names (``<prefix>_visit``, ``<prefix>_prom``) into the module's
installation, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from careloop.capture import entry, example_file, read_forms_yaml, read_questionnaire
from careloop.capture.forms_store import export_form, get_form, import_forms, list_forms
from careloop.core.errors import NotFound, PermissionDenied, ValidationFailed
from tests.capture.registry_helpers import PROM, VISIT, principal, prom_answers


@pytest.fixture
def inst(installation):
    return installation


def _example(prefix: str) -> bytes:
    text = example_file("yaml").decode()
    text = text.replace(f"name: {VISIT}\n", f"name: {prefix}_visit\n")
    text = text.replace(f"name: {PROM}\n", f"name: {prefix}_prom\n")
    return text.encode()


def _changed_yaml(prefix: str) -> bytes:
    # Same forms, one PROM question reworded: a change of meaning, so a new version.
    text = _example(prefix).decode()
    text = text.replace(
        "label: How much tummy pain have you had?", "label: How much belly pain have you had?", 1
    )
    assert "belly pain" in text
    return text.encode()


def test_the_same_content_adds_no_version_and_a_change_adds_one(inst):
    registry, op = inst.registry, inst.operator
    first = import_forms(registry, op, _example("v1"), fmt="yaml")
    assert [(f.name, f.new_form, f.new_version) for f in first] == [
        ("v1_visit", True, True),
        ("v1_prom", True, True),
    ]
    again = import_forms(registry, op, _example("v1"), fmt="yaml")
    assert [f.new_version for f in again] == [False, False]
    changed = import_forms(registry, op, _changed_yaml("v1"), fmt="yaml")
    assert [(f.name, f.new_version) for f in changed] == [("v1_visit", False), ("v1_prom", True)]
    summaries = {f.name: f for f in list_forms(registry, op)}
    assert summaries["v1_prom"].versions == 2 and summaries["v1_visit"].versions == 1
    assert summaries["v1_prom"].version == changed[1].version != first[1].version


def test_old_responses_stay_readable_and_editable_against_their_version(inst):
    registry, op = inst.registry, inst.operator
    first = import_forms(registry, op, _example("v2"), fmt="yaml")[1].version
    patient = principal(inst, "patient@A")
    own = inst.patient_user_of["patient@A"]
    old = entry.create_response(
        registry,
        patient,
        "v2_prom",
        patient_id=own,
        event_date="2024-01-01",
        values=prom_answers("2024-01-01"),
        status="complete",
    )
    second = import_forms(registry, op, _changed_yaml("v2"), fmt="yaml")[1].version
    new = entry.create_response(
        registry,
        patient,
        "v2_prom",
        patient_id=own,
        event_date="2024-02-01",
        values=prom_answers("2024-02-01"),
        status="complete",
    )
    assert (old.form_version, new.form_version) == (first, second)
    reread = entry.get_response(registry, patient, old.id)
    assert reread.form_version == first and reread.values == old.values
    view, form = entry.get_response_form(registry, patient, old.id)
    assert form.content_hash() == first and view.id == old.id
    assert form.field("tummy_pain").label == "How much tummy pain have you had?"
    edited = entry.update_response(
        registry,
        patient,
        old.id,
        values=prom_answers("2024-01-01", tiredness="2"),
        reason="I ticked the wrong box",
    )
    assert edited.form_version == first and edited.values["tiredness"] == "2"
    # Going back to the first definition makes it current again without a third version.
    back = import_forms(registry, op, _example("v2"), fmt="yaml")[1]
    assert back.version == first and not back.new_version
    assert get_form(registry, op, "v2_prom").version == first
    assert len(get_form(registry, op, "v2_prom").versions) == 2
    older = get_form(registry, op, "v2_prom", version=second[:12])
    assert not older.current
    assert older.form.field("tummy_pain").label == "How much belly pain have you had?"


def test_forms_export_in_each_format_and_read_back_to_the_same_version(inst):
    registry, op = inst.registry, inst.operator
    import_forms(registry, op, _example("v3"), fmt="yaml")
    version = get_form(registry, op, "v3_visit").version
    yaml_text = export_form(registry, op, "v3_visit", fmt="yaml")
    assert read_forms_yaml(yaml_text).form("v3_visit").content_hash() == version
    questionnaire = export_form(registry, op, "v3_visit", fmt="questionnaire")
    assert read_questionnaire(questionnaire).name == "v3_visit"
    assert export_form(registry, op, "v3_visit", fmt="redcap").startswith("Variable / Field Name")


def test_an_invalid_dictionary_stores_nothing_and_only_admins_import(inst):
    registry = inst.registry
    broken = _example("v4").decode().replace("[disease_type] = '2'", "[no_such] = '2'", 1)
    with pytest.raises(ValidationFailed) as caught:
        import_forms(registry, inst.operator, broken.encode(), fmt="yaml", name="ibd.yaml")
    assert any("no_such" in d.message for d in caught.value.details)
    assert not any(f.name.startswith("v4_") for f in list_forms(registry, inst.operator))
    with pytest.raises(PermissionDenied):
        import_forms(registry, principal(inst, "site_lead@A"), _example("v4"), fmt="yaml")
    assert import_forms(registry, principal(inst, "admin"), _example("v4"), fmt="yaml")
    with pytest.raises(NotFound, match="v4_visit"):
        get_form(registry, principal(inst, "clinician@A"), "no_such_form")
