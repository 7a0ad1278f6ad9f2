"""`careloop analyse its` end to end on the Lopez Bernal et al. Sicily data."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from careloop.cli.main import app, run


def invoke(args: list[str]) -> tuple[int, str, str]:
    """Run a command that should succeed through Typer's test runner."""
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def careloop(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Run through the console-script entry point, which turns errors into `Error: …`."""
    monkeypatch.setattr(sys, "argv", ["careloop", *args])
    code = 0
    try:
        run()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def sicily_csv(test_data: Path) -> str:
    return str(test_data / "its_sicily" / "sicily.csv")


def test_seasonal_quasipoisson_table_and_png(sicily_csv, tmp_path):
    from PIL import Image

    png = tmp_path / "its.png"
    code, out, err = invoke(
        ["analyse", "its", "--input", sicily_csv, "--outcome", "aces", "--time", "time",
         "--intervention", "smokban", "--exposure", "stdpop", "--family", "quasipoisson",
         "--seasonality", "month:12:2", "--per", "100000", "--out", str(png)],
    )  # fmt: skip
    assert code == 0, err
    # R (tests/analysis/its/reference/sicily_reference.Rout, model3_seasonal):
    # smokban 0.885071547243928 (0.839400955658534 to 0.933227009643085)
    assert "rate ratio 0.885 (95% CI 0.839 to 0.933" in out
    assert "0.8851" in out and "0.8394 to 0.9332" in out
    assert "Caveats:" in out
    image = Image.open(io.BytesIO(png.read_bytes()))
    assert image.format == "PNG" and image.width > 1000


def test_json_with_newey_west_and_svg(sicily_csv, tmp_path):
    svg = tmp_path / "its.svg"
    code, out, err = invoke(
        ["analyse", "its", "--input", sicily_csv, "--outcome", "aces", "--time", "time",
         "--intervention", "smokban", "--exposure", "stdpop", "--autocorrelation", "newey-west",
         "--lags", "3", "--format", "json", "--out", str(svg)],
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    # R: model1_neweywest3 smokban 0.894376508018192 (0.84001180370156 to 0.952259640364539)
    assert data["step"]["estimate"] == pytest.approx(0.894376508018192, abs=1e-6)
    assert data["step"]["ci_low"] == pytest.approx(0.84001180370156, abs=1e-6)
    assert data["step"]["ci_high"] == pytest.approx(0.952259640364539, abs=1e-6)
    assert len(data["series"]) == 59
    assert svg.read_text().startswith("<svg")


def test_two_phases_with_slope_change(tmp_path, sicily_csv):
    import pandas as pd

    df = pd.read_csv(sicily_csv)
    df["phase2"] = (df["time"] >= 49).astype(int)
    path = tmp_path / "phases.csv"
    df.to_csv(path, index=False)
    code, out, err = invoke(
        ["analyse", "its", "--input", str(path), "--outcome", "aces", "--time", "time",
         "--intervention", "smokban", "--intervention", "phase2", "--exposure", "stdpop",
         "--slope-change", "--format", "json"],
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    # R: phases phase2 1.12042870703158 and phase2:I(time - 48) 0.988826448515905
    assert [p["intervention"] for p in data["interventions"]] == ["smokban", "phase2"]
    assert data["interventions"][1]["step"]["estimate"] == pytest.approx(1.12042870703158, abs=1e-6)
    assert data["interventions"][1]["slope"]["estimate"] == pytest.approx(
        0.988826448515905, abs=1e-6
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--outcome", "nope"], "not in the data"),
        (["--family", "weibull"], "--family must be one of"),
        (["--seasonality", "month-12"], "COLUMN:PERIOD:PAIRS"),
        (["--out", "chart.pdf"], "must end in .png or .svg"),
        (["--autocorrelation", "ar1"], "gaussian"),
    ],
)
def test_errors_are_one_clear_line(sicily_csv, monkeypatch, capsys, extra, message):
    args = ["analyse", "its", "--input", sicily_csv, "--outcome", "aces", "--time", "time",
            "--intervention", "smokban"]  # fmt: skip
    # later options win: the extra ones replace the defaults above
    code, _, err = careloop([*args, *extra], monkeypatch, capsys)
    assert code == 2
    assert err.startswith("Error: ")
    assert message in err
    assert "Traceback" not in err


def test_missing_input_file(tmp_path, monkeypatch, capsys):
    code, _, err = careloop(
        ["analyse", "its", "--input", str(tmp_path / "none.csv"), "--outcome", "y", "--time", "t",
         "--intervention", "i"],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 2 and "does not exist" in err


def test_csv_prints_the_fitted_and_counterfactual_series(sicily_csv):
    code, out, err = invoke(
        ["analyse", "its", "--input", sicily_csv, "--outcome", "aces", "--time", "time",
         "--intervention", "smokban", "--exposure", "stdpop", "--family", "quasipoisson",
         "--format", "csv"],
    )  # fmt: skip
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("time,observed,fitted,fitted_low,fitted_high,counterfactual")
    assert len(lines) == 60  # header and 59 months
