"""A long schemathesis run against the real app, with a token of every role.

The test suite runs the same fuzzing with a few examples per operation
(tests/web/test_schemathesis.py); this runs many more and prints the figures:
operations, requests per role, statuses seen, and server errors (the run
stops at the first failed check and shows how to reproduce it).

    .venv/bin/python scripts/schemathesis_run.py --examples 50

It builds a throwaway installation in a temporary directory (SQLite).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from schemathesis import GenerationMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.web.test_schemathesis import start_fuzzer  # needs the repository on the path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50, help="per operation and mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        fuzzer = start_fuzzer(Path(tmp))
        try:
            fuzzer.run(args.examples, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE))
        finally:
            print(fuzzer.summary())
            took = time.perf_counter() - started
            print(f"{args.examples} examples per operation and mode, {took:.0f} s")
            fuzzer.inst.registry.close()


if __name__ == "__main__":
    main()
