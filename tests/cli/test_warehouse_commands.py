"""The warehouse from the command line: load OMOP CSVs, query read-only, check quality, provenance."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from careloop.cli.main import app

PASSWORD = "a long enough password"
SLICE = Path(__file__).resolve().parents[1] / "data" / "omop_small"


def _init(runner: CliRunner, data: Path) -> list[str]:
    d = ["--data-dir", str(data)]
    r = runner.invoke(
        app,
        ["init", *d, "--admin-email", "a@example.org", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert r.exit_code == 0, r.output
    return d


def test_an_operator_loads_queries_and_checks_the_warehouse(tmp_path):
    runner = CliRunner()
    d = _init(runner, tmp_path / "data")
    loaded = runner.invoke(app, ["warehouse", "load-omop", str(SLICE), *d])
    assert loaded.exit_code == 0, loaded.output
    with (SLICE / "person.csv").open() as handle:
        persons = sum(1 for _ in csv.DictReader(handle))
    result = runner.invoke(
        app, ["warehouse", "query", "SELECT count(*) AS n FROM person", "--format", "json", *d]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"n": persons}]
    refused = runner.invoke(app, ["warehouse", "query", "DELETE FROM person", *d])
    assert refused.exit_code == 2 and refused.output.startswith("Error:")
    checked = runner.invoke(app, ["warehouse", "check", "--format", "json", *d])
    assert checked.exit_code == 0, checked.output
    assert len(json.loads(checked.output)) >= 25
    listing = json.loads(runner.invoke(app, ["provenance", "list", "--format", "json", *d]).output)
    assert [e["activity"] for e in listing] == ["warehouse.check", "warehouse.load_omop"]
    shown = runner.invoke(app, ["provenance", "show", "1", "--format", "fhir", *d])
    fhir = json.loads(shown.output)
    assert fhir["resourceType"] == "Provenance"
    assert {e["what"]["display"].rsplit("/", 1)[-1] for e in fhir["entity"]} >= {"person.csv"}
    audit = runner.invoke(app, ["audit", "report", "--action", "query", "--format", "json", *d])
    entries = json.loads(audit.output)
    assert [e["outcome"] for e in entries] == ["success", "failure"]
