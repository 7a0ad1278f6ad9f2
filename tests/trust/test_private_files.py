"""Identifiable files are readable by their owner only: the data directory 700, the rest 600.

Issue 14: ``careloop demo`` left the data directory 755 and the databases 644,
``init`` into an existing directory kept its mode, and ``fhir export`` wrote
identifiable NDJSON 644, while the docs promised 700. Each path is run under
the common umask 022, so only careloop's own care makes the files private.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from careloop.capture import example_file
from careloop.capture.forms_store import import_forms
from careloop.cli.main import app
from careloop.trust import identity, patients
from careloop.trust.installation import open_registry
from careloop.trust.principal import Principal
from tests.conftest import TEST_DATA
from tests.foundation import PASSWORD, make_settings


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _init(runner: CliRunner, data: Path) -> list[str]:
    d = ["--data-dir", str(data)]
    result = runner.invoke(
        app, ["init", *d, "--admin-email", "a@example.org", "--password-stdin"], input=PASSWORD
    )
    assert result.exit_code == 0, result.output
    return d


def test_init_into_an_existing_open_directory_makes_it_private(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    _init(CliRunner(), data)
    assert _mode(data) == 0o700
    registry = data / "registry.sqlite3"
    assert _mode(registry) == 0o600
    for sidecar in (data / "registry.sqlite3-wal", data / "registry.sqlite3-shm"):
        if sidecar.exists():  # SQLite gives them the database file's mode
            assert _mode(sidecar) == 0o600, sidecar
    assert _mode(data / "secret_key") == 0o600


def test_the_warehouse_file_is_private(tmp_path):
    runner = CliRunner()
    d = _init(runner, tmp_path / "data")
    loaded = runner.invoke(app, ["warehouse", "load-omop", str(TEST_DATA / "omop_small"), *d])
    assert loaded.exit_code == 0, loaded.output
    assert _mode(tmp_path / "data" / "warehouse.duckdb") == 0o600


def test_fhir_export_and_records_export_files_are_private(tmp_path):
    runner = CliRunner()
    d = _init(runner, tmp_path / "data")
    settings = make_settings(tmp_path, None)
    registry = open_registry(settings)
    operator = Principal.operator("tester")
    identity.add_site(
        registry, operator, code="A", name="Site A", country="GB", time_zone="Europe/London"
    )
    patients.register_patient(
        registry, operator, site="A", local_id="MRN-1", family_name="Lovelace",
        consent_state="improvement_and_research",
    )  # fmt: skip
    import_forms(registry, operator, example_file("yaml"), fmt="yaml", name="ibd.yaml")
    registry.close()
    out = tmp_path / "export"
    exported = runner.invoke(app, ["fhir", "export", "--out", str(out), *d])
    assert exported.exit_code == 0, exported.output
    files = sorted(out.iterdir())
    assert any(f.name == "Patient.ndjson" for f in files)
    assert all(_mode(f) == 0o600 for f in files), [(f.name, oct(_mode(f))) for f in files]
    assert _mode(out) == 0o700
    records = tmp_path / "visits.csv"
    result = runner.invoke(app, ["records", "export", "ibd_visit", "-o", str(records), *d])
    assert result.exit_code == 0, result.output
    assert _mode(records) == 0o600
