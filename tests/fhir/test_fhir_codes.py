"""Code checks fhir.resources does not make: LOINC and SNOMED CT check digits, known systems."""

from __future__ import annotations

import pytest

from careloop.fhir.codes import (
    code_format_problem,
    is_known_system,
    loinc_check_digit,
    verhoeff_valid,
)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


# Real LOINC codes (loinc.org: body height, body weight, hemoglobin, BP panel, glucose).
@pytest.mark.parametrize("code", ["8302-2", "29463-7", "718-7", "85354-9", "2345-7"])
def test_real_loinc_codes_pass_the_mod_10_check_digit(code: str) -> None:
    number, check = code.split("-")
    assert loinc_check_digit(number) == int(check)
    assert code_format_problem(LOINC, code) is None


def test_a_loinc_code_with_a_wrong_check_digit_or_shape_is_flagged() -> None:
    assert "check digit" in (code_format_problem(LOINC, "8302-3") or "")
    # Synthea's CIEL codes sent with the LOINC system (../shared/data/README.md caveat).
    assert "not in the format of LOINC" in (
        code_format_problem(LOINC, "5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") or ""
    )


# Real SNOMED CT concept ids (SNOMED International browser: diabetes type 2, appendectomy,
# hypertension, well child visit, ex-smoker).
@pytest.mark.parametrize("code", ["44054006", "80146002", "38341003", "410620009", "8517006"])
def test_real_snomed_ids_pass_the_verhoeff_check(code: str) -> None:
    assert verhoeff_valid(code)
    assert code_format_problem(SNOMED, code) is None


def test_a_snomed_id_with_one_digit_changed_fails_verhoeff() -> None:
    assert not verhoeff_valid("44054007")
    assert "Verhoeff" in (code_format_problem(SNOMED, "44054007") or "")


def test_local_systems_are_known_and_made_up_ones_are_not() -> None:
    assert is_known_system("urn:careloop:local:ibd")
    assert is_known_system("http://www.nlm.nih.gov/research/umls/rxnorm")
    assert not is_known_system("http://example.org/codes")
