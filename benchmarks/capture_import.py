"""Benchmark: importing 100,000 rows of a 50-field form into the SQLite registry.

The form and rows are those of benchmarks/capture_validation.py (10 branching
gates, ranges, dates, choices, calculated fields). Keys: 10,000 patients ×
10 visit dates, so the import also registers 10,000 new patients.

Prints rows per second for

* the baseline: pure validation of the same rows without a database
  (``FormValidator.validate`` on each row), and ``read_records_csv`` (decode,
  header check, CSV parsing and validation: the import's first step);
* ``import_records`` all-or-nothing on a fresh registry (clean rows: all written);
* ``import_records`` row-level on a fresh registry (about 7 % of rows carry a
  bad value and are rejected and reported);
* the same row-level file imported again (every row found unchanged);

with each import's time as a multiple of the pure validation's, all in the
same run. Every write is batched (multi-row INSERT/UPDATE, one transaction,
audit per batch and per patient). The issue's target is ≥ 5,000 rows/s on 2 cores.

Run: .venv/bin/python benchmarks/capture_import.py [rows]
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capture_validation import NOW, make_form, make_rows

from careloop.capture import FormValidator, write_forms_yaml
from careloop.capture.forms import Form
from careloop.capture.forms_store import import_forms
from careloop.capture.records_csv import read_records_csv
from careloop.capture.records_io import import_records
from careloop.core.settings import load_settings
from careloop.store.database import Registry
from careloop.trust.identity import add_site
from careloop.trust.installation import initialise, open_registry
from careloop.trust.principal import Principal

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
PATIENTS = max(1, ROWS // 10)
OPERATOR = Principal.operator("benchmark")


def keyed_csv(form: Form, rows: list[dict[str, str]]) -> bytes:
    """The rows as a REDCap-shaped CSV with record_id and event_date keys."""
    import csv
    import io

    columns = [f.name for f in form.fields if f.type.value != "calc"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["record_id", "event_date", *columns])
    start = dt.date(2023, 1, 1)
    for i, row in enumerate(rows):
        day = start + dt.timedelta(days=i // PATIENTS)
        writer.writerow(
            [f"P{i % PATIENTS:06d}", day.isoformat(), *(row.get(c, "") for c in columns)]
        )
    return out.getvalue().encode("utf-8")


def fresh_registry(tmp: Path, form: Form) -> Registry:
    settings = load_settings(data_dir=tmp)
    initialise(settings, OPERATOR, admin_email="admin@example.org", admin_password="x" * 16)
    registry = open_registry(settings)
    add_site(registry, OPERATOR, code="BENCH", name="Bench", country="GB", time_zone="UTC")
    import_forms(registry, OPERATOR, write_forms_yaml(form).encode(), fmt="yaml")
    return registry


def main() -> None:
    form = make_form()
    dirty = make_rows(ROWS)
    clean = [{k: ("11" if v == "1o" else v) for k, v in row.items()} for row in dirty]
    clean_csv, dirty_csv = keyed_csv(form, clean), keyed_csv(form, dirty)
    python = sys.version.split()[0]
    print(
        f"{ROWS:,} rows × {len(form.fields)} fields, {PATIENTS:,} patients, SQLite registry, "
        f"Python {python}"
    )

    validator = FormValidator(form)
    start = time.perf_counter()
    rejected = sum(not validator.validate(row, now=NOW).ok for row in dirty)
    pure = time.perf_counter() - start
    start = time.perf_counter()
    read_records_csv(dirty_csv, form, name="bench.csv", key_columns=("record_id", "event_date"))
    parse = time.perf_counter() - start

    def line(label: str, seconds: float, extra: str = "") -> str:
        return (
            f"  {label:<46} {seconds:7.2f} s  {ROWS / seconds:>9,.0f} rows/s"
            f"   ×{seconds / pure:.1f} the pure validation's time{extra}"
        )

    print(line("baseline: FormValidator.validate, no database", pure, f" ({rejected:,} bad rows)"))
    print(line("read_records_csv (decode, parse, validate)", parse))

    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        registry = fresh_registry(Path(a), form)
        start = time.perf_counter()
        report = import_records(registry, OPERATOR, "bench", clean_csv, "BENCH", name="clean.csv")
        seconds = time.perf_counter() - start
        assert report.written and report.created == ROWS, report
        print(line("import_records all-or-nothing (all written)", seconds))
        registry.close()

        registry = fresh_registry(Path(b), form)
        start = time.perf_counter()
        report = import_records(
            registry, OPERATOR, "bench", dirty_csv, "BENCH", mode="row-level", name="dirty.csv"
        )
        seconds = time.perf_counter() - start
        assert report.created == ROWS - report.rejected_rows, report
        print(
            line("import_records row-level", seconds)
            + f" ({report.created:,} written, {report.rejected_rows:,} rejected)"
        )
        start = time.perf_counter()
        again = import_records(
            registry, OPERATOR, "bench", dirty_csv, "BENCH", mode="row-level", name="dirty.csv"
        )
        seconds = time.perf_counter() - start
        assert again.created == 0 and again.unchanged == report.created, again
        print(line("the same file again (all unchanged)", seconds))
        registry.close()


if __name__ == "__main__":
    main()
