"""Fixtures for the capture tests: generated REDCap dictionaries of any size.

The generator is deterministic (a seeded ``random.Random``), so the 500-field
dictionary is the same in every run and on every machine.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from careloop.capture.redcap import REDCAP_COLUMNS

VALIDATIONS = [
    ("integer", "0", "120"),
    ("number", "-10", "500"),
    ("number_1dp", "", ""),
    ("number_2dp", "0", ""),
    ("date_ymd", "2000-01-01", "today"),
    ("date_dmy", "", ""),
    ("date_mdy", "", ""),
    ("datetime_ymd", "", ""),
    ("datetime_dmy", "", ""),
    ("datetime_mdy", "", ""),
    ("datetime_seconds_ymd", "", ""),
    ("datetime_seconds_dmy", "", ""),
    ("datetime_seconds_mdy", "", ""),
    ("time", "", ""),
    ("email", "", ""),
    ("phone", "", ""),
    ("zipcode", "", ""),
    ("", "", ""),
]


def make_dictionary_rows(n_forms: int, fields_per_form: int, *, seed: int = 3) -> list[list[str]]:
    """Rows (header first) of a REDCap dictionary using every field type and
    validation type, with branching logic and calculations that refer to
    earlier fields of the same form."""
    rng = random.Random(seed)
    rows: list[list[str]] = [list(REDCAP_COLUMNS)]
    for f in range(n_forms):
        form = f"form_{f:02d}"
        made: list[tuple[str, str, list[str]]] = []  # (name, kind, codes)
        for i in range(fields_per_form):
            name = f"f{f:02d}_{i:03d}"
            row = dict.fromkeys(REDCAP_COLUMNS, "")
            row["Variable / Field Name"] = name
            row["Form Name"] = form
            row["Field Label"] = f"Question {i} of {form} — “quoted”, with, commas"
            if i % 17 == 0:
                row["Section Header"] = f"Section {i // 17}"
            kind = [
                "text",
                "radio",
                "dropdown",
                "checkbox",
                "yesno",
                "truefalse",
                "notes",
                "slider",
                "calc",
                "descriptive",
            ][rng.randrange(10) if i else 1]
            codes: list[str] = []
            if kind in ("radio", "dropdown", "checkbox"):
                n = rng.randint(2, 6)
                codes = [str(c) for c in range(1, n + 1)]
                if kind == "checkbox" and rng.random() < 0.3:
                    codes.append("-1")
                row["Choices, Calculations, OR Slider Labels"] = " | ".join(
                    f"{c}, Option {c}, or so" for c in codes
                )
                if kind == "dropdown" and rng.random() < 0.3:
                    row["Text Validation Type OR Show Slider Number"] = "autocomplete"
            elif kind == "text":
                validation, low, high = VALIDATIONS[rng.randrange(len(VALIDATIONS))]
                row["Text Validation Type OR Show Slider Number"] = validation
                row["Text Validation Min"] = low
                row["Text Validation Max"] = high
                kind = f"text:{validation}"
            elif kind == "slider":
                row["Choices, Calculations, OR Slider Labels"] = "Low | Middle | High"
                row["Text Validation Type OR Show Slider Number"] = "number" if i % 2 else ""
                row["Text Validation Min"] = "0"
                row["Text Validation Max"] = "10"
            elif kind == "calc":
                numeric = [
                    m for m in made if m[1] in ("text:integer", "text:number", "slider", "calc")
                ]
                dates = [m for m in made if m[1] == "text:date_ymd"]
                if len(dates) >= 2 and rng.random() < 0.4:
                    a, b = dates[-2][0], dates[-1][0]
                    row["Choices, Calculations, OR Slider Labels"] = (
                        f'rounddown(datediff([{a}], [{b}], "y", "ymd", true), 1)'
                    )
                elif numeric:
                    picks = [m[0] for m in rng.sample(numeric, min(3, len(numeric)))]
                    choice = rng.randrange(3)
                    if choice == 0:
                        row["Choices, Calculations, OR Slider Labels"] = (
                            "sum(" + ", ".join(f"[{p}]" for p in picks) + ")"
                        )
                    elif choice == 1:
                        row["Choices, Calculations, OR Slider Labels"] = (
                            f"if([{picks[0]}] > 5, round([{picks[0]}] * 2.5, 1), ([{picks[-1]}] + 1) ^ 2)"
                        )
                    else:
                        row["Choices, Calculations, OR Slider Labels"] = (
                            f"mean({', '.join(f'[{p}]' for p in picks)}) / 2 - abs(-3)"
                        )
                else:
                    row["Choices, Calculations, OR Slider Labels"] = "2 * (3 + 4)"
            row["Field Type"] = kind.split(":")[0]
            if made and rng.random() < 0.6 and kind != "descriptive":
                row["Branching Logic (Show field only if...)"] = _logic(rng, made)
            if kind not in ("calc", "descriptive") and rng.random() < 0.2:
                row["Required Field?"] = "y"
            if rng.random() < 0.05:
                row["Identifier?"] = "y"
            if rng.random() < 0.1:
                row["Field Note"] = "A note\nover two lines"
            if rng.random() < 0.1:
                row["Field Annotation"] = '@HIDDEN-SURVEY @DEFAULT="1"' if codes else "@READONLY"
            if rng.random() < 0.1:
                row["Custom Alignment"] = rng.choice(["RV", "RH", "LV", "LH"])
            rows.append([row[c] for c in REDCAP_COLUMNS])
            made.append((name, kind, codes))
    return rows


def _logic(rng: random.Random, made: list[tuple[str, str, list[str]]]) -> str:
    parts = []
    for _ in range(rng.randint(1, 3)):
        name, kind, codes = made[rng.randrange(len(made))]
        if kind == "checkbox":
            parts.append(f"[{name}({rng.choice(codes)})] = '{rng.choice('01')}'")
        elif kind in ("radio", "dropdown"):
            parts.append(f"[{name}] {rng.choice(['=', '<>', '!='])} '{rng.choice(codes)}'")
        elif kind in ("yesno", "truefalse"):
            parts.append(f"[{name}] = '{rng.choice('01')}'")
        elif kind in ("text:integer", "slider", "calc", "text:number"):
            parts.append(f"[{name}] {rng.choice(['>', '<', '>=', '<='])} {rng.randint(0, 9)}")
        elif kind == "descriptive":
            parts.append("1 = 1")
        else:
            parts.append(f"[{name}] <> ''")
    joiner = rng.choice([" and ", " or ", " AND ", " or "])
    logic = joiner.join(parts)
    if len(parts) == 3 and rng.random() < 0.5:
        logic = f"({parts[0]}{joiner}{parts[1]}) and not {parts[2]}"
    return logic


def rows_to_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture(scope="session")
def large_dictionary_csv() -> str:
    """A 10-form, 550-field REDCap dictionary with branching and calculations."""
    return rows_to_csv(make_dictionary_rows(10, 55))


@pytest.fixture(scope="session")
def redcap_data(test_data: Path) -> Path:
    """tests/data/redcap: real dictionaries copied from public repositories."""
    return test_data / "redcap"
