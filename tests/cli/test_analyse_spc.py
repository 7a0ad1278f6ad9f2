"""`careloop analyse spc` end to end on qicharts2's example data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from careloop.cli.main import app, run

DATA = Path(__file__).parent.parent / "data" / "qicharts2"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["analyse", "spc", *args], catch_exceptions=False)


def test_p_chart_json_reproduces_montgomery_example_7_1() -> None:
    # Issue 6 / qicharts2 test_montgomery.R: part 1 CL 0.2150, UCL 0.389297, LCL 0.040703.
    result = invoke(
        "--input", str(DATA / "tbl_07.03.csv"), "--y", "count", "--n", "size", "--x", "sample",
        "--chart", "p", "--exclude", "15,23", "--part", "30", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    first, second = body["summary"]
    assert first["cl"] == pytest.approx(0.2150, abs=1e-6)
    assert first["ucl"] == pytest.approx(0.389297, abs=1e-6)
    assert second["cl"] == pytest.approx(0.109687, abs=1e-6)
    assert len(body["points"]) == 94


def test_table_lists_each_part_as_a_column() -> None:
    result = invoke(
        "--input", str(DATA / "tbl_06.07.csv"), "--y", "cost", "--x", "weeks", "--chart", "i",
        "--freeze", "20",
    )  # fmt: skip
    assert result.exit_code == 0
    assert "part 1" in result.stdout and "321.217" in result.stdout


def test_csv_output_is_one_row_per_point_with_dates_and_labels() -> None:
    result = invoke(
        "--input", str(DATA / "cdi.csv"), "--y", "n", "--n", "days", "--x", "month",
        "--chart", "u", "--part-at", "2014-11-01", "--format", "csv",
    )  # fmt: skip
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("x,y,n,cl,ucl,lcl,part")
    assert len(lines) == 37
    assert lines[-1].split(",")[6] == "2"


def test_bad_positions_print_an_error_and_exit_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        sys, "argv",
        ["careloop", "analyse", "spc", "--input", str(DATA / "tbl_07.03.csv"), "--y", "count",
         "--n", "size", "--chart", "p", "--exclude", "99"],
    )  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        run()
    assert exc.value.code == 2
    assert "Error: exclude holds 99" in capsys.readouterr().err


def test_out_delegates_to_the_renderer_and_reports_a_missing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[Path] = []

    def broken(chart: Any, path: Any) -> None:
        raise NotImplementedError("PNG export needs a browser")

    monkeypatch.setattr("careloop.charts.spc.svg", lambda chart, path: written.append(path))
    monkeypatch.setattr("careloop.charts.spc.png", broken)
    args = ["--input", str(DATA / "tbl_07.14.csv"), "--y", "hours", "--chart", "t"]
    ok = invoke(*args, "--out", str(tmp_path / "t.svg"))
    assert ok.exit_code == 0 and written == [tmp_path / "t.svg"]
    failed = CliRunner().invoke(app, ["analyse", "spc", *args, "--out", str(tmp_path / "t.png")])
    assert failed.exit_code != 0
    # Either the CareloopError itself or the entry point's "Error: …" line.
    assert "rendering is not available" in failed.output + str(failed.exception)


def test_caveats_go_to_standard_error_as_warnings() -> None:
    result = invoke("--input", str(DATA / "syn_short5.csv"), "--y", "y", "--chart", "i")
    assert result.exit_code == 0
    assert "Warning: Part 1 has 5 useful point(s)" in result.stderr


def test_json_output_is_strict_json_with_null_for_a_missing_number() -> None:
    # An I chart has no denominators: n is missing on every point.
    result = invoke(
        "--input", str(DATA / "tbl_06.07.csv"), "--y", "cost", "--x", "weeks", "--chart", "i",
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    points = json.loads(result.stdout, parse_constant=_not_json)["points"]
    assert points[0]["n"] is None and points[0]["y"] == 310


def _not_json(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON; a missing number must be null")


def test_agg_sd_summarises_the_records_of_each_x_as_qicharts2_agg_fun_sd() -> None:
    # NA_test sample 1: sd of its five values is 0.014771594 in qicharts2
    # (tests/analysis/spc/reference/qicharts2_points.csv, case na_run_sd).
    result = invoke(
        "--input", str(DATA / "NA_test.csv"), "--y", "obs", "--x", "sample", "--chart", "run",
        "--agg", "sd", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    points = json.loads(result.stdout, parse_constant=_not_json)["points"]
    assert points[0]["y"] == pytest.approx(0.014771594, abs=1e-9)
    assert points[15]["y"] is None  # sample 16: all five values missing


def test_an_unknown_agg_prints_the_choices_and_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        sys, "argv",
        ["careloop", "analyse", "spc", "--input", str(DATA / "NA_test.csv"), "--y", "obs",
         "--x", "sample", "--agg", "std"],
    )  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        run()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Error: --agg must be one of mean, median, sum, sd; got 'std'." in err
