"""Validating one response: types, ranges, choices, required-when-shown, calculations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careloop.capture import example_forms, read_forms_yaml, validate_response
from careloop.capture.forms import Form
from careloop.core.errors import ValidationFailed

NOW = dt.datetime(2024, 6, 15, 9, 30)

FORM = read_forms_yaml(
    """
forms:
  - name: t
    fields:
      - {name: n_int, type: text, validation: integer, min: "0", max: "120"}
      - {name: n_num, type: text, validation: number}
      - {name: n_2dp, type: text, validation: number_2dp}
      - {name: d, type: text, validation: date_dmy, min: "2020-01-01", max: today}
      - {name: dtm, type: text, validation: datetime_ymd, max: now}
      - {name: dts, type: text, validation: datetime_seconds_mdy}
      - {name: tm, type: text, validation: time, min: "08:00"}
      - {name: mail, type: text, validation: email}
      - {name: tel, type: text, validation: phone}
      - {name: zip, type: text, validation: zipcode}
      - {name: free, type: notes}
      - {name: pick, type: dropdown, choices: {"1": One, "2": Two}}
      - {name: rad, type: radio, choices: {a: A, b: B}}
      - {name: cb, type: checkbox, choices: {"1": x, "2": y, "-1": none}}
      - {name: yn, type: yesno}
      - {name: tf, type: truefalse}
      - {name: sl, type: slider}
      - {name: info, type: descriptive, label: Just text}
      - {name: total, type: calc, calculation: "[n_int] + [n_num]"}
""",
    name="t.yaml",
).form("t")


def check(values: dict[str, object], form: Form = FORM, **kw: object):
    return validate_response(form, values, now=NOW, **kw)  # type: ignore[arg-type]


def rules(result) -> dict[str, str]:
    return {e.field: e.rule for e in result.errors}


def test_well_formed_values_are_stored_in_redcap_form():
    r = check({
        "n_int": "+007", "n_num": "1.50", "n_2dp": "3.14", "d": "2024-02-29",
        "dtm": "2024-06-15T09:00", "dts": "2024-01-01 10:11:12", "tm": "08:00",
        "mail": "a.b@example.org", "tel": "+44 (0)20 7946 0000", "zip": "12345-6789",
        "free": "  line one\nline two ", "pick": "2", "rad": "b", "cb": ["2", "1"],
        "yn": "1", "tf": "0", "sl": "55",
    })  # fmt: skip
    assert r.ok, r.errors
    assert r.values["n_int"] == "7"
    assert r.values["n_num"] == "1.50"
    assert r.values["dtm"] == "2024-06-15 09:00"
    assert r.values["free"] == "line one\nline two"
    assert r.values["cb"] == ("1", "2")
    assert r.values["total"] == "8.5"


def test_python_values_from_an_api_are_accepted():
    r = check(
        {
            "n_int": 5,
            "n_num": Decimal("2.5"),
            "d": dt.date(2024, 1, 2),
            "yn": True,
            "dtm": dt.datetime(2024, 6, 1, 8, 5),
            "tm": dt.time(9, 15),
            "cb": ("-1",),
        }
    )
    assert r.ok, r.errors
    assert r.values["d"] == "2024-01-02" and r.values["yn"] == "1" and r.values["tm"] == "09:15"
    assert r.values["total"] == "7.5"


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("n_int", "1.5", "type"),
        ("n_int", "12a", "type"),
        ("n_int", "-1", "min"),
        ("n_int", "121", "max"),
        ("n_num", "1,5", "type"),
        ("n_2dp", "3.1", "type"),
        ("d", "12/31/2023", "type"),
        ("d", "2023-02-29", "type"),
        ("d", "2019-12-31", "min"),
        ("d", "2024-06-16", "max"),
        ("dtm", "2024-06-15 09:31", "max"),
        ("dtm", "2024-06-15", "type"),
        ("dts", "2024-01-01 10:11", "type"),
        ("tm", "07:59", "min"),
        ("tm", "24:00", "type"),
        ("mail", "not-an-email", "type"),
        ("tel", "12-34", "type"),
        ("zip", "1234", "type"),
        ("pick", "3", "choice"),
        ("rad", "A", "choice"),
        ("cb", ["1", "9"], "choice"),
        ("yn", "yes", "choice"),
        ("sl", "101", "max"),
        ("sl", "4.5", "type"),
        ("info", "something", "no_value"),
        ("nope", "1", "unknown_field"),
    ],
)
def test_each_bad_value_names_the_field_the_value_and_the_rule(field, value, rule):
    r = check({field: value})
    assert [(e.field, e.value, e.rule) for e in r.errors] == [(field, value, rule)]
    assert r.errors[0].message


def test_all_errors_are_returned_at_once_in_form_order():
    r = check({"zip": "x", "n_int": "x", "pick": "9", "mystery": "1"})
    assert [e.field for e in r.errors] == ["n_int", "zip", "pick", "mystery"]
    with pytest.raises(ValidationFailed) as info:
        r.raise_for_errors(location="visits.csv:7", form="t")
    assert [d.location for d in info.value.details] == [
        "visits.csv:7:n_int", "visits.csv:7:zip", "visits.csv:7:pick", "visits.csv:7:mystery",
    ]  # fmt: skip
    assert info.value.details[0].value == "x"
    assert "[rule: type]" in info.value.details[0].message


def test_empty_values_are_not_errors_unless_required():
    assert check({"n_int": "", "pick": None, "cb": []}).ok


def test_calc_values_given_are_ignored_and_recomputed():
    r = check({"n_int": "1", "n_num": "2", "total": "999"})
    assert r.values["total"] == "3"


def test_a_calc_is_blank_while_an_input_is_missing():
    assert "total" not in check({"n_int": "1"}).values


def test_checkbox_export_columns_are_read():
    r = check({"cb___1": "1", "cb___2": "0", "cb____1": "1"})
    assert r.values["cb"] == ("1", "-1")
    bad = check({"cb___1": "yes"})
    assert [(e.field, e.rule) for e in bad.errors] == [("cb", "type")]


VISIT = example_forms().form("ibd_visit")
BASE = {
    "visit_date": "2024-06-01", "visit_type": "1", "pga": "1", "height_cm": "150.0",
    "weight_kg": "45.0", "steroid_use": "0", "nutrition": "1",
}  # fmt: skip


def test_required_fields_are_required_only_when_shown():
    r = check({**BASE, "disease_type": "1"}, VISIT)
    required = {e.field for e in r.errors if e.rule == "required"}
    assert required == {
        "shpcdai_pain", "shpcdai_stools", "shpcdai_wellbeing", "shpcdai_weight",
        "shpcdai_perirectal", "shpcdai_eim",
    }  # fmt: skip
    assert "pucai_pain" in r.hidden and "shpcdai_pain" not in r.hidden


def test_a_required_checkbox_dependant_appears_when_its_option_is_ticked():
    r = check({**BASE, "disease_type": "1", "medications": ["9"]}, VISIT)
    assert "medications_other" in {e.field for e in r.errors if e.rule == "required"}
    r = check({**BASE, "disease_type": "1", "medications": ["1"]}, VISIT)
    assert "medications_other" not in {e.field for e in r.errors}


def test_values_of_hidden_fields_are_cleared_or_flagged():
    values = {**BASE, "disease_type": "2", "shpcdai_pain": "1", "pucai_pain": "5"}
    cleared = check(values, VISIT)
    assert cleared.cleared == ("shpcdai_pain",)
    assert "shpcdai_pain" not in cleared.values
    flagged = check(values, VISIT, hidden="flag")
    assert ("shpcdai_pain", "hidden") in [(e.field, e.rule) for e in flagged.errors]


def test_calculated_fields_of_the_example_are_computed():
    pucai = {
        "pucai_pain": "10",
        "pucai_bleeding": "20",
        "pucai_consistency": "10",
        "pucai_stools": "10",
        "pucai_nocturnal": "10",
        "pucai_activity": "5",
    }
    r = check({**BASE, "disease_type": "2", **pucai}, VISIT)
    assert r.ok, r.errors
    assert r.values["pucai_total"] == "65"
    assert r.values["pucai_category"] == "3"
    assert r.values["bmi"] == "20"
    crohn = {
        "shpcdai_pain": "1",
        "shpcdai_stools": "1",
        "shpcdai_wellbeing": "0",
        "shpcdai_weight": "0",
        "shpcdai_perirectal": "2",
        "shpcdai_eim": "0",
    }
    r = check({**BASE, "disease_type": "1", "height_cm": "140.3", **crohn}, VISIT)
    assert r.values["shpcdai_total"] == "32.5"
    assert r.values["bmi"] == "22.9"
    assert "pucai_total" not in r.values and "pucai_total" in r.hidden


def test_a_hidden_field_that_drives_other_logic_hides_them_too():
    form = read_forms_yaml(
        """
forms:
  - name: chain
    fields:
      - {name: a, type: yesno}
      - {name: b, type: yesno, show_if: "[a] = '1'"}
      - {name: c, type: text, show_if: "[b] = '1'", required: true}
""",
    ).form("chain")
    r = check({"a": "0", "b": "1", "c": "x"}, form)
    assert r.hidden == {"b", "c"} and r.cleared == ("b", "c") and r.ok


def test_logic_that_looks_forward_is_settled_by_iterating():
    form = read_forms_yaml(
        """
forms:
  - name: fwd
    fields:
      - {name: c, type: text, show_if: "[b] = '1'", required: true}
      - {name: b, type: yesno, show_if: "[a] = '1'"}
      - {name: a, type: yesno}
""",
    ).form("fwd")
    r = check({"a": "0", "b": "1"}, form)
    assert r.hidden == {"b", "c"} and r.ok
    r = check({"a": "1", "b": "1"}, form)
    assert [e.field for e in r.errors] == ["c"]


def test_context_supplies_fields_of_other_forms_to_logic():
    form = read_forms_yaml(
        """
forms:
  - name: other
    fields:
      - {name: sex, type: radio, choices: {"1": F, "2": M}}
  - name: follow
    fields:
      - {name: pregnant, type: yesno, show_if: "[sex] = '1'", required: true}
""",
    ).form("follow")
    assert check({}, form, context={"sex": "1"}).errors[0].rule == "required"
    r = check({}, form, context={"sex": "2"})
    assert r.ok and "sex" not in r.values


def test_only_ascii_digits_make_numbers_and_dates():
    r = check({"n_int": "١٢", "n_num": "1_000", "d": "２０２４-01-01"})
    assert [(e.field, e.rule) for e in r.errors] == [
        ("n_int", "type"),
        ("n_num", "type"),
        ("d", "type"),
    ]


_VALUES = st.dictionaries(
    st.sampled_from([f.name for f in FORM.fields if f.type.value not in ("calc", "descriptive")]),
    st.one_of(
        st.sampled_from(["", "0", "1", "2", "a", "b", "-1", "55", "2024-01-31", "08:30", "x@y.zz"]),
        st.text(max_size=8),
        st.lists(st.sampled_from(["1", "2", "-1"]), max_size=3),
    ),
)


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_validating_clean_values_again_changes_nothing(values):
    first = check(values)
    again = check({k: v for k, v in first.values.items() if k != "total"})
    assert again.ok
    assert again.values == first.values


def test_a_bad_value_in_a_hidden_field_is_dropped_not_reported_unless_flagging():
    values = {**BASE, "disease_type": "2", "shpcdai_pain": "9", "pucai_pain": "5"}
    cleared = check(values, VISIT)
    assert "shpcdai_pain" not in {e.field for e in cleared.errors}
    assert "shpcdai_pain" in cleared.cleared
    flagged = check(values, VISIT, hidden="flag")
    assert {("shpcdai_pain", "choice"), ("shpcdai_pain", "hidden")} <= {
        (e.field, e.rule) for e in flagged.errors
    }


TYPES = read_forms_yaml(
    """
forms:
  - name: types
    fields:
      - {name: comma, type: text, validation: number_comma_decimal, min: "0,5", max: "3"}
      - {name: comma1, type: text, validation: number_1dp_comma_decimal}
      - {name: dmy, type: text, validation: date_dmy}
      - {name: mdy, type: text, validation: date_mdy}
      - {name: dts_dmy, type: text, validation: datetime_seconds_dmy}
      - {name: hms, type: text, validation: time_hh_mm_ss, max: "18:00:00"}
      - {name: ms, type: text, validation: time_mm_ss}
      - {name: alpha, type: text, validation: alpha_only}
      - {name: ssn, type: text, validation: ssn}
      - {name: mrn, type: text, validation: mrn_10d}
      - {name: vmrn, type: text, validation: vmrn}
      - {name: au_phone, type: text, validation: phone_australia}
      - {name: uk_phone, type: text, validation: phone_uk}
      - {name: ca_post, type: text, validation: postalcode_canada}
      - {name: fr_post, type: text, validation: postalcode_french}
      - {name: de_post, type: text, validation: postalcode_germany}
      - {name: uk_post, type: text, validation: postalcode_uk}
      - {name: bmi, type: calc, calculation: "[comma] * 2"}
      - {name: scan, type: file, label: Consent scan}
""",
    name="types.yaml",
).form("types")


def test_redcaps_other_validation_types_accept_what_redcap_accepts_in_careloops_stored_form():
    r = validate_response(
        TYPES,
        {
            "comma": "1,5",
            "comma1": "2,0",
            "dmy": "31-03-2024",
            "mdy": "03/31/2024",
            "dts_dmy": "31.03.2024 14:30:05",
            "hms": "14:30:05",
            "ms": "04:59",
            "alpha": "Abc",
            "ssn": "123-45-6789",
            "mrn": "0123456789",
            "vmrn": "12345",
            "au_phone": "(02) 1234 5678",
            "uk_phone": "+44 7911 123456",
            "ca_post": "K1A 0B1",
            "fr_post": "69008",
            "de_post": "10115",
            "uk_post": "SW1A 1AA",
            "scan": "a.pdf",
        },
        now=NOW,
    )
    assert r.ok, r.errors
    assert r.values["comma"] == "1.5" and r.values["comma1"] == "2.0"
    assert r.values["bmi"] == "3"  # computed from the stored point form
    assert r.values["dmy"] == r.values["mdy"] == "2024-03-31"
    assert r.values["dts_dmy"] == "2024-03-31 14:30:05"
    assert "scan" not in r.values and r.ignored == ("scan",)


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("comma", "0,4", "min"),
        ("comma", "3,5", "max"),
        ("comma", "1,5,0", "type"),
        ("comma1", "2,05", "type"),
        ("dmy", "31-13-2024", "type"),
        ("hms", "18:00:01", "max"),
        ("hms", "14:30", "type"),
        ("ms", "60:00", "type"),
        ("alpha", "Ab1", "type"),
        ("ssn", "123456789", "type"),
        ("mrn", "123456789", "type"),
        ("vmrn", "123", "type"),
        ("au_phone", "1234", "type"),
        ("uk_phone", "12345", "type"),
        ("ca_post", "D1A 0B1", "type"),
        ("fr_post", "99008", "type"),
        ("de_post", "00115", "type"),
        ("uk_post", "sw1a 1aa", "type"),
    ],
)
def test_redcaps_other_validation_types_refuse_what_redcap_refuses(field, value, rule):
    r = validate_response(TYPES, {field: value}, now=NOW)
    assert [(e.field, e.rule) for e in r.errors] == [(field, rule)]
    assert r.errors[0].message
