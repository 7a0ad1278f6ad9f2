"""Reading and writing a dictionary file whatever its format."""

from __future__ import annotations

from pathlib import Path

import pytest

from careloop.capture import (
    detect_format,
    example_forms,
    read_dictionary,
    write_dictionary,
)
from careloop.core.errors import InputError, ValidationFailed


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("redcap", ".csv"), ("yaml", ".yaml"), ("questionnaire", ".json")]
)
def test_every_format_is_read_back_by_suffix_and_by_content(fmt, suffix, tmp_path: Path):
    prom = example_forms().form("ibd_symptoms_prom")
    text = write_dictionary(prom, format=fmt)
    path = tmp_path / f"prom{suffix}"
    path.write_text(text, encoding="utf-8")
    by_suffix = read_dictionary(path)
    by_content = read_dictionary(text)
    assert detect_format(text) == fmt
    assert by_suffix == by_content
    assert by_suffix.form("ibd_symptoms_prom").fields == prom.fields


def test_an_explicit_format_wins_and_its_errors_name_the_file(tmp_path: Path):
    path = tmp_path / "forms.txt"
    path.write_text("not: [valid", encoding="utf-8")
    with pytest.raises(ValidationFailed) as info:
        read_dictionary(path, format="yaml")
    assert info.value.details[0].location.startswith("forms.txt:")


def test_a_questionnaire_export_takes_one_form():
    with pytest.raises(InputError, match="one form"):
        write_dictionary(example_forms(), format="questionnaire")
