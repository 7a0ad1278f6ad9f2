"""The main job's speed: `careloop demo` end to end, time per stage and peak memory.

Usage: .venv/bin/python benchmarks/demo.py [--scale small|icn] [--seed N]

Baseline measured in the same run: generating the same synthetic network and
computing its monthly visit counts with pandas (what the cycle would cost
with no capture validation, audit, warehouse, measures or analyses). The
ratio says what the full, audited cycle costs on top of that.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import warnings
from pathlib import Path

from careloop.core.settings import load_settings
from careloop.demo.network import generate_network
from careloop.demo.pipeline import DEFAULT_SEED, run_demo
from careloop.trust.principal import Principal


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="small", choices=["small", "icn"])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    network = generate_network(args.scale, args.seed)
    visits = network.visits.assign(month=[d.replace(day=1) for d in network.visits.event_date])
    visits.groupby(["site", "month"]).remission.agg(["sum", "size"])
    baseline = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp) / "demo")
        start = time.perf_counter()
        result = run_demo(
            settings, Principal.operator("benchmark"), scale=args.scale, seed=args.seed
        )
        total = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"scale {args.scale}, seed {args.seed}: {network.notes[0]}")
    for stage, seconds in result.timings.items():
        print(f"  {seconds:8.2f} s  {stage}")
    print(f"careloop demo end to end: {total:.1f} s; peak RSS {peak_mb:.0f} MB")
    print(f"baseline (generate + pandas monthly counts): {baseline:.2f} s")
    print(f"ratio (full audited cycle / baseline): {total / baseline:.1f}x")
    found = sum(r.recovered for r in result.recoveries)
    print(f"planted effects recovered: {found}/{len(result.recoveries)}")


if __name__ == "__main__":
    main()
