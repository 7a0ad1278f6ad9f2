"""`careloop measures list|validate|run` on a Typer app built here (register(app))."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from careloop.cli import measures as measures_cli
from careloop.cli.main import CareloopGroup
from careloop.interop import Warehouse
from careloop.measures import builtin_measures
from tests.measures import fixture

runner = CliRunner()

GOOD = """\
id: my-measure
title: Patients with a PGA
type: proportion
denominator: {visit: {concepts: [9202]}}
numerator: {observation: {concepts: [2000000101]}}
"""
BAD = """\
id: remission
title: Bad
type: proportion
denominator: {visit: {concepts: [9202]}}
numerator:
  all_of:
    - measurement: {concepts: [1], value: {above: 3}}
"""


@pytest.fixture
def app():
    app = typer.Typer(cls=CareloopGroup)

    @app.callback()
    def _main() -> None:
        pass

    measures_cli.register(app)
    return app


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("CARELOOP_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("CARELOOP_MEASURES_DIR", raising=False)
    folder = tmp_path / "data"
    folder.mkdir()
    with Warehouse.connect(f"duckdb://{folder / 'warehouse.duckdb'}") as wh:
        fixture.load(wh)
    return folder


def test_list_shows_the_builtin_measures_and_those_of_a_folder(app, tmp_path, monkeypatch):
    monkeypatch.delenv("CARELOOP_MEASURES_DIR", raising=False)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "mine.yaml").write_text(GOOD)
    result = runner.invoke(
        app, ["measures", "list", "--format", "json", "--measures-dir", str(folder)]
    )
    assert result.exit_code == 0, result.output
    ids = [row["id"] for row in json.loads(result.stdout)]
    assert ids == [*(m.id for m in builtin_measures()), "my-measure"]


def test_validate_names_the_file_and_json_path_of_the_bad_key(app, tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "remission.yaml").write_text(BAD)
    result = runner.invoke(
        app, ["measures", "validate", str(tmp_path / "good.yaml"), str(tmp_path / "remission.yaml")]
    )
    assert result.exit_code == 1
    assert "OK" in result.stdout and "my-measure" in result.stdout
    assert (
        "remission.yaml: $.numerator.all_of[0].measurement.value: expected one of eq, in, "
        "between, gt, lt, is_null"
    ) in result.stderr


def test_run_prints_network_and_site_rows_and_stores_them(app, data_dir):
    result = runner.invoke(
        app,
        [
            "measures",
            "run",
            "--measure",
            "remission-prevalence",
            "--from",
            "2024-01-01",
            "--to",
            "2024-03-31",
            "--by",
            "site",
            "--format",
            "csv",
            "--data-dir",
            str(data_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    from io import StringIO

    frame = pd.read_csv(StringIO(result.stdout), keep_default_na=False)
    network = frame[frame.site == ""]
    assert list(network.numerator) == [3, 4, 3]  # as in test_builtin_measures.py
    assert set(frame.site) == {"", "A", "B"}
    with Warehouse.connect(f"duckdb://{data_dir / 'warehouse.duckdb'}") as wh:
        assert int(wh.table("careloop_measure_result").count().execute()) == len(frame)


def test_a_run_without_a_period_covers_the_data_and_says_so(app, data_dir):
    options = ["--measure", "remission-prevalence", "--format", "csv"]
    result = runner.invoke(app, ["measures", "run", *options, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    # The fixture's first visit is on 2023-06-01 and its last on 2024-03-15.
    assert "Period: 2023-06-01 to 2024-03-15 (the extent of the warehouse's data" in result.stderr
    from io import StringIO

    frame = pd.read_csv(StringIO(result.stdout), keep_default_na=False)
    network = frame[frame.site == ""]
    assert network.period_start.iloc[0] == "2023-06-01" and len(network) == 10
    assert list(network.numerator.iloc[-3:]) == [3, 4, 3]  # as with --from/--to above


def test_run_writes_a_shared_file_with_small_counts_hidden(app, data_dir, tmp_path):
    out = tmp_path / "shared.json"
    result = runner.invoke(
        app,
        [
            "measures",
            "run",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-31",
            "--shared",
            "--out",
            str(out),
            "--no-store",
            "--data-dir",
            str(data_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert len(rows) == len(builtin_measures())
    assert all(r["numerator"] in (None, 0) for r in rows)  # every fixture count is ≤ 10


def test_a_failing_measure_is_reported_and_the_others_still_print(app, data_dir, tmp_path):
    with Warehouse.connect(f"duckdb://{data_dir / 'warehouse.duckdb'}") as wh:
        wh.drop_table("measurement")
    result = runner.invoke(
        app,
        [
            "measures",
            "run",
            "--measure",
            "growth-assessed",
            "--measure",
            "remission-prevalence",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-31",
            "--format",
            "json",
            "--no-store",
            "--data-dir",
            str(data_dir),
        ],
    )
    assert result.exit_code == 1
    assert "Error: measure growth-assessed" in result.stderr and "'measurement'" in result.stderr
    rows = json.loads(result.stdout)
    assert {r["measure_id"] for r in rows} == {"remission-prevalence"}


def test_bad_options_are_errors_not_tracebacks(app, data_dir):
    result = runner.invoke(app, ["measures", "run", "--by", "ward", "--data-dir", str(data_dir)])
    assert result.exit_code == 2
    assert "Error: --by takes site, sex, age_band" in result.stderr
    result = runner.invoke(
        app, ["measures", "run", "--measure", "nope", "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 2 and "There is no measure 'nope'" in result.stderr


def test_bad_files_in_the_measures_folder_are_reported_and_the_rest_listed(app, tmp_path):
    from tests.core.test_limits import billion_laughs

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "mine.yaml").write_text(GOOD)
    (folder / "deep.yaml").write_text("id: deep\ncriteria: " + "[" * 2000 + "]" * 2000 + "\n")
    (folder / "laughs.yaml").write_text(billion_laughs())
    (folder / "latin1.yaml").write_bytes("title: Crohn’s\n".encode("cp1252"))
    (folder / "huge.yaml").write_text("# " + "x" * (1024 * 1024) + "\n" + GOOD)
    result = runner.invoke(
        app, ["measures", "list", "--format", "json", "--measures-dir", str(folder)]
    )
    assert result.exit_code == 0, result.output
    ids = [row["id"] for row in json.loads(result.stdout)]
    assert ids == [*(m.id for m in builtin_measures()), "my-measure"]
    warnings = result.stderr
    assert "deep.yaml: line" in warnings and "nested more than 100 levels" in warnings
    assert "laughs.yaml: line 5" in warnings and "aliases" in warnings
    assert "latin1.yaml: line 1" in warnings and "not UTF-8" in warnings
    assert "huge.yaml" in warnings and "larger than 1 MB" in warnings
    assert "Traceback" not in result.output
