"""Logic that names another form's field: it loads, shows, exports, validates.

REDCap allows branching logic and calculations to read a field of another
instrument of the same record. These tests import such a dictionary into a
registry and check that every door still works for it, and that a stored
version that cannot be rebuilt blocks nothing but itself.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from careloop.capture import entry, read_redcap_dictionary, records_io, validate_response
from careloop.capture.forms import OtherFormField
from careloop.capture.forms_store import (
    export_form,
    form_of_version,
    get_form,
    import_forms,
    list_forms,
    load_form,
    other_form_values,
)
from careloop.core.errors import StoredFormUnreadable, ValidationFailed
from careloop.store.models.capture import FormDefinition, FormVersion
from careloop.trust.work import unit_of_work
from tests.capture.registry_helpers import principal
from tests.capture.test_redcap import dictionary

TWO_FORMS = dictionary(
    "xf_id,xf_demo,,text,Record ID,,,,,,,,,,,,,",
    'xf_sex,xf_demo,,radio,Sex,"1, Female | 2, Male",,,,,,,,,,,,',
    "xf_weight,xf_demo,,text,Weight (kg),,,number,,,,,,,,,,",
    "xf_preg,xf_visit,,yesno,Pregnant?,,,,,,,[xf_sex] = '1',y,,,,,",
    "xf_dose,xf_visit,,calc,Dose (mg),[xf_weight] * 2,,,,,,,,,,,,",
    "xf_note,xf_visit,,text,Note,,,,,,,,,,,,,",
)


def test_a_reference_to_another_form_is_recorded_with_that_form():
    d = read_redcap_dictionary(TWO_FORMS, name="two.csv")
    visit = d.form("xf_visit")
    assert visit.other_form_fields == (("xf_sex", "xf_demo"), ("xf_weight", "xf_demo"))
    assert d.form("xf_demo").other_form_fields == ()
    assert visit.to_dict()["other_form_fields"] == {"xf_sex": "xf_demo", "xf_weight": "xf_demo"}


def test_a_single_form_naming_a_field_nobody_has_is_still_an_error():
    one = dictionary("a,f,,text,A,,,,,,,[ghost] = '1',,,,,,")
    with pytest.raises(ValidationFailed) as info:
        read_redcap_dictionary(one, name="one.csv")
    assert "[ghost], which is not a field of this dictionary" in str(info.value)
    # The registry's other forms count: a known field resolves, to its form.
    form = read_redcap_dictionary(
        one, name="one.csv", other_fields={"ghost": OtherFormField("demo")}
    ).forms[0]
    assert form.other_form_fields == (("ghost", "demo"),)


def test_a_name_two_registered_forms_share_is_ambiguous():
    one = dictionary("a,f,,text,A,,,,,,,[record_id] = '1',,,,,,")
    with pytest.raises(ValidationFailed, match=r"several registered forms \(p1, p2\)"):
        read_redcap_dictionary(
            one,
            name="one.csv",
            other_fields={"record_id": OtherFormField("p1", also_in=("p2",))},
        )


def test_the_other_forms_answers_decide_branching_and_calculations_when_given():
    visit = read_redcap_dictionary(TWO_FORMS).form("xf_visit")
    given = {"xf_preg": "1"}
    male = validate_response(visit, given, context={"xf_sex": "2", "xf_weight": "70"})
    assert "xf_preg" in male.hidden and male.cleared == ("xf_preg",)
    assert male.values == {"xf_dose": "140"} and male.missing_context == ()
    female = validate_response(visit, {}, context={"xf_sex": "1", "xf_weight": ""})
    assert [(e.field, e.rule) for e in female.errors] == [("xf_preg", "required")]
    assert "xf_dose" not in female.values


def test_without_the_other_forms_answers_a_field_stays_shown_kept_and_not_required():
    # Nothing is known about xf_sex: careloop cannot tell whether xf_preg is
    # shown, so it keeps the answer rather than clear it, and does not demand it.
    visit = read_redcap_dictionary(TWO_FORMS).form("xf_visit")
    r = validate_response(visit, {"xf_preg": "1", "xf_note": "ok"})
    assert r.ok and r.hidden == frozenset() and r.cleared == ()
    assert r.values == {"xf_preg": "1", "xf_note": "ok"}  # the calc stays blank
    assert r.missing_context == ("xf_sex", "xf_weight")
    assert validate_response(visit, {}).ok


@pytest.fixture
def inst(installation):
    return installation


def test_a_cross_form_dictionary_loads_shows_exports_and_reimports_to_the_same_version(inst):
    registry, op = inst.registry, inst.operator
    imported = {r.name: r for r in import_forms(registry, op, TWO_FORMS.encode(), fmt="redcap")}
    stored = get_form(registry, op, "xf_visit")
    assert stored.form.other_form_fields == (("xf_sex", "xf_demo"), ("xf_weight", "xf_demo"))
    for fmt in ("redcap", "yaml", "questionnaire"):
        text = export_form(registry, op, "xf_visit", fmt=fmt)
        # The exported form alone names xf_sex; the registry's xf_demo resolves it.
        (again,) = import_forms(registry, op, text.encode(), fmt=fmt, name=f"visit.{fmt}")
        assert (again.name, again.version) == ("xf_visit", imported["xf_visit"].version), fmt
        assert not again.new_version
    assert {f.name: f.problem for f in list_forms(registry, op)}["xf_visit"] == ""


def test_a_stored_version_from_before_the_fix_loads_and_a_broken_one_blocks_only_itself(inst):
    registry, op = inst.registry, inst.operator
    import_forms(registry, op, TWO_FORMS.encode(), fmt="redcap")
    demo = get_form(registry, op, "xf_demo").definition()
    # What careloop stored before it recorded other forms' fields, and a
    # definition no current rule accepts (a field type that does not exist).
    old = {
        "name": "xf_old",
        "title": "Old",
        "patient_reported": False,
        "fields": [{"name": "xo_preg", "type": "yesno", "show_if": "[xf_sex] = '1'"}],
    }
    broken = {**old, "name": "xf_broken", "fields": [{"name": "xb", "type": "widget"}]}
    with registry.transaction() as session:
        for definition in (old, broken):
            row = FormDefinition(name=definition["name"], title="t", patient_reported=False)
            session.add(row)
            session.flush()
            version = FormVersion(
                form_id=row.id,
                version=f"{definition['name']:0<64}"[:64],
                definition=definition,
                source_format="yaml",
                created_by="test",
            )
            session.add(version)
            session.flush()
            row.current_version_id = version.id
    assert get_form(registry, op, "xf_old").form.field("xo_preg").branching_logic is not None
    with pytest.raises(StoredFormUnreadable) as info:
        get_form(registry, op, "xf_broken")
    assert "'xf_broken'" in info.value.message and "Import the form's data dictionary" in (
        info.value.message
    )
    assert info.value.code == "stored_form_unreadable"
    problems = {f.name: f.problem for f in list_forms(registry, op)}
    assert problems["xf_broken"].startswith("The stored form 'xf_broken'")
    assert problems["xf_demo"] == problems["xf_old"] == ""
    assert get_form(registry, op, "xf_demo").definition() == demo
    assert "xf_sex" in export_form(registry, op, "xf_demo", fmt="redcap")
    with registry.transaction() as session:
        rows = session.scalars(select(FormVersion)).all()
        loaded, refused = [], []
        for row in rows:
            try:
                loaded.append(form_of_version(row).name)
            except StoredFormUnreadable:
                refused.append(row.definition["name"])
    assert refused == ["xf_broken"] and {"xf_demo", "xf_visit", "xf_old"} <= set(loaded)


def test_the_other_forms_answers_are_those_of_the_same_patient_on_the_same_event_date(inst):
    registry, op = inst.registry, inst.operator
    import_forms(registry, op, TWO_FORMS.encode(), fmt="redcap")
    clinician = principal(inst, "clinician@A")
    patient_id = inst.patient_ids["A"][0]
    entry.create_response(
        registry,
        clinician,
        "xf_demo",
        patient_id=patient_id,
        event_date="2024-05-01",
        values={"xf_id": "1", "xf_sex": "2"},
        status="complete",
    )
    # Within the clinician's unit of work, as the entry layer would call it.
    with unit_of_work(registry, clinician, "record.write") as work:
        session = work.session
        _, _, visit = load_form(session, "xf_visit")
        same_day = other_form_values(
            session, visit, patient_id=patient_id, event_date=dt.date(2024, 5, 1)
        )
        other_day = other_form_values(
            session, visit, patient_id=patient_id, event_date=dt.date(2024, 5, 2)
        )
    # The demographics response exists: its empty weight is an answer (empty), not unknown.
    assert same_day == {"xf_sex": "2", "xf_weight": ""}
    assert other_day == {}
    r = validate_response(visit, {"xf_preg": "1"}, context=same_day)
    assert "xf_preg" in r.hidden and r.missing_context == ()


def test_the_cli_shows_the_forms_and_names_the_unreadable_one(inst):
    from careloop.cli.main import app

    data_dir = str(inst.settings.data_dir)
    if inst.settings.database_url:
        pytest.skip("the CLI opens the data directory's own registry")
    import_forms(inst.registry, inst.operator, TWO_FORMS.encode(), fmt="redcap")

    def run(*args: str):
        return CliRunner().invoke(app, [*args, "--data-dir", data_dir], env={"COLUMNS": "250"})

    shown = run("forms", "show", "xf_visit")
    assert shown.exit_code == 0 and "[xf_sex] = '1'" in shown.output
    exported = run("forms", "export", "xf_visit", "--format", "questionnaire")
    assert exported.exit_code == 0 and "xf_sex" in exported.output
    listed = run("forms", "list")
    assert listed.exit_code == 0 and "xf_visit" in listed.output


def test_entry_and_a_multi_form_export_read_the_other_forms_answers(inst):
    registry, op = inst.registry, inst.operator
    import_forms(registry, op, TWO_FORMS.encode(), fmt="redcap")
    clinician = principal(inst, "clinician@A")
    male, female = inst.patient_ids["A"]
    for patient_id, sex in ((male, "2"), (female, "1")):
        entry.create_response(
            registry,
            clinician,
            "xf_demo",
            patient_id=patient_id,
            event_date="2024-07-01",
            values={"xf_id": str(patient_id), "xf_sex": sex, "xf_weight": "40"},
            status="complete",
        )
    # Entry: the pregnancy question is hidden for the male patient (his answer is dropped,
    # as REDCap does with a hidden field) and the dose is calculated from his weight.
    saved = entry.create_response(
        registry,
        clinician,
        "xf_visit",
        patient_id=male,
        event_date="2024-07-01",
        values={"xf_preg": "1"},
        status="complete",
    )
    assert saved.values == {"xf_dose": "80"}
    # A REDCap export holding both forms side by side: the visit rows are checked with
    # the demographics columns of the same row.
    export = (
        b"record_id,xf_id,xf_sex,xf_weight,xf_demo_complete,xf_preg,xf_dose,xf_visit_complete\n"
        b"MRN-A-2,1,1,50,2,1,,2\n"
    )
    report = records_io.import_records(
        registry, clinician, "xf_visit", export, "A", event_date="2024-07-02"
    )
    assert report.created == 1
    stored = entry.list_responses(registry, clinician, "xf_visit", patient_id=female)
    assert stored[0].event_date.isoformat() == "2024-07-02"
    assert stored[0].values == {"xf_preg": "1", "xf_dose": "100"}


def test_an_import_says_which_values_branching_logic_kept_out(inst):
    registry, op = inst.registry, inst.operator
    import_forms(registry, op, TWO_FORMS.encode(), fmt="redcap")
    clinician = principal(inst, "clinician@A")
    # REDCap keeps a value in a field its logic hides (here: pregnant, for a male patient);
    # careloop does not store it, and says so rather than dropping it silently.
    export = (
        b"record_id,xf_sex,xf_preg,xf_note,xf_visit_complete\n"
        b"MRN-A-1,2,1,seen,2\n"
        b"MRN-A-2,1,0,seen,2\n"
    )
    report = records_io.import_records(
        registry, clinician, "xf_visit", export, "A", event_date="2024-09-01"
    )
    assert report.created == 2
    note = next(n for n in report.notes if "not stored" in n)
    assert note.startswith("1 value(s)") and "row 2: xf_preg" in note
