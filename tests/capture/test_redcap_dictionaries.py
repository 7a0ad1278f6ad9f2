"""Every real REDCap dictionary in tests/data/redcap imports, exports and re-imports unchanged.

The files are public dictionaries nobody on this project wrote (their sources
and licences are in tests/data/redcap/SOURCE.md). For each one, every form is
exported as a REDCap dictionary CSV, careloop YAML and a FHIR Questionnaire
and read back: the version hash must not move. Files in ``refused/`` are real
rows REDCap itself refuses; careloop must refuse them too, saying where.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from careloop.capture.dictionary_files import read_dictionary, write_dictionary
from careloop.capture.forms import Dictionary, OtherFormField
from careloop.capture.forms_store import export_form, import_forms
from careloop.core.errors import ValidationFailed
from tests.foundation import build_installation, make_settings

DATA = Path(__file__).resolve().parents[1] / "data" / "redcap"
DICTIONARIES = sorted(DATA.glob("*.csv"))
FORMATS = ("redcap", "yaml", "questionnaire")


def test_the_benchmark_holds_at_least_fifteen_real_dictionaries_each_with_a_source():
    source = (DATA / "SOURCE.md").read_text(encoding="utf-8")
    assert len(DICTIONARIES) >= 15
    for path in [*DICTIONARIES, *sorted((DATA / "refused").glob("*.csv"))]:
        name = path.relative_to(DATA).as_posix()
        assert f"## {name}" in source or f"`{name}`" in source, name


def _others(dictionary: Dictionary, form_name: str) -> dict[str, OtherFormField]:
    """The dictionary's other forms, as the registry offers them to a one-form import."""
    return {
        f.name: OtherFormField(form.name, f)
        for form in dictionary.forms
        if form.name != form_name
        for f in form.fields
    }


@pytest.mark.parametrize("path", DICTIONARIES, ids=lambda p: p.name)
def test_a_real_dictionary_round_trips_through_every_format_to_the_same_version(path: Path):
    dictionary = read_dictionary(path)
    assert dictionary.forms
    for fmt in ("redcap", "yaml"):
        whole = read_dictionary(write_dictionary(dictionary, format=fmt), format=fmt)
        assert whole.content_hash() == dictionary.content_hash(), fmt
    for form in dictionary.forms:
        for fmt in FORMATS:
            text = write_dictionary(form, format=fmt)
            again = read_dictionary(
                text,
                format=fmt,
                name=f"{form.name}.{fmt}",
                other_fields=_others(dictionary, form.name),
            )
            assert again.forms[0].content_hash() == form.content_hash(), (form.name, fmt)


@pytest.mark.parametrize("path", DICTIONARIES, ids=lambda p: p.name)
def test_a_real_dictionary_imported_into_a_registry_exports_and_reimports_unchanged(
    path: Path, tmp_path: Path
):
    inst = build_installation(make_settings(tmp_path, None), with_users=False)
    try:
        registry, op = inst.registry, inst.operator
        first = {r.name: r.version for r in import_forms(registry, op, path)}
        assert len(first) == len(read_dictionary(path).forms)
        for name, version in first.items():
            for fmt in FORMATS:
                text = export_form(registry, op, name, fmt=fmt)
                (again,) = import_forms(registry, op, text.encode(), fmt=fmt, name=f"{name}.{fmt}")
                assert (again.name, again.version, again.new_version) == (name, version, False)
    finally:
        inst.registry.close()


def test_a_real_row_with_unescaped_quotes_is_refused_as_redcap_refuses_it():
    # Row 83 of BIH-CEI/rarelink's v2.0.5 dictionary: a quote inside a quoted label
    # ends the cell early, so the row has 19 cells and its Required Field column
    # holds branching logic; REDCap reads the columns by position and refuses it.
    path = DATA / "refused" / "rarelink_cdm_v2_0_5_row83.csv"
    with pytest.raises(ValidationFailed) as info:
        read_dictionary(path)
    found = {(d.location, d.message) for d in info.value.details}
    where = "rarelink_cdm_v2_0_5_row83.csv:2:snomedct_122869004_descr"
    assert (where, "row has 19 cells but the header has 18; check for an unquoted comma") in found
    assert any(loc == where and "required field must be 'y'" in msg for loc, msg in found)


def test_what_the_real_dictionaries_hold_is_read_as_redcap_means_it():
    rarelink = read_dictionary(DATA / "rarelink_cdm_v2_0_5_excerpt.csv")
    ontologies = {f.ontology for f in rarelink.fields() if f.ontology}
    assert {"SNOMEDCT", "ICD10CM", "MONDO", "ICF"} <= ontologies
    assert all("BioPortal" in n.message for n in rarelink.notes if "ontology" in n.message)
    assert "BIOPORTAL:ICF" in write_dictionary(rarelink, format="redcap")
    types = read_dictionary(DATA / "redcapr_validation-types-1.csv").form("form_1")
    assert types.field("f_signature").validation == "signature"
    assert not types.field("f_file_upload").stores_value
    assert types.field("f_sql").type.value == "text"
    ccc19 = read_dictionary(DATA / "redcap2omop_ccc19_excerpt.csv")
    demographics = ccc19.form("patient_demographics")
    assert dict(demographics.other_form_fields).keys() and set(
        dict(demographics.other_form_fields).values()
    ) == {"screening_form"}
    comments = read_dictionary(DATA / "bridge2ai_voice_logic_comments_excerpt.csv")
    logic = comments.forms[0].field("airway_surgery_reconstruction").branching_logic
    assert logic is not None and logic.source.startswith("# EARS, NOSE, or MOUTH")
    assert "#" not in logic.canonical


def test_the_entry_page_shows_a_real_dictionarys_file_and_time_fields_sensibly():
    from careloop.web.form_render import build_view, values_from_post

    form = read_dictionary(DATA / "redcapr_validation-types-1.csv").form("form_1")
    inputs = {i.name: i for i in build_view(form, {}).inputs}
    upload = inputs["f_file_upload"]
    assert upload.kind == "descriptive" and "does not store files" in upload.label
    # A browser's time input has no MM:SS and drops seconds: these are text inputs.
    assert inputs["v_time_mm_ss"].html_type == inputs["v_time_hh_mm_ss"].html_type == "text"
    assert inputs["v_time_hh_mm"].html_type == "time"
    assert "f_file_upload" not in values_from_post(form, {"f_file_upload": ["x.pdf"]})
