"""REDCap data dictionary CSV: real and generated dictionaries, round trips, bad input."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from careloop.capture import (
    REDCAP_COLUMNS,
    FieldType,
    read_redcap_dictionary,
    write_redcap_dictionary,
)
from careloop.capture.examples import example_file, example_forms
from careloop.core.errors import ValidationFailed

HEADER = ",".join(f'"{c}"' if "," in c else c for c in REDCAP_COLUMNS)


def dictionary(*rows: str) -> str:
    return HEADER + "\n" + "\n".join(rows) + "\n"


def problems(text: str | bytes, name: str = "dict.csv") -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as info:
        read_redcap_dictionary(text, name=name)
    return [(d.location, d.message) for d in info.value.details]


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# ---------------------------------------------------------------- real dictionaries


def test_a_real_public_dictionary_imports_with_its_branching_logic(redcap_data: Path):
    d = read_redcap_dictionary(redcap_data / "lifedata_redcap_DataDictionary.csv")
    form = d.form("my_first_instrument")
    assert len(form.fields) == 12
    assert form.field("timeoffact").validation == "datetime_seconds_ymd"
    assert form.field("typeoffact").choice_codes == ("1", "2", "3")
    logic = form.field("weightvalue").branching_logic
    assert logic is not None and logic.referenced_fields() == {"typeoffact"}


def test_a_real_dictionary_exports_unchanged_in_meaning(redcap_data: Path):
    path = redcap_data / "lifedata_redcap_DataDictionary.csv"
    d = read_redcap_dictionary(path)
    again = write_redcap_dictionary(d)
    assert read_redcap_dictionary(again) == d
    original = cells(path.read_text())
    exported = cells(again)
    # The old export lacks the Field Annotation column; every other cell is identical.
    assert [row[:17] for row in exported] == original
    assert exported[0] == list(REDCAP_COLUMNS)


def test_the_large_generated_dictionary_round_trips(large_dictionary_csv: str):
    d = read_redcap_dictionary(large_dictionary_csv)
    assert len(list(d.fields())) == 550 and len(d.forms) == 10
    assert sum(f.branching_logic is not None for f in d.fields()) > 250
    # File fields store nothing; the real dictionaries in tests/data/redcap cover them.
    assert {f.type for f in d.fields()} == set(FieldType) - {FieldType.FILE}
    text = write_redcap_dictionary(d)
    assert read_redcap_dictionary(text) == d
    # Cell by cell: REDCap's export of what we wrote is what we read.
    assert cells(text) == cells(large_dictionary_csv)


def test_the_example_csv_is_the_export_of_the_example_yaml():
    expected = write_redcap_dictionary(example_forms("yaml"))
    assert example_file("redcap").decode("utf-8") == expected


def test_the_example_csv_keeps_codes_through_annotation_tags():
    d = example_forms("redcap")
    height = d.form("ibd_visit").field("height_cm")
    assert height.code is not None and height.code.code == "8302-2"
    assert height.omop_domain == "Measurement" and height.unit == "cm"
    assert height.annotation == ""
    assert [f.fields for f in d.forms] == [f.fields for f in example_forms("yaml").forms]


def test_tags_can_be_left_out_of_an_export():
    text = write_redcap_dictionary(example_forms(), careloop_tags=False)
    assert "@CARELOOP" not in text
    assert read_redcap_dictionary(text).form("ibd_visit").field("height_cm").code is None


def test_api_style_snake_case_headers_are_read_too():
    text = (
        "field_name,form_name,section_header,field_type,field_label,"
        "select_choices_or_calculations,field_note,text_validation_type_or_show_slider_number,"
        "text_validation_min,text_validation_max,identifier,branching_logic,required_field,"
        "custom_alignment,question_number,matrix_group_name,matrix_ranking,field_annotation\n"
        "record_id,demo,,text,ID,,,,,,,,,,,,,\n"
        "age,demo,,text,Age,,,integer,0,120,,,y,,,,,\n"
    )
    d = read_redcap_dictionary(text)
    assert d.form("demo").field("age").required


def test_every_field_type_and_slider_settings_are_kept():
    text = dictionary(
        "a,f,,text,A,,,,,,,,,,,,,",
        "b,f,,notes,B,,,,,,,,,,,,,",
        'c,f,,dropdown,C,"1, x | 2, y",,autocomplete,,,,,,,,,,',
        'd,f,,radio,D,"1, x | 2, y",,,,,,,,RH,,,,',
        'e,f,,checkbox,E,"1, x | -1, none",,,,,,,,,,,,',
        "g,f,,yesno,G,,,,,,,,,,,,,",
        "h,f,,truefalse,H,,,,,,,,,,,,,",
        "i,f,,calc,I,[a] + 1,,,,,,,,,,,,",
        "j,f,,descriptive,<b>J</b>,,,,,,,,,,,,,",
        'k,f,,slider,K,"Low | | High",,number,0,10,,,,,,,,',
    )
    form = read_redcap_dictionary(text).form("f")
    assert [f.type.value for f in form.fields] == [
        "text", "notes", "dropdown", "radio", "checkbox", "yesno", "truefalse",
        "calc", "descriptive", "slider",
    ]  # fmt: skip
    slider = form.field("k")
    assert slider.slider_labels == ("Low", "", "High") and slider.slider_show_number
    assert form.field("c").validation == "autocomplete"
    assert form.field("e").choice_codes == ("1", "-1")
    assert read_redcap_dictionary(write_redcap_dictionary(form)).form("f") == form


def test_crlf_and_a_byte_order_mark_are_accepted():
    text = dictionary("a,f,,text,A,,,,,,,,,,,,,").replace("\n", "\r\n")
    d = read_redcap_dictionary(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert d.form_names == ("f",)


# ---------------------------------------------------------------- bad input


def test_duplicate_field_names_are_reported_with_their_row():
    found = problems(dictionary("a,f,,text,A,,,,,,,,,,,,,", "a,g,,text,A again,,,,,,,,,,,,,"))
    assert found == [
        (
            "dict.csv:3:a",
            "duplicate field name 'a' (first on row 2); names must be unique across the whole "
            "dictionary",
        )
    ]


def test_branching_logic_naming_a_missing_field_is_an_error():
    found = problems(dictionary("a,f,,text,A,,,,,,,[nope] = '1',,,,,,"))
    assert found == [
        (
            "dict.csv:2:a",
            "branching logic refers to [nope], which is not a field of this dictionary",
        )
    ]


def test_checkbox_references_must_name_an_existing_option():
    found = problems(
        dictionary(
            'cb,f,,checkbox,CB,"1, x | 2, y",,,,,,,,,,,,',
            "a,f,,text,A,,,,,,,[cb(3)] = '1',,,,,,",
            "b,f,,text,B,,,,,,,[cb] = '1',,,,,,",
            "c,f,,text,C,,,,,,,[a(1)] = '1',,,,,,",
        )
    )
    messages = dict(found)
    assert "has no option '3'" in messages["dict.csv:3:a"]
    assert "is a checkbox; name one option" in messages["dict.csv:4:b"]
    assert "not a checkbox" in messages["dict.csv:5:c"]


@pytest.mark.parametrize(
    ("choices", "fragment"),
    [
        ("Yes | No", "has no code"),
        ("1, Yes || 2, No", "empty choice"),
        ("1, Yes | 1, No", "used twice"),
        ("1 2, Yes", "not valid"),
    ],
)
def test_bad_choice_strings_name_the_row_and_say_how_to_write_them(choices, fragment):
    found = problems(dictionary(f'a,f,,radio,A,"{choices}",,,,,,,,,,,,'))
    assert len(found) == 1
    assert found[0][0] == "dict.csv:2:a"
    assert "bad choices" in found[0][1] and fragment in found[0][1]


def test_unknown_field_and_validation_types_are_errors_not_dropped():
    found = problems(
        dictionary(
            "a,f,,select,A,,,,,,,,,,,,,",
            "b,f,,text,B,,,number_decimal_comma,,,,,,,,,,",
            "c,f,,textbox,C,,,,,,,,,,,,,",
        )
    )
    messages = dict(found)
    assert "unknown field type 'select'" in messages["dict.csv:2:a"]
    assert "REDCap's dictionary calls it dropdown" in messages["dict.csv:2:a"]
    assert "unknown validation type 'number_decimal_comma'" in messages["dict.csv:3:b"]
    assert "supported types are text, notes" in messages["dict.csv:4:c"]


def test_calculation_syntax_errors_point_at_the_row_and_column():
    found = problems(dictionary("a,f,,text,A,,,,,,,,,,,,,", "b,f,,calc,B,[a] + * 2,,,,,,,,,,,,"))
    assert found[0][0] == "dict.csv:3:b"
    assert "calculation syntax error" in found[0][1] and "column 7" in found[0][1]


def test_every_problem_in_a_file_is_reported_at_once():
    found = problems(
        dictionary(
            "Bad Name,f,,text,A,,,,,,,,,,,,,",
            "b,f,,radio,B,,,,,,,,,,,,,",
            "c,f,,text,C,,,integer,zero,,,,,,,,,",
            "d,f,,yesno,D,,,integer,,,,,,,,,,",
            "e,f,,text,E,,,,,,,,maybe,,,,,",
            "g,f,,text,G,,,,,,,,,XX,,,,",
        )
    )
    locations = [loc for loc, _ in found]
    assert locations == [
        "dict.csv:2:Bad Name",
        "dict.csv:3:b",
        "dict.csv:4:c",
        "dict.csv:5:d",
        "dict.csv:6:e",
        "dict.csv:7:g",
    ]


def test_a_wrong_header_lists_every_unknown_and_missing_column():
    text = "Variable Name,Form Name,Field Type,Colour\na,f,text,red\n"
    found = problems(text)
    assert ("dict.csv:1:column 1", found[0][1]) == found[0] and "unknown header" in found[0][1]
    assert any("missing header 'Variable / Field Name'" in m for _, m in found)
    assert any("missing header 'Field Label'" in m for _, m in found)
    assert not any("Field Annotation" in m and "missing" in m for _, m in found)


def test_a_semicolon_separated_file_gets_a_hint():
    found = problems(HEADER.replace(",", ";") + "\n")
    assert any("';' as separator" in m for _, m in found)


def test_a_windows_1252_file_is_read_with_a_note_quoting_its_accented_text():
    text = dictionary("a,f,,text,Café – “quoted”,,,,,,,,,,,,,").encode("cp1252")
    d = read_redcap_dictionary(text, name="dict.csv")
    assert d.form("f").field("a").label == "Café – “quoted”"
    assert d == read_redcap_dictionary(text.decode("cp1252"))
    (note,) = d.notes
    assert note.location == "dict.csv:2"
    assert "Windows-1252" in note.message and "Café" in note.message
    assert "CSV UTF-8" in note.message


def test_a_file_in_neither_utf8_nor_windows_1252_is_refused_with_the_row_and_a_fix():
    # 0x81 is undefined in Windows-1252 and not valid UTF-8 here.
    text = dictionary("a,f,,text,A,,,,,,,,,,,,,").encode("ascii") + b"b,f,,text,\x81,,,,,,,,,,,,,\n"
    found = problems(text)
    assert found[0][0] == "dict.csv:3"
    assert "not valid UTF-8" in found[0][1] and "iconv" in found[0][1]


def test_a_utf16_file_is_refused_with_a_fix():
    found = problems(dictionary("a,f,,text,A,,,,,,,,,,,,,").encode("utf-16"))
    assert "UTF-16" in found[0][1]


def test_forms_must_be_contiguous_as_redcap_requires():
    found = problems(
        dictionary(
            "a,f,,text,A,,,,,,,,,,,,,", "b,g,,text,B,,,,,,,,,,,,,", "c,f,,text,C,,,,,,,,,,,,,"
        )
    )
    assert found == [
        ("dict.csv:4:c", "the fields of form 'f' are not together; REDCap needs each form's rows "
         "to be contiguous")
    ]  # fmt: skip


def test_an_empty_file_or_header_only_file_is_an_error():
    with pytest.raises(ValidationFailed, match="is empty"):
        read_redcap_dictionary("", name="dict.csv")
    with pytest.raises(ValidationFailed, match="no fields"):
        read_redcap_dictionary(HEADER + "\n", name="dict.csv")


def test_a_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValidationFailed, match="Cannot read"):
        read_redcap_dictionary(tmp_path / "nope.csv")


def test_a_real_multi_form_excerpt_round_trips_cell_by_cell(redcap_data: Path):
    path = redcap_data / "bridge2ai_voice_excerpt.csv"
    d = read_redcap_dictionary(path)
    assert len(d.forms) == 5 and len(list(d.fields())) == 44
    text = write_redcap_dictionary(d)
    assert cells(text) == cells(path.read_text(encoding="utf-8"))
    assert read_redcap_dictionary(text) == d


def test_real_world_logic_idioms_evaluate_as_redcap_does(redcap_data: Path):
    from careloop.capture import validate_response

    form = read_redcap_dictionary(redcap_data / "bridge2ai_voice_excerpt.csv").form(
        "q_generic_demographics"
    )
    r = validate_response(form, {"country": "2", "gender_identity": "other", "race": ["1", "5"]})
    assert "other_gender_identity" not in r.hidden
    assert "specify_gender_identity" in r.hidden
    assert "native_american_race" not in r.hidden and "pacific_islander_race" in r.hidden
    r = validate_response(form, {"country": "1", "gender_identity": "female"})
    assert "specify_gender_identity" not in r.hidden
    basic = read_redcap_dictionary(redcap_data / "bridge2ai_voice_excerpt.csv").form(
        "subjectparticipant_basic_information"
    )
    r = validate_response(basic, {"consent_status": "3", "consent_method": "paper"})
    assert r.cleared == ("consent_method",)
    assert "withdrawn_consent_date" not in r.hidden
    assert {e.field for e in r.errors} == {
        "selected_language", "is_feasibility_participant", "enrolled",
        "enrollment_institution", "researcher_email",
    }  # fmt: skip


def test_a_real_file_upload_field_is_kept_as_a_reference_only_field_that_stores_nothing():
    # A row of eipm/bridge2ai-redcap's DataDictionary.csv (see tests/data/redcap/SOURCE.md).
    row = (
        "paper_consent_pdf_all_sites,bridge2ai_paper_consent_all_sites_english,,file,"
        '"Paper Consent PDF - All Sites",,,,,,,,y,,,,,'
    )
    from careloop.capture import validate_response

    form = read_redcap_dictionary(dictionary(row)).forms[0]
    field = form.field("paper_consent_pdf_all_sites")
    assert field.type is FieldType.FILE and field.required and not field.stores_value
    assert read_redcap_dictionary(write_redcap_dictionary(form)).forms[0] == form
    # A REDCap record export holds the file's name; careloop keeps no file, so
    # the value is not stored, and a required file field never blocks a response.
    r = validate_response(form, {"paper_consent_pdf_all_sites": "consent.pdf"})
    assert r.ok and r.values == {} and r.ignored == ("paper_consent_pdf_all_sites",)


# ---------------------------------------------------------------- REDCap as REDCap users have it


def test_extra_columns_are_ignored_with_a_note_not_an_error():
    text = HEADER + ",Reviewer notes,\n" + "a,f,,text,A,,,,,,,,,,,,,,checked by JS,\n"
    d = read_redcap_dictionary(text, name="dict.csv")
    assert d.form("f").field_names == ("a",)
    notes = [(n.location, n.message) for n in d.notes]
    assert ("dict.csv:1:column 19", "column 'Reviewer notes' is not a REDCap dictionary column; "
            "ignored") in notes  # fmt: skip
    assert any(loc == "dict.csv:1:column 20" and "(no heading)" in m for loc, m in notes)


def test_sql_and_bioportal_fields_are_text_with_a_note_and_the_ontology_is_kept():
    d = read_redcap_dictionary(
        dictionary(
            'q,f,,sql,Pick,"select value, label from redcap_data",,,,,,,,,,,,',
            "drug,f,,text,Drug,BIOPORTAL:RXNORM,,,,,,,,,,,,",
        ),
        name="dict.csv",
    )
    form = d.form("f")
    assert form.field("q").type is FieldType.TEXT and form.field("q").choices == ()
    assert form.field("drug").ontology == "RXNORM" and form.field("drug").type is FieldType.TEXT
    assert [n.location for n in d.notes] == ["dict.csv:2:q", "dict.csv:3:drug"]
    assert "query on the REDCap server" in d.notes[0].message
    assert "BioPortal ontology field (RXNORM)" in d.notes[1].message
    assert cells(write_redcap_dictionary(form))[2][5] == "BIOPORTAL:RXNORM"


def test_choice_codes_with_inner_hyphens_and_letters_and_empty_labels_are_read():
    form = read_redcap_dictionary(
        dictionary(
            'drug,f,,radio,Drug,"RXCUI-2393, Warfarin | in-progress, In progress | 3,",,,,,,,,,,,,',
            "why,f,,text,Why,,,,,,,[drug] = 'RXCUI-2393',,,,,,",
        )
    ).form("f")
    assert form.field("drug").choice_codes == ("RXCUI-2393", "in-progress", "3")
    assert form.field("drug").choices[2].label == ""
    assert read_redcap_dictionary(write_redcap_dictionary(form)).form("f") == form


def test_a_date_bound_a_spreadsheet_rewrote_is_read_back_as_redcap_reads_it():
    # REDCap's feature-test dictionary "Data Dictionary File 2.csv" (redcap_rsvc) holds
    # min 8/1/23 1:01 for a datetime_ymd field; REDCap's test uploads it successfully.
    d = read_redcap_dictionary(
        dictionary('dt,f,,text,When,,,datetime_ymd,"8/1/23 1:01","8/31/23 1:59",,,,,,,,'),
        name="dict.csv",
    )
    field = d.form("f").field("dt")
    assert (field.min_value, field.max_value) == ("2023-08-01 01:01", "2023-08-31 01:59")
    assert "month/day/year" in d.notes[0].message and "8/1/23 1:01" in d.notes[0].message


def test_a_leftover_choices_cell_on_a_text_field_is_ignored_with_a_note():
    # As in biggeeves/redcap_regression_test's dictionary, which REDCap exported.
    d = read_redcap_dictionary(
        dictionary("""at_setvalue,f,,text,@SETVALUE,"1, @SETVALUE='2007-12-25'",,,,,,,,,,,,"""),
        name="dict.csv",
    )
    assert d.form("f").field("at_setvalue").choices == ()
    assert "does not use the choices column" in d.notes[0].message


def test_every_standard_redcap_validation_type_is_read():
    from careloop.capture.forms import VALIDATION_TYPES

    rows = [
        f"v{i},f,,text,V,,,{v},,,,,,,,,,"
        for i, v in enumerate(sorted(VALIDATION_TYPES - {"autocomplete", "signature"}))
    ]
    rows.append("n,f,,text,N,,,number_3dp_comma_decimal,,,,,,,,,,")
    rows.append("old,f,,text,Old,,,int,,,,,,,,,,")
    form = read_redcap_dictionary(dictionary(*rows)).form("f")
    assert form.field("old").validation == "integer"
    assert form.field("n").validation == "number_3dp_comma_decimal"
    assert len(form.fields) == len(VALIDATION_TYPES) - 2 + 2


def test_a_dictionary_cell_past_the_csv_reader_limit_is_a_located_error_not_a_crash():
    label = "x" * 140_000
    ((location, message),) = problems(
        dictionary("record_id,f,,text,Record,,,,,,,,,,,,,", f"a,f,,text,{label},,,,,,,,,,,,,")
    )
    assert location == "dict.csv:3"
    assert "longer than 131,072 characters" in message
