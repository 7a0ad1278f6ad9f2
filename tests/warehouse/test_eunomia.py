"""The whole Eunomia GiBleed set (../shared/data/eunomia_gibleed) against pandas.

Reference numbers: pandas.read_csv on the same CSV files, computed in the test.
Eunomia's own documentation gives 2,694 persons.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from careloop.warehouse import Warehouse, load_omop_csv, run_readonly_query
from tests.warehouse.engine_warnings import ENGINE_WARNINGS

pytestmark = [*ENGINE_WARNINGS, pytest.mark.slow]

GI_BLEED = 192671


@pytest.fixture(scope="module")
def eunomia(shared_data: Path) -> Path:
    folder = shared_data / "eunomia_gibleed"
    if not (folder / "person.csv").exists():
        pytest.skip("../shared/data/eunomia_gibleed is absent")
    return folder


def _answers(wh: Warehouse) -> dict[str, object]:
    co = wh.table("condition_occurrence")
    de = wh.table("drug_exposure")
    top = (
        co.group_by("condition_concept_id")
        .agg(n=co.count())
        .order_by([ibis_desc("n"), "condition_concept_id"])
        .limit(10)
        .execute()
    )
    return {
        "persons": int(wh.table("person").count().execute()),
        "gi_bleed_persons": int(
            co.filter(co.condition_concept_id == GI_BLEED).person_id.nunique().execute()
        ),
        "top_conditions": dict(
            zip(top.condition_concept_id.astype(int), top.n.astype(int), strict=True)
        ),
        "drug_exposures": int(de.count().execute()),
        "measurements": int(wh.table("measurement").count().execute()),
    }


def ibis_desc(column: str):  # small helper keeps _answers readable
    import ibis

    return ibis.desc(column)


def _expected(folder: Path) -> dict[str, object]:
    co = pd.read_csv(folder / "condition_occurrence.csv")
    counts = co.groupby("condition_concept_id").size().reset_index(name="n")
    top = counts.sort_values(["n", "condition_concept_id"], ascending=[False, True]).head(10)
    return {
        "persons": len(pd.read_csv(folder / "person.csv")),
        "gi_bleed_persons": co.loc[co.condition_concept_id == GI_BLEED, "person_id"].nunique(),
        "top_conditions": dict(zip(top.condition_concept_id, top.n, strict=True)),
        "drug_exposures": len(pd.read_csv(folder / "drug_exposure.csv")),
        "measurements": len(pd.read_csv(folder / "measurement.csv")),
    }


def test_eunomia_loads_into_duckdb_and_answers_like_pandas(eunomia, tmp_path):
    expected = _expected(eunomia)
    assert expected["persons"] == 2694  # Eunomia's documented size
    with Warehouse.connect(f"duckdb://{tmp_path / 'eunomia.duckdb'}") as wh:
        report = load_omop_csv(wh, eunomia)
        assert report.tables["person"] == 2694
        assert report.ignored_files == ("cohort_attribute.csv",)
        assert _answers(wh) == expected
        sql = run_readonly_query(
            wh,
            f"SELECT count(DISTINCT person_id) AS n FROM condition_occurrence "
            f"WHERE condition_concept_id = {GI_BLEED}",
        )
        assert int(sql.n.iloc[0]) == expected["gi_bleed_persons"]


@pytest.mark.postgres
def test_eunomia_loads_into_postgres_and_answers_like_pandas(eunomia, postgres_database):
    expected = _expected(eunomia)
    with Warehouse.connect(postgres_database) as wh:
        load_omop_csv(wh, eunomia)
        assert _answers(wh) == expected
