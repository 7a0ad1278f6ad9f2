"""The main job's speed: `careloop demo` end to end, time per stage and peak memory.

Usage: .venv/bin/python benchmarks/demo.py [--scale small|icn] [--seed N]

The demo runs as its own process (`careloop demo --no-serve`), as a user
starts it, so its peak RSS is its own. Baseline measured in the same run:
generating the same synthetic network and computing its monthly visit counts
with pandas (what the cycle would cost with no capture validation, audit,
warehouse, measures or analyses).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from careloop.demo.network import generate_network
from careloop.demo.pipeline import DEFAULT_SEED


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="small", choices=["small", "icn"])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "demo"
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "careloop.cli",
                "demo",
                "--no-serve",
                "--scale",
                args.scale,
                "--seed",
                str(args.seed),
                "--data-dir",
                str(data_dir),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        total = time.perf_counter() - start
        summary = json.loads((data_dir / "report" / "summary.json").read_text())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    start = time.perf_counter()
    network = generate_network(args.scale, args.seed)
    visits = network.visits.assign(month=[d.replace(day=1) for d in network.visits.event_date])
    visits.groupby(["site", "month"]).remission.agg(["sum", "size"])
    baseline = time.perf_counter() - start
    counts = summary["counts"]
    print(
        f"scale {args.scale}, seed {args.seed}: {counts['patients']:,} patients, "
        f"{counts['visits']:,} visits, {counts['proms']:,} PROMs"
    )
    for stage, seconds in summary["timings_seconds"].items():
        print(f"  {seconds:8.2f} s  {stage}")
    print(f"careloop demo end to end (own process): {total:.1f} s; peak RSS {peak_mb:.0f} MB")
    print(f"baseline (generate + pandas monthly counts): {baseline:.2f} s")
    print(f"ratio (full audited cycle / baseline): {total / baseline:.1f}x")
    found = sum(e["recovered"] for e in summary["planted_effects"])
    print(f"planted effects recovered: {found}/{len(summary['planted_effects'])}")


if __name__ == "__main__":
    main()
