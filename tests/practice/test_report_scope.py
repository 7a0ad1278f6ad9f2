"""Impact and feedback pages show a site's series and card feedback only to people of that site.

A real installation (sites A and B, clinicians of each and B's site lead), a knowledge object
deployed on 2025-01-01, a stored measure run by site over 2024–2025, and card
events at both sites; the pages are requested over the web app (TestClient)
with each user's API token.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from careloop.knowledge import activate, add_version, approve, submit
from careloop.knowledge.package import package_from_dict
from careloop.measures import MeasureRun, store_run
from careloop.practice.feedback.reports import impact_for
from careloop.store.models.knowledge import CdsCard, CdsFeedback, CdsInvocation
from careloop.trust import identity
from careloop.trust.principal import Principal
from careloop.warehouse.connection import Warehouse, warehouse_opener
from careloop.web.app import create_app
from tests.foundation import PASSWORD, Installation, build_installation, make_settings
from tests.practice.cds_support import ibd_package, trial_cycle

KO = "scope-ibd"
REF = f"{KO}@{ibd_package(KO).version}"
MEASURE = "steroid-at-visit"
PAGE = f"/knowledge/{REF}/impact?measure={MEASURE}"


def _results() -> pd.DataFrame:
    months = pd.date_range("2024-01-01", periods=24, freq="MS")
    rng = np.random.default_rng(3)
    rows = []
    for site, n in (("A", 200), ("B", 150)):
        for m in months:
            k = int(rng.binomial(n, 0.4))
            rows.append((site, m.date(), k, n))
    frame = pd.DataFrame(rows, columns=["site", "period_start", "numerator", "denominator"])
    network = frame.groupby("period_start", as_index=False)[["numerator", "denominator"]].sum()
    frame = pd.concat([frame, network.assign(site="")], ignore_index=True)
    return frame.assign(
        measure_id=MEASURE,
        definition_hash="h",
        period_end=[(pd.Timestamp(p) + pd.offsets.MonthEnd(0)).date() for p in frame.period_start],
        stratum="",
        value=frame.numerator / frame.denominator,
        excluded=0,
        small_denominator=False,
    )


def _cards(inst: Installation) -> None:
    """Shown cards at A (3, 2 accepted) and B (5, 1 accepted), written as the service does."""
    with inst.registry.transaction() as session:
        for site, shown, accepted in (("A", 3, 2), ("B", 5, 1)):
            for i in range(shown):
                invocation = CdsInvocation(
                    hook_instance=str(uuid.uuid4()),
                    service_id=KO,
                    hook="patient-view",
                    ko_identifier=KO,
                    ko_version=ibd_package(KO).version,
                    mode="live",
                    issuer="https://ehr.example.org/",
                    site_code=site,
                    received_at=datetime(2025, 3, 1, tzinfo=UTC),
                )
                session.add(invocation)
                session.flush()
                card = CdsCard(
                    uuid=str(uuid.uuid4()),
                    invocation_id=invocation.id,
                    service_id=KO,
                    ko_identifier=KO,
                    ko_version=ibd_package(KO).version,
                    rule_id="r",
                    shown=True,
                    indicator="info",
                    summary="s",
                )
                session.add(card)
                session.flush()
                if i < accepted:
                    session.add(
                        CdsFeedback(
                            card_id=card.id,
                            card_uuid=card.uuid,
                            service_id=KO,
                            ko_identifier=KO,
                            ko_version=ibd_package(KO).version,
                            outcome="accepted",
                            issuer="https://ehr.example.org/",
                            outcome_timestamp=datetime(2025, 3, 1, tzinfo=UTC),
                        )
                    )


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    inst = build_installation(
        make_settings(tmp_path_factory.mktemp("scope"), None), with_users=False
    )
    op = inst.operator
    # Only the users the tests need: hashing a password per user is most of the setup time.
    for role, site in (("clinician", "A"), ("clinician", "B"), ("site_lead", "B")):
        email = f"{role}.{site.lower()}@example.org"
        identity.add_user(
            inst.registry,
            op,
            email=email,
            display_name=email,
            password=PASSWORD,
            roles=[(role, site)],
        )
        inst.emails[f"{role}@{site}"] = email
        inst.tokens[f"{role}@{site}"] = identity.create_token(
            inst.registry, op, name="tests", for_user=email
        ).token
    # The object targets the measure of the stored run: its impact page shows its targets.
    data = ibd_package(KO).to_dict()
    data["metadata"]["measures"] = [MEASURE]
    add_version(inst.registry, op, package_from_dict(data), reason="test")
    submit(inst.registry, op, REF, reason="test")
    approve(inst.registry, op, REF, reason="test")
    activate(
        inst.registry,
        op,
        REF,
        reason="test",
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
        cycle_id=trial_cycle(inst),
    )
    _cards(inst)
    results = _results()
    run = MeasureRun(
        run_id="r1",
        run_at=datetime(2026, 1, 5, tzinfo=UTC),
        start=date(2024, 1, 1),
        end=date(2025, 12, 31),
        by=("site",),
        results=results,
        hashes={MEASURE: "h"},
    )
    with Warehouse.from_settings(inst.settings) as wh:
        store_run(wh, run)
    try:
        yield inst
    finally:
        inst.registry.close()


@pytest.fixture(scope="module")
def client(installation: Installation) -> Iterator[TestClient]:
    app = create_app(installation.settings)
    with TestClient(app) as c:
        yield c
    app.state.registry.close()


def _get(client: TestClient, inst: Installation, who: str, url: str):  # type: ignore[no-untyped-def]
    return client.get(url, headers={"Authorization": f"Bearer {inst.tokens[who]}"})


def _refusals(inst: Installation) -> list[tuple[str, str | None, str | None, dict]]:
    with inst.registry.engine.connect() as conn:
        return [
            (r.outcome, r.user_email, r.site_code, json.loads(r.details or "{}"))
            for r in conn.execute(
                text(
                    "SELECT outcome, user_email, site_code, details FROM audit_entry "
                    "WHERE category = 'report' ORDER BY seq"
                )
            )
        ]


def test_a_clinician_of_site_a_is_refused_site_b_s_impact_and_the_refusal_is_audited(
    client, installation
):
    before = len(_refusals(installation))
    other = _get(client, installation, "clinician@A", f"{PAGE}&site=B")
    assert other.status_code == 404
    assert "no site 'B' whose impact report you can see" in other.json()["error"]["message"]
    assert "<svg" not in other.text
    refusals = _refusals(installation)[before:]
    assert refusals == [
        (
            "not_found",
            installation.emails["clinician@A"],
            "B",
            {"report": "impact", "knowledge_object": REF},
        )
    ]
    # The feedback page, scoped this way already, now audits its refusals too.
    feedback = _get(client, installation, "clinician@A", f"/sites/B/feedback?measure={MEASURE}")
    assert feedback.status_code == 404
    assert _refusals(installation)[-1][:3] == (
        "not_found",
        installation.emails["clinician@A"],
        "B",
    )
    # A site that does not exist is refused the same way, and its name is not recorded.
    made_up = _get(client, installation, "clinician@A", f"{PAGE}&site=ZZ")
    assert made_up.status_code == 404
    assert _refusals(installation)[-1][2] is None


def test_a_clinician_sees_their_own_site_s_impact_with_their_own_site_s_cards_only(
    client, installation
):
    own = _get(client, installation, "clinician@A", f"{PAGE}&site=A")
    assert own.status_code == 200, own.text[:300]
    assert "<svg" in own.text
    principal = _principal(installation, "clinician", "A")
    for site in ("A", ""):
        report = impact_for(
            installation.registry,
            warehouse_opener(installation.settings),
            principal,
            REF,
            measure_id=MEASURE,
            site=site,
        )
        assert report.cards.site_code.tolist() == ["A"]
        assert report.cards.cards_shown.tolist() == [3]
        assert report.cards.accepted.tolist() == [2]


def test_the_network_impact_shows_each_reader_the_cards_of_their_own_sites(client, installation):
    page = _get(client, installation, "clinician@B", PAGE)
    assert page.status_code == 200, page.text[:300]
    b = impact_for(
        installation.registry,
        warehouse_opener(installation.settings),
        _principal(installation, "clinician", "B"),
        REF,
        measure_id=MEASURE,
    )
    assert b.cards.site_code.tolist() == ["B"]
    everyone = impact_for(
        installation.registry,
        warehouse_opener(installation.settings),
        installation.operator,
        REF,
        measure_id=MEASURE,
    )
    assert everyone.cards.site_code.tolist() == ["A", "B"]
    assert everyone.cards.cards_shown.tolist() == [3, 5]
    # The series is the network's for every reader: measure results are shared aggregates.
    pd.testing.assert_frame_equal(b.series, everyone.series)


def test_a_site_lead_of_b_sees_b_s_impact(client, installation):
    assert _get(client, installation, "site_lead@B", f"{PAGE}&site=B").status_code == 200
    assert _get(client, installation, "site_lead@B", f"{PAGE}&site=A").status_code == 404


def _principal(inst: Installation, role: str, site: str) -> Principal:
    from careloop.trust.identity import resolve_token
    from careloop.trust.principal import RequestContext

    return resolve_token(inst.registry, inst.tokens[f"{role}@{site}"], RequestContext())
