"""Measure results that leave the installation (`--shared`): no small count is printed.

Runs the real command on a random warehouse (tests/measures/generated.py)
whose five sites range from about 180 patients down to about 12, so large and
small counts sit side by side in every table.
"""

from __future__ import annotations

from io import StringIO

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from careloop.cli import measures as measures_cli
from careloop.cli.main import CareloopGroup
from careloop.interop import Warehouse
from tests.measures import generated

runner = CliRunner()
THRESHOLD = 10


@pytest.fixture
def app():
    app = typer.Typer(cls=CareloopGroup)

    @app.callback()
    def _main() -> None:
        pass

    measures_cli.register(app)
    return app


@pytest.fixture(scope="module")
def generated_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    with Warehouse.connect(f"duckdb://{folder / 'warehouse.duckdb'}") as wh:
        generated.load(wh, persons=300, seed=2)
    generated.write_measures(folder / "measures")
    return folder


def _run(app, folder, *options: str) -> pd.DataFrame:
    result = runner.invoke(
        app,
        [
            "measures",
            "run",
            *options,
            *(x for m in generated.MEASURES for x in ("--measure", m)),
            "--from",
            "2023-01-01",
            "--to",
            "2023-12-31",
            "--format",
            "csv",
            "--no-store",
            "--measures-dir",
            str(folder / "measures"),
            "--data-dir",
            str(folder),
        ],
        env={"CARELOOP_WAREHOUSE_URL": "", "CARELOOP_MEASURES_DIR": ""},
    )
    assert result.exit_code == 0, result.output
    counts = {c: [""] for c in ("numerator", "denominator", "excluded", "value")}
    return pd.read_csv(StringIO(result.stdout), keep_default_na=False, na_values=counts)


def small_published(frame: pd.DataFrame, threshold: int = THRESHOLD) -> list[str]:
    """Every printed count from 1 to the threshold (numerator, denominator, excluded,
    and the denominator minus the numerator where both are printed)."""
    found = []
    for row in frame.itertuples(index=False):
        counts = {"numerator": row.numerator, "denominator": row.denominator}
        counts["excluded"] = row.excluded
        if pd.notna(row.numerator) and pd.notna(row.denominator):
            counts["denominator - numerator"] = row.denominator - row.numerator
        for name, value in counts.items():
            if pd.notna(value) and 1 <= value <= threshold:
                found.append(
                    f"{row.measure_id} {row.period_start} {row.site!r} {row.stratum!r} {name}={value}"
                )
    return found


@pytest.mark.parametrize("by", [["sex"], ["age_band"], ["site"], ["site", "sex"]])
def test_a_shared_run_prints_no_count_from_one_to_ten(app, generated_dir, by):
    plain = _run(app, generated_dir, *(x for s in by for x in ("--by", s)))
    assert small_published(plain), "the generated data must have small counts to hide"
    shared = _run(app, generated_dir, *(x for s in by for x in ("--by", s)), "--shared")
    assert small_published(shared) == []
