"""Benchmark: ten shared releases of the demo, attacked with an integer-programming solver.

The ten ``careloop measures run`` of the issue (different ``--by`` and
``--from/--to``), on a copy of a demo data directory, then
``careloop.trust.attacker.attack`` over all ten with the true counts of every
level. Prints per release the counts from 1 to 10 printed, the counts hidden
and the ``small_denominator`` flags shown for hidden denominators, then the
hidden counts and how many the solver pins.

``after``: the real command, ``careloop measures run ... --shared`` (package-wide
suppression and the release ledger of the copy's warehouse). ``before``: the
same rows through ``share_results`` of ``--rev`` (default ``main``; read with
``git show``), per release as it was.

Run (the demo first, ~2 minutes):
    .venv/bin/careloop demo --no-serve --data-dir /tmp/demo
    .venv/bin/python benchmarks/disclosure_demo.py /tmp/demo after
    .venv/bin/python benchmarks/disclosure_demo.py /tmp/demo before --rev 607c5b5
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from careloop.measures import data_extent, load_catalog, run_measures
from careloop.trust.attacker import attack
from careloop.warehouse.connection import Warehouse

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("careloop"))
RELEASES = [
    ["--by", "sex"],
    ["--by", "age_band"],
    ["--by", "site"],
    ["--by", "site", "--by", "sex", "--from", "2020-01-01", "--to", "2022-12-31"],
    ["--by", "site", "--by", "age_band", "--from", "2021-01-01"],
    ["--by", "sex", "--by", "age_band", "--to", "2021-12-31"],
    ["--by", "site", "--by", "sex", "--by", "age_band", "--from", "2023-01-01"],
    [],
    ["--by", "site", "--from", "2019-01-01", "--to", "2020-12-31"],
    ["--by", "sex", "--from", "2022-01-01", "--to", "2024-12-31"],
]
COUNTS = ["numerator", "denominator", "excluded"]
BLOCKS_PER_ATTACK = 12


def _options(opts: list[str], extent: tuple[date, date]) -> tuple[tuple[str, ...], date, date]:
    by = tuple(opts[i + 1] for i, o in enumerate(opts) if o == "--by")

    def day(flag: str, default: date) -> date:
        return date.fromisoformat(opts[opts.index(flag) + 1]) if flag in opts else default

    return by, day("--from", extent[0]), day("--to", extent[1])


def _norm(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["site"] = frame.site.fillna("").astype(str)
    frame["stratum"] = frame.stratum.fillna("").astype(str)
    frame["period_start"] = pd.to_datetime(frame.period_start).dt.date
    frame["period_end"] = pd.to_datetime(frame.period_end).dt.date
    frame["definition_hash"] = frame.definition_hash.astype(str)
    for c in COUNTS:
        frame[c] = frame[c].astype("Int64")
    return frame


def _small(frame: pd.DataFrame) -> int:
    return int(sum(((frame[c] >= 1) & (frame[c] <= 10)).fillna(False).sum() for c in COUNTS))


def _old_share(rev: str) -> Any:
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:src/careloop/measures/sharing.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    namespace: dict[str, Any] = {"__name__": "old_sharing"}
    exec(compile(text, f"{rev}:sharing.py", "exec"), namespace)
    return namespace["share_results"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="a demo data directory (copied, not changed)")
    parser.add_argument("mode", choices=["before", "after"])
    parser.add_argument("--rev", default="main", help="commit of the old share_results (before)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp()) / "data"
    shutil.copytree(args.data_dir, work)
    url = f"duckdb://{work / 'warehouse.duckdb'}"
    catalog = load_catalog().select(None)
    with Warehouse.connect(url, read_only=True) as wh:
        extent = data_extent(wh)
    assert extent is not None, "the warehouse has no data"
    old = _old_share(args.rev) if args.mode == "before" else None
    started = time.perf_counter()
    truths, released = [], []
    for opts in RELEASES:
        by, start, end = _options(opts, extent)
        with Warehouse.connect(url, read_only=True) as wh:
            every = run_measures(wh, catalog, start=start, end=end, by=("site", "sex", "age_band"))
            truths.append(_norm(every.results))
            if old is not None:
                out = _norm(old(run_measures(wh, catalog, start=start, end=end, by=by).results))
        if old is None:
            command = [CLI, "measures", "run", *opts, "--shared", "--no-store", "--format", "csv"]
            proc = subprocess.run(
                [*command, "--data-dir", str(work)], capture_output=True, text=True, check=True
            )
            out = _norm(pd.read_csv(io.StringIO(proc.stdout), dtype={"site": str, "stratum": str}))
        hidden = int(sum(out[c].isna().sum() for c in COUNTS))
        flags = int((out.denominator.isna() & out.small_denominator.notna()).sum())
        print(
            f"{args.mode}: {' '.join(opts) or '(network only)'}: {len(out):,} rows, "
            f"{_small(out)} counts from 1 to 10 printed, {hidden:,} hidden, "
            f"{flags:,} small_denominator flags shown for hidden denominators",
            flush=True,
        )
        released.append(out)
    keys = ["measure_id", "definition_hash", "period_start", "period_end", "site", "stratum"]
    truth = pd.concat(truths, ignore_index=True).drop_duplicates(keys)
    independent = sorted(set(truth.measure_id[truth.numerator > truth.denominator]))
    # Measure x period tables share no unknowns: attacking a few at a time is exact and
    # much cheaper than one program over all of them.
    blocks = sorted(set(zip(truth.measure_id, truth.period_start, strict=True)))
    totals: dict[str, float] = {}
    pinned = []
    for i in range(0, len(blocks), BLOCKS_PER_ATTACK):
        chunk = set(blocks[i : i + BLOCKS_PER_ATTACK])

        def pick(f: pd.DataFrame, chunk: set[Any] = chunk) -> pd.DataFrame:
            return f[[k in chunk for k in zip(f.measure_id, f.period_start, strict=True)]]

        parts = [p for p in (pick(r) for r in released) if not p.empty]
        if not parts:
            continue
        report = attack(parts, pick(truth), independent=independent, empty_rows_listed=old is None)
        for key, value in report.summary().items():
            totals[key] = totals.get(key, 0) + value
        pinned += report.pinned
    exact_small = sum(1 for h in pinned if h.low == h.high and 1 <= h.true <= 10 and h.released)
    print(
        f"{args.mode}: {len(RELEASES)} releases, {len(blocks)} measure x period tables, "
        f"{int(totals.get('hidden_counts', 0)):,} hidden counts "
        f"({int(totals.get('hidden_small', 0)):,} from 1 to 10), {len(pinned):,} pinned "
        f"({sum(1 for h in pinned if 1 <= h.true <= 10):,} from 1 to 10; {exact_small:,} "
        f"released counts from 1 to 10 recovered exactly), "
        f"{int(totals.get('solves', 0)):,} MILP solves, {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return 1 if pinned else 0


if __name__ == "__main__":
    raise SystemExit(main())
