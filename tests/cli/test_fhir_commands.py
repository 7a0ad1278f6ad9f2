"""`careloop fhir import|export` through the CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from careloop.cli.main import app

PASSWORD = "a long enough password"
FHIR_SMALL = Path(__file__).resolve().parents[1] / "data" / "fhir_small"


def _init(runner: CliRunner, data: Path) -> list[str]:
    d = ["--data-dir", str(data)]
    result = runner.invoke(
        app,
        ["init", *d, "--admin-email", "a@example.org", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    added = runner.invoke(
        app,
        [
            "site",
            "add",
            "NORTH",
            "--name",
            "North",
            "--country",
            "GB",
            "--time-zone",
            "Europe/London",
            *d,
        ],
    )
    assert added.exit_code == 0, added.output
    return d


def test_an_operator_imports_then_exports_fhir(tmp_path: Path) -> None:
    runner = CliRunner()
    d = _init(runner, tmp_path / "data")
    imported = runner.invoke(app, ["fhir", "import", str(FHIR_SMALL), "--json", *d])
    assert imported.exit_code == 0, imported.output
    report = json.loads(imported.output)
    assert (report["site"], report["patients_created"]) == ("NORTH", 3)
    assert report["rows_out"]["measurement"] == 5
    out = tmp_path / "export"
    exported = runner.invoke(app, ["fhir", "export", "--out", str(out), *d])
    assert exported.exit_code == 0, exported.output
    manifest = json.loads((out / "manifest.json").read_text())
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts["Patient"] == 3 and counts["Observation"] == 10


def test_a_bad_file_prints_the_located_error_and_exits_non_zero(tmp_path: Path) -> None:
    runner = CliRunner()
    d = _init(runner, tmp_path / "data")
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"resourceType": "Patient", "id": "x", "gender": "F"}\n')
    result = runner.invoke(app, ["fhir", "import", str(bad), *d])
    assert result.exit_code == 2
    assert "bad.ndjson:1: Patient.gender" in result.output
    assert "nothing was imported" in result.output
    wrong_mode = runner.invoke(app, ["fhir", "import", str(bad), "--mode", "yolo", *d])
    assert wrong_mode.exit_code == 2
    assert "--mode must be all-or-nothing or row-level" in wrong_mode.output
