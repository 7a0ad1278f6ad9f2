"""Benchmark: loading OHDSI's Eunomia OMOP CSVs into DuckDB.

careloop's loader (typed, validated, all-or-nothing, atomic swap) against a
bare DuckDB ``CREATE TABLE … AS SELECT * FROM read_csv_auto(…)`` per file,
which checks nothing, in the same run. Prints rows/s of each and the ratio.

    .venv/bin/python benchmarks/omop_load.py [DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import duckdb

from careloop.warehouse import TABLES, Warehouse, load_omop_csv

DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eunomia_gibleed"


def careloop_load(folder: Path, workdir: Path, run: int) -> tuple[float, int]:
    url = f"duckdb://{workdir / f'careloop_{run}.duckdb'}"
    with Warehouse.connect(url) as wh:
        start = time.perf_counter()
        report = load_omop_csv(wh, folder)
        return time.perf_counter() - start, report.rows_in


def raw_duckdb_load(folder: Path, workdir: Path, run: int) -> tuple[float, int]:
    con = duckdb.connect(str(workdir / f"raw_{run}.duckdb"))
    files = [p for p in sorted(folder.glob("*.csv")) if p.stem.lower() in TABLES]
    rows = 0
    start = time.perf_counter()
    for path in files:
        con.execute(
            f"CREATE TABLE \"{path.stem}\" AS SELECT * FROM read_csv_auto('{path}')"
        ).fetchall()
    elapsed = time.perf_counter() - start
    for path in files:
        rows += con.execute(f'SELECT count(*) FROM "{path.stem}"').fetchall()[0][0]
    con.close()
    return elapsed, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    ours, raw = [], []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for run in range(args.repeat):
            raw_s, raw_rows = raw_duckdb_load(args.directory, workdir, run)
            our_s, our_rows = careloop_load(args.directory, workdir, run)
            raw.append(raw_s)
            ours.append(our_s)
    assert our_rows == raw_rows, (our_rows, raw_rows)
    our_med, raw_med = statistics.median(ours), statistics.median(raw)
    print(f"OMOP CSV load of {args.directory.name}: {our_rows:,} rows, median of {args.repeat}")
    print(f"  careloop load_omop_csv : {our_med:6.3f} s  {our_rows / our_med:12,.0f} rows/s")
    print(f"  raw DuckDB read_csv_auto: {raw_med:6.3f} s  {raw_rows / raw_med:12,.0f} rows/s")
    print(f"  ratio (careloop / raw rows/s): {raw_med / our_med:.2f}x")


if __name__ == "__main__":
    main()
