"""`careloop analyse risk …` and `careloop analyse qual …` from the command line."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from careloop.analysis.qualitative import Code, Codebook, Document, QualitativeProject, write_qdpx
from careloop.cli.main import app


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["analyse", *args], catch_exceptions=False)


def test_risk_samplesize_prints_the_binary_worked_example_as_json():
    # Riley et al. binary example (pmsampsize test 4.1): 662 participants, criterion 2.
    result = invoke(
        "risk",
        "samplesize",
        "--outcome",
        "binary",
        "--parameters",
        "24",
        "--prevalence",
        "0.174",
        "--r2-cox-snell",
        "0.288",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["n"] == 662 and data["decided_by"] == 2
    assert [c["n"] for c in data["criteria"]] == [623, 662, 221]


def test_risk_samplesize_table_includes_the_summary():
    result = invoke(
        "risk",
        "samplesize",
        "--outcome",
        "survival",
        "--parameters",
        "30",
        "--r2-cox-snell",
        "0.051",
        "--rate",
        "0.065",
        "--timepoint",
        "2",
        "--meanfup",
        "2.07",
    )
    assert result.exit_code == 0
    assert "5,143 participants" in result.output


def test_risk_samplesize_refuses_a_missing_prevalence():
    result = CliRunner().invoke(
        app,
        [
            "analyse",
            "risk",
            "samplesize",
            "--outcome",
            "binary",
            "--parameters",
            "5",
            "--r2-cox-snell",
            "0.1",
        ],
    )
    assert result.exit_code != 0
    assert "Error: prevalence is required" in result.output


def test_qual_kappa_with_one_coder_only_fails_clearly(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"ana": [1, 2, 1], "ben": [None, None, None]}).to_csv(path, index=False)
    result = CliRunner().invoke(
        app, ["analyse", "qual", "kappa", "--input", str(path), "--a", "ana", "--b", "ben"]
    )
    assert result.exit_code != 0
    assert "one coder only" in result.output


def test_risk_fit_validates_and_saves_the_model(tmp_path):
    rng = np.random.default_rng(2)
    n = 250
    df = pd.DataFrame({"age": rng.normal(60, 10, n), "sex": rng.choice(["F", "M"], n)})
    lp = -2 + 0.08 * (df["age"] - 60) + 0.8 * (df["sex"] == "M")
    df["event"] = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    csv = tmp_path / "cohort.csv"
    df.to_csv(csv, index=False)
    saved = tmp_path / "model.json"
    result = invoke(
        "risk",
        "fit",
        "--input",
        str(csv),
        "--outcome",
        "event",
        "--predictors",
        "age,sex",
        "--penalty",
        "firth",
        "--bootstrap",
        "10",
        "--save",
        str(saved),
    )
    assert result.exit_code == 0, result.output
    assert "Internal validation" in result.output and "sex=M" in result.output
    model = json.loads(saved.read_text())
    assert model["kind"] == "careloop.risk_model" and model["n"] == n


def test_qual_kappa_and_alpha_from_csv(tmp_path):
    wide = pd.DataFrame(
        {
            "ana": [1, 2, 3, 1, 2, 3, 1, 1, 2, 3, 3, 2, 1, 2],
            "ben": [1, 2, 3, 2, 2, 3, 1, 1, 3, 3, 2, 2, 1, 1],
        }
    )
    path = tmp_path / "codes.csv"
    wide.to_csv(path, index=False)
    kappa = invoke(
        "qual", "kappa", "--input", str(path), "--a", "ana", "--b", "ben", "--format", "json"
    )
    # sklearn.metrics.cohen_kappa_score on these codes: 0.5692307692
    assert json.loads(kappa.output)["kappa"] == pytest.approx(0.5692307692)
    alpha = invoke(
        "qual",
        "alpha",
        "--input",
        str(path),
        "--coders",
        "ana,ben",
        "--bootstrap",
        "0",
        "--format",
        "json",
    )
    assert -1 <= json.loads(alpha.output)["alpha"] <= 1
    # Krippendorff (2011) worked example in long form: nominal alpha 0.743
    nan = np.nan
    matrix = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    long = pd.DataFrame(
        [
            {"unit": j, "coder": i, "value": v}
            for i, row in enumerate(matrix)
            for j, v in enumerate(row)
            if not np.isnan(v)
        ]
    )
    long_path = tmp_path / "long.csv"
    long.to_csv(long_path, index=False)
    table = invoke(
        "qual",
        "alpha",
        "--input",
        str(long_path),
        "--unit",
        "unit",
        "--coder",
        "coder",
        "--value",
        "value",
        "--bootstrap",
        "0",
    )
    assert "0.743" in table.output


def test_qual_frequencies_and_agreement_read_a_qdpx_project(tmp_path):
    text = "Parent A: The bus takes two hours.\nParent B: Nobody calls back.\n"
    p = QualitativeProject(
        "p",
        (Document.from_transcript("FG", text, metadata={"site": "A"}),),
        Codebook((Code("Travel"), Code("Responsiveness"))),
    )
    for coder in ("ana", "ben"):
        p = p.code("FG", "The bus takes two hours", "Travel", coder=coder)
    p = p.code("FG", "Nobody calls back", "Responsiveness", coder="ana")
    path = write_qdpx(p, tmp_path / "p.qdpx")
    freq = invoke("qual", "frequencies", "--project", str(path), "--by", "site", "--format", "json")
    rows = {r["code"]: r["segments"] for r in json.loads(freq.output)}
    assert rows == {"Responsiveness": 1, "Travel": 2}
    agree = invoke("qual", "agreement", "--project", str(path), "--format", "json")
    by_code = {r["code"]: r for r in json.loads(agree.output)}
    assert by_code["Travel"]["kappa"] == pytest.approx(1.0)
    assert by_code["Responsiveness"]["percent_agreement"] == pytest.approx(50.0)
