"""`careloop analyse trial|cem|rdd` end to end on CSV files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careloop.cli.main import run


def careloop(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["careloop", *args])
    code = 0
    try:
        run()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cem_json_matches_published(test_data: Path, monkeypatch, capsys) -> None:
    csv = str(test_data / "cem_lalonde" / "LL.csv")
    code, out, err = careloop(
        ["analyse", "cem", "--input", csv, "--treatment", "treated", "--outcome", "re78",
         "--format", "json"],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    # Iacus, King & Porro, JSS 30(9) 2009 (inst/doc/JSS-paper.tex): Matched 222/163, SATT 550.962564.
    assert (data["n_matched_control"], data["n_matched_treated"]) == (222, 163)
    assert data["att"]["estimate"] == pytest.approx(550.962564, abs=1e-6)


def test_cem_table_with_cutpoints(test_data: Path, monkeypatch, capsys) -> None:
    csv = str(test_data / "cem_lalonde" / "LeLonde.csv")
    code, out, err = careloop(
        ["analyse", "cem", "--input", csv, "--treatment", "treated", "--drop", "re78",
         "--cutpoints", "age=10", "--group", "q1=strongly agree|agree;neutral|no opinion"],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "Matched" in out and "L1" in out


def test_rdd_table_and_figure(test_data: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    csv = str(test_data / "rdrobust_senate" / "rdrobust_senate.csv")
    html = tmp_path / "rd.html"
    code, out, err = careloop(
        ["analyse", "rdd", "--input", csv, "--outcome", "vote", "--running", "margin",
         "--out", str(html)],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 0, err
    # Calonico, Cattaneo, Farrell & Titiunik, Stata Journal 17(2) 2017: 7.414, robust CI 4.094–10.919.
    assert "7.414" in out and "4.094 to 10.92" in out
    assert "Density (manipulation) test" in out
    page = html.read_text()
    assert "Plotly.newPlot" in page
    # Opens offline: plotly.js is in the file, nothing is fetched from a CDN.
    assert "<script src=" not in page and len(page) > 1_000_000


def test_rdd_too_few_points_is_a_clear_error(test_data: Path, monkeypatch, capsys) -> None:
    csv = str(test_data / "rdrobust_senate" / "rdrobust_senate.csv")
    code, _out, err = careloop(
        ["analyse", "rdd", "--input", csv, "--outcome", "vote", "--running", "margin",
         "--h", "0.3"],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 2
    assert "Error: The bandwidth h" in err and "Traceback" not in err


def test_trial_compare_binary_with_clusters(tmp_path: Path, monkeypatch, capsys) -> None:
    rng = np.random.default_rng(1)
    site = np.repeat(np.arange(20), 30)
    arm = np.where(site % 2 == 0, "card-b", "card-a")
    y = (rng.uniform(size=site.size) < np.where(arm == "card-b", 0.35, 0.25)).astype(int)
    csv = tmp_path / "trial.csv"
    pd.DataFrame({"y": y, "arm": arm, "site": site}).to_csv(csv, index=False)
    code, out, err = careloop(
        ["analyse", "trial", "compare", "--input", str(csv), "--outcome", "y", "--arm", "arm",
         "--cluster", "site", "--format", "json"],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["intervention"] == "card-b"
    assert 0 <= data["probability_better"] <= 1
    assert data["regression"]["n_clusters"] == 20
    assert data["regression"]["scale"] == "odds ratio"


def test_trial_monitor_and_sample_size(monkeypatch, capsys) -> None:
    code, out, err = careloop(
        ["analyse", "trial", "monitor", "--looks", "3", "--kind", "obrien-fleming", "--format",
         "json"],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 0, err
    z = [row["z_boundary"] for row in json.loads(out)["boundaries"]]
    assert z == pytest.approx([3.471, 2.454, 2.004], abs=5e-4)
    code, out, err = careloop(
        ["analyse", "trial", "sample-size", "--p0", "0.2", "--p1", "0.3"], monkeypatch, capsys
    )
    assert code == 0, err
    assert "294 per arm" in out  # R power.prop.test: n = 293.15


def test_trial_allocate_is_reproducible(tmp_path: Path, monkeypatch, capsys) -> None:
    csv = tmp_path / "units.csv"
    pd.DataFrame({"id": [f"p{i}" for i in range(10)], "site": ["a", "b"] * 5}).to_csv(
        csv, index=False
    )
    args = ["analyse", "trial", "allocate", "--input", str(csv), "--unit-id", "id", "--arms",
            "usual,new", "--seed", "99", "--allocation", "stratified", "--stratum", "site",
            "--format", "json"]  # fmt: skip
    code, first, err = careloop(args, monkeypatch, capsys)
    assert code == 0, err
    code, second, err = careloop(args, monkeypatch, capsys)
    assert first == second
    record = json.loads(first)
    assert len(record["assignments"]) == 10
    assert record["design"]["seed"] == 99
