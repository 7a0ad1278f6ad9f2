"""`careloop report community|cycle ID`: the report of a learning community or cycle on real data.

A real installation (tests/foundation.py, with users) and the small community
of tests/community/helpers.py: clinician@A facilitates, clinician@B, the
patient of A, the carer of B and the network analyst are members; B's site
lead is not. One cycle changes care at site A on 2024-01-01 and is studied
on a stored measure run (2023–2024, by site, with the network's rows) in
which remission rises at A after the change.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape as html_escape
from sqlalchemy import update
from typer.testing import CliRunner

from careloop.cli.main import app
from careloop.community import (
    CycleInput,
    CycleMeasureInput,
    add_cycle,
    add_findings,
    add_priority,
    list_findings,
    maturity_profile,
    measure_improvements,
    nasss_profile_of,
    record_act,
    record_decision,
    record_maturity,
    record_nasss,
    show_cycle,
    study_cycle,
    study_of,
)
from careloop.community.log import NASSS_DOMAINS, Links
from careloop.community.maturity import REQUIRED as MATURITY_REQUIRED
from careloop.core.errors import ConfigurationError, NotFound, PermissionDenied
from careloop.measures import MeasureRun, load_results, store_run
from careloop.practice.community_reports import (
    change_words,
    community_report,
    cycle_report,
    effect_reading,
    maturity_reading,
    nasss_reading,
    render_html,
    write_report,
)
from careloop.store.models import NassAssessment
from careloop.warehouse.connection import Warehouse, warehouse_opener
from careloop.web.app import create_app
from tests.charts._svg_marks import mark_groups, texts
from tests.community.helpers import KNOWN_MEASURES, audit_rows, make_community, principal
from tests.community.qualitative_fixture import focus_group
from tests.foundation import PASSWORD, Installation, build_installation, make_settings

CHANGE = date(2024, 1, 1)
TITLE = "Pre-visit planning at A"
FAILURE = "Text reminders reached too few families"


def _results() -> pd.DataFrame:
    """Two years by site; remission's odds at A rise 2.5-fold from the change month."""
    rng = np.random.default_rng(11)
    months = pd.date_range("2023-01-01", periods=24, freq="MS")
    rows = []
    for measure, base, step in (
        ("remission-prevalence", 0.0, 2.5),
        ("steroid-exposure", -1.0, 1.0),
    ):
        for site in ("A", "B"):
            for m in months:
                after = site == "A" and m.date() >= CHANGE
                logit = base + math.log(step) * after
                n = int(rng.integers(80, 100))
                rows.append(
                    (measure, site, m.date(), int(rng.binomial(n, 1 / (1 + math.exp(-logit)))), n)
                )
    frame = pd.DataFrame(
        rows, columns=["measure_id", "site", "period_start", "numerator", "denominator"]
    )
    network = frame.groupby(["measure_id", "period_start"], as_index=False)[
        ["numerator", "denominator"]
    ].sum()
    frame = pd.concat([frame, network.assign(site="")], ignore_index=True)
    return frame.assign(
        definition_hash="h",
        period_end=[(pd.Timestamp(p) + pd.offsets.MonthEnd(0)).date() for p in frame.period_start],
        stratum="",
        value=frame.numerator / frame.denominator,
        excluded=0,
        small_denominator=False,
    )


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    installation = build_installation(make_settings(tmp_path_factory.mktemp("reports"), None))
    run = MeasureRun(
        run_id="r1",
        run_at=datetime(2025, 1, 5, tzinfo=UTC),
        start=date(2023, 1, 1),
        end=date(2024, 12, 31),
        by=("site",),
        results=_results(),
        hashes={"remission-prevalence": "h", "steroid-exposure": "h"},
    )
    with Warehouse.from_settings(installation.settings) as wh:
        store_run(wh, run)
    try:
        yield installation
    finally:
        installation.registry.close()


@pytest.fixture(scope="module")
def community(inst: Installation) -> dict[str, int]:
    """The community with a priority, a studied cycle with Act, and a logged failure."""
    cid = make_community(inst).community.id
    facilitator = principal(inst, "clinician@A")
    add_priority(
        inst.registry, principal(inst, "patient@A"), cid, kind="problem",
        title="Children miss school during flares",
    )  # fmt: skip
    cycle = add_cycle(
        inst.registry,
        facilitator,
        cid,
        CycleInput(
            title=TITLE,
            kind="process",
            aim="Remission at A from 50% to 65% by the end of 2024",
            predictions="Remission rises within six months",
            plan_who="Site A's QI team",
            plan_sites=("A",),
            do_start=CHANGE,
            do_sites=("A",),
            do_what="A nurse reviews each child's record the week before the visit.",
            determination_kind="qi_determination",
            determination_ref="QI-2023-12",
            measures=(
                CycleMeasureInput("remission-prevalence", "outcome"),
                CycleMeasureInput("steroid-exposure", "balancing"),
            ),
        ),
        known_measures=KNOWN_MEASURES,
    )
    record_act(
        inst.registry, facilitator, cycle.id, decision="adopt",
        rationale="Remission rose and steroid use did not",
    )  # fmt: skip
    record_decision(
        inst.registry, facilitator, cid, title="Stop the text reminders", kind="reflection",
        did_not_work=FAILURE, why="Half the numbers on file were out of date",
        links=Links(cycles=(cycle.id,)),
    )  # fmt: skip
    return {"community": cid, "cycle": cycle.id}


def _opener(inst: Installation):  # type: ignore[no-untyped-def]
    return warehouse_opener(inst.settings)


def test_the_community_report_tells_the_whole_story_naming_people_by_display_name_only(
    inst, community
):
    report = community_report(
        inst.registry, _opener(inst), principal(inst, "clinician@A"), community["community"]
    )
    html = render_html(report)
    assert "Fewer children on steroids" in html  # purpose
    assert re.search(r"<td>Patients</td><td>1</td><td>patient</td>", html)
    assert re.search(r"<td>Carers</td><td>1</td><td>carer</td>", html)
    assert "a majority of the votes cast, with a quorum" in html
    assert "Children miss school during flares" in html
    assert f"Cycle {community['cycle']}: {TITLE}" in html
    assert '<strong class="change-date">2024-01-01</strong>' in html
    assert "the week before the visit." in html and "visit.." not in html
    assert "Remission rose and steroid use did not" in html  # Act
    assert FAILURE in html and 'class="decision failure"' in html
    assert "@example.org" not in html  # no member's e-mail address
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")


def test_the_effect_in_the_report_is_the_one_the_study_function_gives(inst, community):
    report = cycle_report(
        inst.registry, _opener(inst), principal(inst, "clinician@B"), community["cycle"]
    )
    with Warehouse.from_settings(inst.settings, read_only=True) as wh:
        results = load_results(wh)
    view = show_cycle(inst.registry, inst.operator, community["cycle"])
    expected = study_cycle(view, results, measure_improvements()).measure("remission-prevalence")
    shown = report.cycles[0].measures[0]
    assert shown.measure_id == "remission-prevalence"
    assert shown.study.effect == expected.effect
    html = render_html(report)
    e = expected.effect
    assert e is not None and e.ci_low > 1  # the planted rise is found
    assert f'<td class="estimate">{e.estimate:.2f}</td>' in html
    assert f'<td class="ci">{e.ci_low:.2f} to {e.ci_high:.2f}</td>' in html
    assert effect_reading(expected) in html
    assert "an improvement" in effect_reading(expected)


def test_each_chart_has_its_phase_line_at_the_change_date(inst, community):
    report = cycle_report(
        inst.registry, _opener(inst), principal(inst, "clinician@A"), community["cycle"]
    )
    for m in report.cycles[0].measures:
        points = m.study.chart.points
        first_after = points[points.x >= pd.Timestamp(CHANGE)].iloc[0]
        assert first_after.part != points.iloc[0].part  # a new phase starts at the change
        svg = m.chart_svg
        assert texts(svg, "annotation_labels") == [TITLE]
        line_x = _translate_x(mark_groups(svg, "annotations")[0])
        # The points layer draws one symbol per month; the change month's is the 13th.
        point_xs = [
            _translate_x(p) for p in re.findall(r"<path[^>]*>", mark_groups(svg, "points")[0])
        ]
        assert line_x == pytest.approx(point_xs[12], abs=0.6)
    assert 'data-phase-start="2024-01-01"' in render_html(report)


def _translate_x(fragment: str) -> float:
    found = re.search(r'transform="translate\(([-\d.]+),', fragment)
    assert found is not None, fragment[:200]
    return float(found.group(1))


def test_a_patient_member_gets_the_story_without_measure_results(inst, community):
    report = community_report(
        inst.registry, _opener(inst), principal(inst, "patient@A"), community["community"]
    )
    section = report.cycles[0]
    assert section.study is None and section.measures == ()
    assert "shown to staff only" in section.withheld
    html = render_html(report)
    assert "<svg" not in html and TITLE in html


def test_a_non_member_is_refused_clearly_nothing_is_written_and_the_refusal_is_audited(
    inst, community, tmp_path
):
    out = tmp_path / "report.html"
    outsider = principal(inst, "site_lead@B")
    with pytest.raises(PermissionDenied, match="Only members of the learning community"):
        write_report(
            community_report(inst.registry, _opener(inst), outsider, community["community"]), out
        )
    with pytest.raises(PermissionDenied):
        cycle_report(inst.registry, _opener(inst), outsider, community["cycle"])
    assert not out.exists()
    refused = [
        r for r in audit_rows(inst, "community.report") if r[0] == inst.emails["site_lead@B"]
    ]
    assert [(r[1], r[2]) for r in refused] == [
        ("denied", {"report": "community", "community": community["community"]}),
        ("denied", {"report": "cycle", "cycle": community["cycle"]}),
    ]


def test_a_members_report_is_audited_as_a_success(inst, community):
    community_report(
        inst.registry, _opener(inst), principal(inst, "carer@B"), community["community"]
    )
    assert ("carer.b@example.org", "success") in [
        (r[0], r[1]) for r in audit_rows(inst, "community.report")
    ]


def test_unknown_ids_are_refused_with_where_to_find_the_right_one(inst):
    lead = principal(inst, "clinician@A")
    with pytest.raises(NotFound, match=r"no learning community 9999.*careloop community list"):
        community_report(inst.registry, _opener(inst), lead, 9999)
    with pytest.raises(NotFound, match="9999"):
        cycle_report(inst.registry, _opener(inst), lead, 9999)


def test_a_pdf_without_chromium_is_refused_naming_the_setting_before_anything_is_written(
    inst, community, tmp_path
):
    report = community_report(
        inst.registry, _opener(inst), principal(inst, "clinician@A"), community["community"]
    )
    out = tmp_path / "r.html"
    with pytest.raises(ConfigurationError, match="CARELOOP_CHROMIUM"):
        write_report(report, out, pdf=tmp_path / "r.pdf", chromium=tmp_path / "no-chromium")
    assert not out.exists()


def _chromium() -> Path:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        if os.environ.get("CARELOOP_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail("CARELOOP_TEST_REQUIRE_BROWSER=1 but no chromium is installed")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return Path(found)


def test_the_report_prints_to_a_pdf_with_headless_chromium(inst, community, tmp_path):
    chromium = _chromium()
    report = cycle_report(
        inst.registry, _opener(inst), principal(inst, "clinician@A"), community["cycle"]
    )
    written = write_report(
        report, tmp_path / "cycle.html", pdf=tmp_path / "cycle.pdf", chromium=chromium
    )
    data = written.pdf.read_bytes()
    assert data[:4] == b"%PDF" and len(data) > 1024


def test_the_command_writes_the_report_and_refuses_an_unknown_id(inst, community, tmp_path):
    runner = CliRunner()
    data = ["--data-dir", str(inst.settings.data_dir)]
    out = tmp_path / "community.html"
    done = runner.invoke(
        app, ["report", "community", str(community["community"]), "--out", str(out), *data]
    )
    assert done.exit_code == 0, done.output
    assert TITLE in out.read_text() and "<svg" in out.read_text()
    missing = tmp_path / "none.html"
    refused = runner.invoke(app, ["report", "cycle", "9999", "--out", str(missing), *data])
    assert refused.exit_code == 2 and "Error:" in refused.output and "9999" in refused.output
    assert not missing.exists()


def _signed_in(client: TestClient, email: str) -> TestClient:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    done = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return client


def test_the_cli_the_api_the_page_and_the_report_show_the_same_effect_for_one_cycle(
    inst, community, tmp_path
):
    cid, cycle = community["community"], community["cycle"]
    shown = CliRunner().invoke(
        app,
        [
            "cycle",
            "show",
            str(cycle),
            "--format",
            "json",
            "--data-dir",
            str(inst.settings.data_dir),
        ],
    )
    assert shown.exit_code == 0, shown.output
    cli = json.loads(shown.output)["study"]
    web = create_app(inst.settings)
    try:
        client = TestClient(web)
        api = client.get(
            f"/api/communities/{cid}/cycles/{cycle}/study",
            headers={"Authorization": f"Bearer {inst.tokens['clinician@A']}"},
        )
        assert api.status_code == 200, api.text
        page = _signed_in(TestClient(web), inst.emails["clinician@A"]).get(
            f"/communities/{cid}/cycles/{cycle}", headers={"accept": "text/html"}
        )
        assert page.status_code == 200, page.text
    finally:
        web.state.registry.close()
    report = cycle_report(inst.registry, _opener(inst), principal(inst, "clinician@A"), cycle)
    html = render_html(report)
    # Independently of the shared loader: the Study of every stored result, read whole.
    with Warehouse.from_settings(inst.settings, read_only=True) as wh:
        results = load_results(wh)
    view = show_cycle(inst.registry, inst.operator, cycle)
    expected = study_cycle(view, results, measure_improvements()).to_dict()
    effects = [m["effect"] for m in expected["measures"]]
    assert effects[0]["ci_low"] > 1  # the planted rise at A is found, so there is one to agree on
    assert [m["effect"] for m in cli["measures"]] == effects
    assert [m["effect"] for m in api.json()["study"]["measures"]] == effects
    assert cli["progress"] == api.json()["study"]["progress"] == expected["progress"]
    # One cycle of this community has tested a change for the aim: this one.
    assert cli["change"]["cycles_tested"] == view.cycles_tested == 1
    shown_in_report = [s.study.effect for s in report.cycles[0].measures]
    for e, r in zip(effects, shown_in_report, strict=True):
        assert r is not None and (r.estimate, r.ci_low, r.ci_high) == pytest.approx(
            (e["estimate"], e["ci_low"], e["ci_high"]), rel=1e-12
        )
        assert (
            f"odds ratio {e['estimate']:.2f} (95% CI {e['ci_low']:.2f} to {e['ci_high']:.2f})"
            in page.text
        )
        assert f'<td class="estimate">{e["estimate"]:.2f}</td>' in html
        assert f'<td class="ci">{e["ci_low"]:.2f} to {e["ci_high"]:.2f}</td>' in html


def test_a_cycle_without_stored_results_for_its_measures_says_so_everywhere(inst, community):
    cycle = show_cycle(inst.registry, inst.operator, community["cycle"])
    unstored = sorted(set(measure_improvements()) - {"remission-prevalence", "steroid-exposure"})[0]
    missing = replace(cycle, measures=[{"measure_id": unstored, "role": "outcome"}])
    stored = study_of(missing, _opener(inst))
    assert stored.study is None and f"No results for measure(s) {unstored}" in (
        stored.unavailable or ""
    )
    nothing = study_of(cycle, lambda: None)
    assert nothing.study is None and "no warehouse" in (nothing.unavailable or "")


NASSS_SUBJECT = "pre-visit-planning"
LATER_ROUND = {"leadership": 4, "quality_improvement": 4}


@pytest.fixture(scope="module")
def assessed(inst: Installation, community: dict[str, int]) -> dict[str, int]:
    """NASSS ratings in two months (the older one made a month earlier by hand), maturity
    ratings in two rounds and a double-coded focus group attached to the cycle."""
    cid = community["community"]
    old = dict.fromkeys(NASSS_DOMAINS, ("simple", ""))
    record_nasss(inst.registry, principal(inst, "analyst"), cid, subject=NASSS_SUBJECT, ratings=old)
    with inst.registry.transaction() as session:
        session.execute(
            update(NassAssessment)
            .where(NassAssessment.community_id == cid)
            .values(assessed_at=datetime(2024, 3, 10))
        )
    latest = {
        "clinician@A": {"condition": ("simple", "Most children respond to treatment")},
        "patient@A": {"condition": ("complex", "Flares come without warning")},
        "carer@B": {"condition": ("complex", "Flares come without warning")},  # said twice
    }
    for key, own in latest.items():
        ratings = {**dict.fromkeys(NASSS_DOMAINS, ("complicated", "")), **own}
        record_nasss(
            inst.registry, principal(inst, key), cid, subject=NASSS_SUBJECT, ratings=ratings
        )
    for name, key, level in (
        ("2024-06", "clinician@A", 2),
        ("2024-06", "carer@B", 3),
        ("2024-12", "clinician@A", 3),
        ("2024-12", "carer@B", 3),
    ):
        levels = dict.fromkeys(MATURITY_REQUIRED, level)
        if name == "2024-12":
            levels.update(LATER_ROUND)
        record_maturity(
            inst.registry, principal(inst, key), cid, round_name=name,
            ratings={d: (lv, "") for d, lv in levels.items()},
        )  # fmt: skip
    add_findings(
        inst.registry, principal(inst, "analyst"), community["cycle"], focus_group(),
        source="json",
    )  # fmt: skip
    return community


def test_the_report_shows_the_latest_nasss_round_with_the_disagreement_the_profile_gives(
    inst, assessed
):
    cid = assessed["community"]
    lead = principal(inst, "clinician@A")
    report = community_report(inst.registry, _opener(inst), lead, cid)
    rounds = [r for r in nasss_profile_of(inst.registry, lead, cid) if r.subject == NASSS_SUBJECT]
    assert len(rounds) == 2 and rounds[0].round == "2024-03"
    assert report.nasss == (rounds[-1],)  # the latest round only
    condition = {d.domain: d for d in rounds[-1].domains}["condition"]
    # simple, complex, complex: two steps apart, a disagreement although two agree.
    assert (condition.counts, condition.median, condition.disagreement) == (
        {"simple": 1, "complicated": 0, "complex": 2},
        "complex",
        True,
    )
    html = render_html(report)
    assert 'data-round="2024-03"' not in html
    rows = dict(
        re.findall(r'<tr(?: class="disagreement")? data-domain="(\w+)"><td>[^<]+</td>'
                   r'<td class="median">(\w+)</td>', html)
    )  # fmt: skip
    assert rows == {d.domain: d.median for d in rounds[-1].domains}
    assert re.findall(r'<tr class="disagreement" data-domain="(\w+)"', html) == ["condition"]
    assert nasss_reading(condition) in html
    assert "Members disagree (1 simple, 2 complex; from simple to complex)" in html
    assert "All 3 members rated it complicated." in html
    assert html.count("Flares come without warning") == 1
    assert html.count("“Most children respond to treatment”") == 1
    # A cycle's report shows the assessments of that cycle or its knowledge object only.
    assert cycle_report(inst.registry, _opener(inst), lead, assessed["cycle"]).nasss == ()


def test_the_report_shows_the_maturity_scores_and_their_change_as_the_profile_gives(inst, assessed):
    cid = assessed["community"]
    lead = principal(inst, "clinician@A")
    report = community_report(inst.registry, _opener(inst), lead, cid)
    expected = maturity_profile(inst.registry, lead, cid)
    assert report.maturity is not None
    assert [r.round for r in report.maturity.rounds] == ["2024-06", "2024-12"]
    html = render_html(report)
    table = html[html.index('<table class="maturity">') :]
    table = table[: table.index("</table>")]
    for i, d in enumerate(expected.rounds[-1].domains):
        row = re.search(rf'<tr data-domain="{d.domain}">(.*?)</tr>', table, re.S)
        assert row is not None, d.domain
        scores = re.findall(r'<td class="score">([^<]+)</td>', row.group(1))
        assert scores == [
            "—" if r.domains[i].score is None else f"{r.domains[i].score:.2f}"
            for r in expected.rounds
        ]
        assert f'<td class="change">{change_words(expected.change[d.domain])}</td>' in row.group(1)
        assert html_escape(maturity_reading(d)) in html
    # By hand: leadership has no evidence, so its score is the members' mean, (2+3)/2 = 2.5
    # in June and (4+4)/2 = 4 in December: a change of +1.50.
    assert expected.change["leadership"] == 1.5
    assert re.search(r'data-domain="leadership">.*?<td class="change">\+1\.50</td>', table, re.S)
    for step in expected.next_steps:
        assert html_escape(step["next_step"]) in html


def test_each_cycle_shows_its_themes_and_kappa_as_the_findings_give_without_transcripts(
    inst, assessed
):
    cycle = assessed["cycle"]
    (found,) = list_findings(inst.registry, inst.operator, cycle)
    summary = found.summary
    for key in ("clinician@A", "patient@A"):  # a patient sees the findings, not the charts
        report = cycle_report(inst.registry, _opener(inst), principal(inst, key), cycle)
        assert report.cycles[0].findings == (found,)
        html = render_html(report)
        for t in summary["themes"]:
            assert f'<td class="theme">{html_escape(t["name"])}</td>' in html
            row = html[html.index(f'<td class="theme">{html_escape(t["name"])}</td>') :]
            assert row.split("</tr>")[0].count(f'<td class="segments">{t["segments"]}</td>') == 1
            assert f'<td class="participants">{t["participants"]}</td>' in row.split("</tr>")[0]
        kappas = re.findall(r'<td class="kappa">([^<]+)</td>', html)
        assert kappas == [
            "—" if a["kappa"] is None else f"{a['kappa']:.2f}" for a in summary["agreement"]
        ]
        assert any(a["kappa"] is not None for a in summary["agreement"])
        assert "Parking is impossible" not in html  # no transcript text
