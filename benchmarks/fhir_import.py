"""Benchmark: bulk FHIR NDJSON import into the DuckDB warehouse vs pure validation.

Builds one NDJSON file of ~50,000 Patient, Encounter and Observation
resources by cloning the Synthea sample (``../shared/data/fhir_synthea_r4``)
with new ids, MRNs and references. Then, in the same run:

- baseline: fhir.resources R4B validation of every line of the file
  (``model_validate_json``, pydantic's fastest path from JSON text), nothing else;
- careloop: ``import_fhir`` of the same file into a fresh installation (SQLite
  registry, DuckDB warehouse): read, validate, check codes, register
  patients with audit entries, write OMOP rows atomically, record provenance.

Prints resources per CPU-second of each and the ratio (the target is >= 0.6).
CPU time (``time.process_time``, all threads of this process) rather than
wall-clock time, because the machine is shared: other processes' load would
otherwise decide the ratio.

    .venv/bin/python benchmarks/fhir_import.py [--target 50000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from careloop.core.settings import load_settings
from careloop.fhir.importing import import_fhir
from careloop.fhir.read import model_class
from careloop.trust import identity
from careloop.trust.installation import initialise, open_registry
from careloop.trust.principal import Principal
from careloop.warehouse.connection import Warehouse

SYNTHEA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fhir_synthea_r4"
KEEP = ("Patient", "Encounter", "Observation")
_TYPE = re.compile(rb'"resourceType":"(\w+)"')


def _template(folder: Path) -> list[dict[str, Any]]:
    resources = []
    for path in sorted(folder.glob("*.json")):
        bundle = json.loads(path.read_text())
        if bundle.get("type") != "transaction":
            continue
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] in KEEP:
                resource.pop("text", None)
                resources.append(resource)
    return resources


def _rewrite(value: Any, suffix: str) -> Any:
    """Every urn:uuid reference becomes Type/id-suffix (ids are per clone)."""
    if isinstance(value, dict):
        out = {k: _rewrite(v, suffix) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref.startswith("urn:uuid:"):
            out["reference"] = f"{_types[ref[9:]]}/{ref[9:]}-{suffix}"
        return out
    if isinstance(value, list):
        return [_rewrite(v, suffix) for v in value]
    return value


_types: dict[str, str] = {}


def build_file(folder: Path, target: int, out: Path) -> int:
    template = _template(folder)
    _types.update({r["id"]: r["resourceType"] for r in template})
    clones = max(1, round(target / len(template)))
    count = 0
    with out.open("w") as handle:
        for clone in range(clones):
            suffix = f"c{clone}"
            for resource in template:
                copy = _rewrite(resource, suffix)
                copy["id"] = f"{resource['id']}-{suffix}"
                for identifier in copy.get("identifier", []):
                    if "value" in identifier:
                        identifier["value"] = f"{identifier['value']}-{suffix}"
                handle.write(json.dumps(copy, separators=(",", ":")) + "\n")
                count += 1
    return count


def validate_only(path: Path) -> tuple[float, int]:
    start = time.process_time()
    n = 0
    with path.open("rb") as handle:
        for line in handle:
            match = _TYPE.search(line)
            assert match is not None
            kind = match.group(1).decode()
            model_class(kind).model_validate_json(line)
            n += 1
    return time.process_time() - start, n


def careloop_import(path: Path, workdir: Path) -> tuple[float, int]:
    settings = load_settings(data_dir=workdir / "data")
    operator = Principal.operator("bench")
    initialise(settings, operator, admin_email="a@example.org", admin_password="x" * 16)
    registry = open_registry(settings)
    identity.add_site(
        registry, operator, code="A", name="A", country="GB", time_zone="Europe/London"
    )
    try:
        start = time.process_time()
        with Warehouse.from_settings(settings) as warehouse:
            report = import_fhir(registry, warehouse, operator, path, site="A")
        return time.process_time() - start, report.total_in
    finally:
        registry.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SYNTHEA)
    parser.add_argument("--target", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "bulk.ndjson"
        total = build_file(args.source, args.target, path)
        print(f"{total:,} resources ({path.stat().st_size / 1e6:.0f} MB NDJSON)")
        validate_only(path)  # warm the model classes and the file cache
        base, ours = [], []
        for run in range(args.repeat):
            seconds, n = validate_only(path)
            base.append(n / seconds)
            seconds, n = careloop_import(path, work / f"run{run}")
            ours.append(n / seconds)
    base_rate, our_rate = statistics.median(base), statistics.median(ours)
    print(f"fhir.resources validation only: {base_rate:10,.0f} resources per CPU-second")
    print(f"careloop import_fhir → DuckDB:  {our_rate:10,.0f} resources per CPU-second")
    print(f"ratio careloop / validation:     {our_rate / base_rate:10.2f}  (target >= 0.60)")


if __name__ == "__main__":
    main()
