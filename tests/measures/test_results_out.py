"""Results leave the engine: storage with provenance, exports, FHIR, disclosure, patient lists."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from careloop.core.errors import NotFound, PermissionDenied
from careloop.measures import (
    RESULT_COLUMNS,
    builtin_measures,
    latest_runs,
    load_results,
    run_measures,
    store_run,
)
from careloop.measures.export import export_results, measure_reports
from careloop.measures.patient_lists import patient_list
from careloop.measures.sharing import share_results
from careloop.trust.audit import AuditFilter
from careloop.trust.auditing import audit_report
from careloop.trust.principal import Grant, Principal
from careloop.warehouse import Warehouse
from tests.foundation import build_installation, make_settings
from tests.measures import fixture

START, END = date(2024, 1, 1), date(2024, 3, 31)


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse.connect(f"duckdb://{tmp_path / 'w.duckdb'}") as wh:
        fixture.load(wh)
        yield wh


@pytest.fixture
def remission():
    return next(m for m in builtin_measures() if m.id == "remission-prevalence")


def test_a_stored_run_reads_back_identically_with_its_provenance(warehouse):
    run = run_measures(warehouse, builtin_measures(), start=START, end=END, by=["site"])
    written = store_run(warehouse, run)
    assert written == len(run.results)
    back = load_results(warehouse)
    pd.testing.assert_frame_equal(back, run.results, check_dtype=False)
    runs = warehouse.table("careloop_measure_run").execute()
    assert list(runs.run_id) == [run.run_id]
    state = json.loads(runs.warehouse_state.iloc[0])
    assert state["person"] == 5 and state["visit_occurrence"] == 10
    assert (
        json.loads(runs.measures.iloc[0])["remission-prevalence"]
        == run.hashes["remission-prevalence"]
    )
    assert len(load_results(warehouse, run_id=run.run_id)) == len(run.results)


def test_a_narrow_run_adds_to_the_latest_results_instead_of_replacing_them(warehouse):
    everything = run_measures(warehouse, builtin_measures(), start=START, end=END, by=["site"])
    store_run(warehouse, everything)
    first = builtin_measures()[0].id
    # One measure for the network only: the pages keep every measure, by site.
    network_only = run_measures(warehouse, builtin_measures()[:1], start=START, end=END)
    store_run(warehouse, network_only)
    shown = load_results(warehouse)
    pd.testing.assert_frame_equal(shown, everything.results, check_dtype=False)
    # One measure again by site, for a later period: that measure's rows come from it.
    later = run_measures(
        warehouse, builtin_measures()[:1], start=date(2024, 2, 1), end=END, by=["site"]
    )
    store_run(warehouse, later)
    shown = load_results(warehouse)
    assert set(shown.measure_id) == set(everything.results.measure_id)
    assert shown[shown.measure_id == first].period_start.min() == date(2024, 2, 1)
    others = shown[shown.measure_id != first].reset_index(drop=True)
    expected = everything.results[everything.results.measure_id != first].reset_index(drop=True)
    pd.testing.assert_frame_equal(others, expected, check_dtype=False)
    latest = latest_runs(warehouse)
    assert latest.runs[first] == later.run_id and len(set(latest.runs.values())) == 2


def test_exports_write_csv_parquet_and_json_with_the_result_columns(warehouse, tmp_path):
    results = run_measures(warehouse, builtin_measures(), start=START, end=END).results
    export_results(results, tmp_path / "r.csv", fmt="csv")
    export_results(results, tmp_path / "r.parquet", fmt="parquet")
    export_results(results, tmp_path / "r.json", fmt="json")
    csv = pd.read_csv(tmp_path / "r.csv", keep_default_na=False)
    assert tuple(csv.columns) == RESULT_COLUMNS
    parquet = pd.read_parquet(tmp_path / "r.parquet")
    assert list(parquet.numerator) == list(results.numerator)
    records = json.loads((tmp_path / "r.json").read_text())
    assert records[0]["period_start"] == "2024-01-01"
    assert len(records) == len(results)


def test_fhir_measure_reports_carry_the_populations_and_score(warehouse, remission):
    results = run_measures(warehouse, [remission], start=START, end=END, by=["site", "sex"]).results
    reports = measure_reports(results, measures={remission.id: remission})
    # 3 months × (network, A, B)
    assert len(reports) == 9
    jan = next(r for r in reports if r.reporter is None and str(r.period.start) == "2024-01-01")
    pops = {p.code.coding[0].code: p.count for p in jan.group[0].population}
    assert pops == {"denominator": 4, "numerator": 3, "denominator-exclusion": 0}
    assert float(jan.group[0].measureScore.value) == 0.75
    assert jan.measure.startswith("urn:careloop:measure:remission-prevalence|")
    assert jan.improvementNotation.coding[0].code == "increase"
    strata = {s.value.text: s.population[1].count for s in jan.group[0].stratifier[0].stratum}
    assert strata == {"female": 3, "male": 0}  # numerators: P2 P3 P5 female; P1 male, mild
    site_b = next(r for r in reports if r.reporter is not None and r.reporter.display == "B")
    assert site_b.reporter.identifier.value == "B"


def test_a_shared_export_suppresses_small_counts_and_a_fhir_bundle_validates(
    warehouse, remission, tmp_path
):
    results = run_measures(warehouse, [remission], start=START, end=END, by=["site"]).results
    export_results(results, tmp_path / "shared.json", fmt="fhir", shared=True)
    bundle = json.loads((tmp_path / "shared.json").read_text())
    assert bundle["resourceType"] == "Bundle"
    counts = [
        p.get("count")
        for e in bundle["entry"]
        for p in e["resource"]["group"][0]["population"]
        if p["code"]["coding"][0]["code"] != "denominator-exclusion"
    ]
    assert all(c is None or c == 0 or c > 10 for c in counts)


def test_sharing_hides_small_site_counts_and_the_complements_that_reveal_them():
    # One measure, one month, three sites and the network row:
    #   site  num  den   den − num
    #   A       3   20      17
    #   B      25   55      30
    #   C      40   75      35
    #   all    68  150      82
    # A's numerator 3 is small, so A's numerator and denominator are hidden. Alone,
    # they would follow from the network minus B and C; a second site must be hidden
    # with it. B (weight 55) is cheaper than C (75) or the network (150), so B goes:
    # A + B = 28 of 75 is all anyone learns, and A's numerator can be 0 to 20.
    rows = [("A", 3, 20), ("B", 25, 55), ("C", 40, 75), ("", 68, 150)]
    frame = pd.DataFrame(
        {
            "measure_id": "m",
            "definition_hash": "h",
            "site": [r[0] for r in rows],
            "period_start": date(2024, 1, 1),
            "period_end": date(2024, 1, 31),
            "stratum": "",
            "numerator": [r[1] for r in rows],
            "denominator": [r[2] for r in rows],
            "value": [r[1] / r[2] for r in rows],
            "excluded": 0,
            "small_denominator": False,
        }
    )
    shared = share_results(frame).set_index("site")
    assert shared.numerator.loc[["A", "B", "C", ""]].tolist() == [pd.NA, pd.NA, 40, 68]
    assert shared.denominator.loc[["A", "B", "C", ""]].tolist() == [pd.NA, pd.NA, 75, 150]
    assert shared.value.isna().loc[["A", "B", "C", ""]].tolist() == [True, True, False, False]
    assert shared.small_denominator.loc[["A", "B", "C"]].tolist() == [pd.NA, pd.NA, False]
    assert shared.suppressed.loc[["A", "B", "C", ""]].tolist() == [True, True, False, False]
    plain = share_results(frame, threshold=0).set_index("site")
    assert plain.numerator.loc[["A", "B", "C", ""]].tolist() == [3, 25, 40, 68]


def _principal(role, site_id, code):
    return Principal(user_id=None, email=f"{role}@{code}", grants=(Grant(role, site_id, code),))


@pytest.fixture
def registry(tmp_path):
    inst = build_installation(make_settings(tmp_path, None), with_users=False)
    yield inst.registry
    inst.registry.close()


def test_a_clinician_gets_the_patients_not_in_remission_and_the_read_is_audited(
    warehouse, registry, remission
):
    clinician_b = _principal("clinician", 2, "B")
    listed = patient_list(
        warehouse, registry, clinician_b, remission, site="B", period=date(2024, 3, 10)
    )
    # March at site B: P3 (last PGA moderate) and P4 (last PGA blank) are not in remission.
    assert [p.person_id for p in listed.patients] == [3, 4]
    assert [p.person_source_value for p in listed.patients] == ["p3", "p4"]
    assert (listed.period_start, listed.period_end) == (date(2024, 3, 1), date(2024, 3, 31))
    report = json.loads(
        audit_report(registry, Principal.operator(), AuditFilter(action="read"), fmt="json")
    )
    entries = report["entries"] if isinstance(report, dict) else report
    mine = [e for e in entries if e.get("category") == "measure_patient_list"]
    assert len(mine) == 1 and mine[0]["site_code"] == "B" and mine[0]["outcome"] == "success"


def test_patient_lists_are_refused_to_analysts_and_other_sites(warehouse, registry, remission):
    with pytest.raises(PermissionDenied):
        patient_list(
            warehouse,
            registry,
            _principal("analyst", None, None),
            remission,
            site="A",
            period=date(2024, 1, 1),
        )
    with pytest.raises(NotFound):
        patient_list(
            warehouse,
            registry,
            _principal("clinician", 2, "B"),
            remission,
            site="A",
            period=date(2024, 1, 1),
        )


def test_a_visit_measure_lists_the_people_of_the_visits_that_missed(warehouse, registry):
    growth = next(m for m in builtin_measures() if m.id == "growth-assessed")
    listed = patient_list(
        warehouse,
        registry,
        _principal("site_lead", 1, "A"),
        growth,
        site="A",
        period=date(2024, 1, 20),
    )
    # January at A: V1 (P1) complete, V2 (P2) lacks a weight.
    assert [p.person_id for p in listed.patients] == [2]


def test_sharing_protects_strata_against_their_unstratified_total():
    # Network: 30 of 50; female 3 of 20, male 27 of 30 (30 − 27 = 3 not in the
    # numerator): both strata have a small count, so both are hidden; each can
    # move by one against the other (female 4 of 21, male 26 of 29 fits the
    # network too), and only the network row is published.
    rows = [("", 30, 50), ("sex=female", 3, 20), ("sex=male", 27, 30)]
    frame = pd.DataFrame(
        {
            "measure_id": "m",
            "definition_hash": "h",
            "site": "",
            "period_start": date(2024, 1, 1),
            "period_end": date(2024, 1, 31),
            "stratum": [r[0] for r in rows],
            "numerator": [r[1] for r in rows],
            "denominator": [r[2] for r in rows],
            "value": [r[1] / r[2] for r in rows],
            "excluded": 0,
            "small_denominator": False,
        }
    )
    shared = share_results(frame)
    assert shared.stratum.tolist() == ["", "sex=female", "sex=male"]
    assert shared.numerator.tolist() == [30, pd.NA, pd.NA]
    assert shared.denominator.tolist() == [50, pd.NA, pd.NA]
    assert shared.suppressed.tolist() == [False, True, True]


@pytest.mark.postgres
def test_results_are_stored_and_read_back_on_postgres(postgres_database):
    with Warehouse.connect(postgres_database) as wh:
        fixture.load(wh)
        run = run_measures(wh, builtin_measures(), start=START, end=END, by=["site"])
        assert store_run(wh, run) == len(run.results)
        back = load_results(wh, run_id=run.run_id)
    pd.testing.assert_frame_equal(back, run.results, check_dtype=False)
