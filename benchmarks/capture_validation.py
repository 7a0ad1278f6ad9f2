"""Benchmark: validating 100,000 responses to a 50-field form with branching logic.

Prints rows per second for

* a baseline of plain per-value type checks in pure Python (``int()``,
  ``float()``, ``date.fromisoformat``, choice membership) — no branching,
  ranges, required-when-shown or calculations;
* careloop's ``FormValidator.validate`` (types, ranges, choices, branching,
  required-when-shown, hidden values cleared, calculated fields computed);
* careloop's ``read_records_csv`` on the same rows as a REDCap-shaped CSV
  (decode, header check, CSV parsing and validation: what ``careloop records
  import`` does before it writes anything);

and each careloop figure's ratio to the baseline, all measured in the same run.
The issue's target for the database import is ≥ 5,000 rows/s on 2 cores; the
lead extends this script with that step.

Run: .venv/bin/python benchmarks/capture_validation.py [rows]
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import sys
import time

from careloop.capture import FormValidator, read_forms_yaml, read_records_csv
from careloop.capture.forms import FieldType, Form

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
NOW = dt.datetime(2024, 6, 30, 12, 0)


def make_form() -> Form:
    """50 fields: 10 groups of 5 — a required radio gate, then an integer, a
    number, a date and (alternately) a dropdown or a calculated total, all
    shown only when the gate says so; the number only when the integer > 10."""
    lines = ["name: bench", "fields:"]
    for g in range(10):
        shown = f"show_if: \"[gate_{g}] = '1'\""
        lines += [
            f"  - {{name: gate_{g}, type: radio, choices: {{'1': 'Yes', '0': 'No'}},"
            " required: true}",
            f"  - {{name: count_{g}, type: text, validation: integer, min: '0', max: '100',"
            f" {shown}, required: true}}",
            f"  - {{name: level_{g}, type: text, validation: number, min: '0', max: '500',"
            f" show_if: \"[gate_{g}] = '1' and [count_{g}] > 10\"}}",
            f"  - {{name: when_{g}, type: text, validation: date_ymd, max: today, {shown}}}",
        ]
        if g % 2:
            lines.append(
                f"  - {{name: kind_{g}, type: dropdown, choices: {{'1': A, '2': B, '3': C}},"
                f" show_if: \"[gate_{g}] <> '0'\"}}"
            )
        else:
            lines.append(
                f"  - {{name: total_{g}, type: calc, {shown},"
                f" calculation: 'round([count_{g}] * 2 + [level_{g}], 1)'}}"
            )
    form = read_forms_yaml("\n".join(lines)).form("bench")
    assert len(form.fields) == 50
    return form


def make_rows(n: int, seed: int = 2024) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        row: dict[str, str] = {}
        for g in range(10):
            gate = "1" if rng.random() < 0.7 else "0"
            row[f"gate_{g}"] = gate
            row[f"count_{g}"] = str(rng.randint(0, 99)) if rng.random() > 0.01 else "1o"
            row[f"level_{g}"] = f"{rng.uniform(0, 400):.2f}"
            row[f"when_{g}"] = (
                dt.date(2020, 1, 1) + dt.timedelta(days=rng.randint(0, 1500))
            ).isoformat()
            if g % 2:
                row[f"kind_{g}"] = str(rng.randint(1, 3))
        rows.append(row)
    return rows


def plain_checks(form: Form, rows: list[dict[str, str]]) -> int:
    """Type checks only, the way a hand-written importer would do them."""
    kinds = {}
    for f in form.fields:
        if f.type in (FieldType.RADIO, FieldType.DROPDOWN):
            kinds[f.name] = ("choice", frozenset(f.choice_codes))
        else:
            kinds[f.name] = (f.validation or "text", None)
    bad = 0
    for row in rows:
        for name, value in row.items():
            kind, codes = kinds[name]
            if value == "":
                continue
            try:
                if kind == "integer":
                    int(value)
                elif kind == "number":
                    float(value)
                elif kind == "date_ymd":
                    dt.date.fromisoformat(value)
                elif kind == "choice" and value not in codes:
                    raise ValueError(value)
            except ValueError:
                bad += 1
    return bad


def to_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["patient_id", *rows[0]], lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(rows):
        writer.writerow({"patient_id": f"p{i}", **row})
    return out.getvalue().encode("utf-8")


def main() -> None:
    form = make_form()
    rows = make_rows(ROWS)
    data = to_csv(rows)
    python = sys.version.split()[0]
    print(f"{ROWS:,} rows × {len(form.fields)} fields (10 branching gates), Python {python}")

    start = time.perf_counter()
    bad_plain = plain_checks(form, rows)
    base = time.perf_counter() - start

    validator = FormValidator(form)
    start = time.perf_counter()
    bad_rows = sum(not validator.validate(row, now=NOW).ok for row in rows)
    ours = time.perf_counter() - start

    start = time.perf_counter()
    parsed = read_records_csv(data, form, name="bench.csv", key_columns=("patient_id",), now=NOW)
    whole = time.perf_counter() - start
    assert len(parsed.rows) == ROWS and len(parsed.rejected_rows) == bad_rows

    def line(label: str, seconds: float) -> str:
        return f"  {label:<44} {seconds:7.2f} s  {ROWS / seconds:>10,.0f} rows/s"

    print(line("baseline: plain per-value type checks", base) + f"   ({bad_plain:,} bad values)")
    print(
        line("careloop validate_response", ours) + f"   ({bad_rows:,} rows rejected)"
        f"   ×{ours / base:.1f} the baseline's time"
    )
    print(
        line("careloop read_records_csv (parse + validate)", whole)
        + f"   ×{whole / base:.1f} the baseline's time"
    )


if __name__ == "__main__":
    main()
