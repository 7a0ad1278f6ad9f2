"""Audit-and-feedback reports: the site against the network, its gaps, its card feedback."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from careloop.core.errors import InputError
from careloop.measures.patient_lists import PatientList, PatientListEntry
from careloop.practice.feedback.audit_feedback import audit_feedback_report


def results() -> pd.DataFrame:
    """Six months, five sites of 200 patients: site E is planted far below the others (20 %)."""
    rng = np.random.default_rng(5)
    rows = []
    for month in pd.date_range("2026-01-01", periods=6, freq="MS"):
        total_n = total_d = 0
        for site, p in zip("ABCDE", (0.6, 0.62, 0.58, 0.61, 0.2), strict=True):
            n = int(rng.binomial(200, p))
            rows.append(
                {
                    "measure_id": "m",
                    "site": site,
                    "stratum": "",
                    "period_start": month.date(),
                    "numerator": n,
                    "denominator": 200,
                }
            )
            total_n, total_d = total_n + n, total_d + 200
        rows.append(
            {
                "measure_id": "m",
                "site": "",
                "stratum": "",
                "period_start": month.date(),
                "numerator": total_n,
                "denominator": total_d,
            }
        )
    return pd.DataFrame(rows)


def events() -> pd.DataFrame:
    base = {"ko_identifier": "k", "ko_version": "1.0.0", "shown": True, "site_code": "E"}
    return pd.DataFrame(
        [
            {
                **base,
                "user_ref": "Practitioner/1",
                "outcome": "overridden",
                "override_display": "Patient or family declined",
            },
            {
                **base,
                "user_ref": "Practitioner/1",
                "outcome": "overridden",
                "override_display": "Patient or family declined",
            },
            {**base, "user_ref": "Practitioner/1", "outcome": "accepted", "override_display": None},
            {**base, "user_ref": "Practitioner/2", "outcome": None, "override_display": None},
            {
                **base,
                "site_code": "A",
                "user_ref": "Practitioner/9",
                "outcome": "accepted",
                "override_display": None,
            },
        ]
    )


def test_a_site_far_below_the_network_is_flagged_on_the_funnel():
    report = audit_feedback_report(results(), measure_id="m", site="E", card_events=events())
    assert report.period_start == date(2026, 6, 1)
    assert report.site_flag == "below 99.8%"
    assert report.site_value < 30 < report.network_value
    flags = report.funnel.units.set_index("unit")["flag"]
    assert [u for u, f in flags.items() if f.startswith("below")] == ["E"]
    assert len(report.trend) == 6 and (report.trend["site"] < report.trend["network"]).all()


def test_card_feedback_is_summarised_by_clinician_of_the_site_only():
    report = audit_feedback_report(results(), measure_id="m", site="E", card_events=events())
    table = report.clinicians.set_index("user_ref")
    assert list(table.index) == ["Practitioner/1", "Practitioner/2"]
    first = table.loc["Practitioner/1"]
    assert (first["cards_shown"], first["accepted"], first["overridden"]) == (3, 1, 2)
    assert first["top_override_reason"] == "Patient or family declined"
    assert table.loc["Practitioner/2", "no_feedback"] == 1


def test_the_gap_list_appears_only_when_given():
    gaps = PatientList(
        "m",
        "E",
        date(2026, 6, 1),
        date(2026, 6, 30),
        "gap",
        (PatientListEntry(7, "pseudo-7"), PatientListEntry(9, "pseudo-9")),
    )
    with_gaps = audit_feedback_report(results(), measure_id="m", site="E", gaps=gaps)
    assert with_gaps.to_dict()["gaps"] == ["pseudo-7", "pseudo-9"]
    page = with_gaps.to_html()
    assert "pseudo-9" in page and "<svg" in page and "<script" not in page
    without = audit_feedback_report(results(), measure_id="m", site="E")
    assert without.to_dict()["gaps"] is None
    assert "pseudo-9" not in without.to_html()


def test_the_page_escapes_what_clinicians_and_patients_typed():
    hostile = "<img src=x onerror=alert(1)>"
    card_events = events()
    card_events.loc[card_events.index[0], "override_reason"] = hostile
    gaps = PatientList(
        "m", "E", date(2026, 6, 1), date(2026, 6, 30), "gap", (PatientListEntry(7, hostile),)
    )
    page = audit_feedback_report(
        results(), measure_id="m", site="E", card_events=card_events, gaps=gaps
    ).to_html()
    assert hostile not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<h2>Decision-support cards</h2>\n<table" in page and "<script" not in page


def test_an_unknown_site_or_measure_is_refused():
    with pytest.raises(InputError, match="for site 'Z'"):
        audit_feedback_report(results(), measure_id="m", site="Z")
    with pytest.raises(InputError, match="No results of measure 'x'"):
        audit_feedback_report(results(), measure_id="x", site="A")


def test_the_command_writes_the_report(tmp_path):
    from typer.testing import CliRunner

    from careloop.cli.main import app
    from tests.foundation import build_installation, make_settings

    inst = build_installation(make_settings(tmp_path, None), with_users=False)
    inst.registry.close()
    results().to_csv(tmp_path / "r.csv", index=False)
    out = CliRunner().invoke(
        app,
        [
            "cds",
            "feedback-report",
            "--site",
            "E",
            "--measure",
            "m",
            "--results",
            str(tmp_path / "r.csv"),
            "--data-dir",
            str(inst.settings.data_dir),
        ],
    )
    assert out.exit_code == 0, out.output
    assert '"site_flag": "below 99.8%"' in out.output
