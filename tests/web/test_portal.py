"""The portal: patients and carers land on their own care, never on anyone else's.

A patient sees their own scores over time (the numbers beside each chart),
the forms filled, their consent and carers, and what their learning
communities learned; a carer sees the patients they are proxy for; staff
have no portal. Every read is audited as the care team's reads are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from careloop.capture import entry, proms
from careloop.community import add_cycle, record_act
from careloop.practice.portal import ScoreSeries
from careloop.store.models import AuditEntry
from careloop.web.app import create_app
from careloop.web.pages.portal import draw
from tests.capture.registry_helpers import PROM, import_examples, prom_answers
from tests.community.helpers import KNOWN_MEASURES, make_community, principal
from tests.community.test_cycles import package
from tests.foundation import PASSWORD

DAYS = ("2024-01-05", "2024-02-09", "2024-03-01")


@pytest.fixture(scope="module")
def answered(installation):
    """Three PROMs of site A's patient with a login, through personal links."""
    import_examples(installation)
    own = installation.patient_user_of["patient@A"]
    for pain, day in enumerate(DAYS):
        link = proms.create_prom_link(
            installation.registry, installation.operator, PROM, patient_id=own
        )
        proms.submit_prom_link(
            installation.registry,
            link.token,
            values=prom_answers(day, tummy_pain=str(pain)),
            event_date=day,
        )
    return installation


@contextmanager
def _signed_in(inst, who: str) -> Iterator[tuple[TestClient, Any]]:
    """A browser session of ``who`` (the app's lifespan runs, so its registry is closed)."""
    with TestClient(create_app(inst.settings)) as client:
        login = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf is not None
        landed = client.post(
            "/login",
            data={"email": inst.emails[who], "password": PASSWORD, "csrf_token": csrf.group(1)},
        )
        yield client, landed


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_patient_lands_on_their_own_scores_with_the_numbers_beside_the_chart(answered):
    inst = answered
    own = inst.patient_user_of["patient@A"]
    stored = entry.list_responses(inst.registry, inst.operator, PROM, patient_id=own)
    totals = {r.event_date.isoformat(): r.values["symptom_score"] for r in stored}
    with _signed_in(inst, "patient@A") as (_, landed):
        assert str(landed.url).endswith("/my") and landed.status_code == 200
        text = _text(landed.text)
        assert "GivenA1 FamilyA1" in text
        assert "GivenA2" not in text and "GivenB1" not in text  # nobody else's record
        assert landed.text.count('role="img"') == 1  # one score, one chart
        for day in DAYS:
            shown = date.fromisoformat(day).strftime("%-d %B %Y")
            assert f"{shown} {totals[day]}" in text  # the table beside the chart
        assert "by you or your carer" in text
        assert "used for care, to make care better for all, and for research" in text
        nav = re.search(r'<nav class="main".*?</nav>', landed.text, re.S)
        assert nav is not None and "My care" in nav.group(0) and "/patients" not in nav.group(0)


def test_a_carer_sees_the_patient_they_care_for_and_nobody_else(answered):
    inst = answered
    with _signed_in(inst, "carer@A") as (client, landed):
        text = _text(landed.text)
        assert "The people you care for" in text and "GivenA2 FamilyA2" in text
        assert "GivenA1" not in text and "GivenB" not in text
        assert "carer (parent)" in text
        other = inst.patient_user_of["patient@A"]
        refused = client.get(f"/patients/{other}", headers={"accept": "text/html"})
        assert refused.status_code in (403, 404)


def test_staff_have_no_portal(answered):
    with _signed_in(answered, "clinician@A") as (client, landed):
        assert not str(landed.url).endswith("/my")
        sent = client.get("/my", follow_redirects=False)
        assert sent.status_code == 303 and sent.headers["location"] == "/"


def test_the_portal_reads_are_audited_as_the_patients_own(answered):
    inst = answered
    own = inst.patient_user_of["patient@A"]
    with inst.registry.transaction() as session:
        before = session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1))
    with _signed_in(inst, "patient@A"):
        pass
    with inst.registry.transaction() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.seq > before)).all()
    reads = [r for r in rows if r.action == "read" and r.patient_id is not None]
    assert reads and {r.patient_id for r in reads} == {own}
    assert {r.user_email for r in reads} == {inst.emails["patient@A"]}
    categories = {r.category for r in reads}
    assert {"clinical", "consent"} <= categories
    assert any(json.loads(r.details or "{}").get("timeline") for r in reads)


def test_what_the_community_learned_is_shown_in_plain_words(answered):
    inst = answered
    cid = make_community(inst).community.id
    member = principal(inst, "clinician@B")
    cycle = add_cycle(inst.registry, member, cid, package(), known_measures=KNOWN_MEASURES)
    record_act(
        inst.registry, member, cycle.id, decision="adopt", rationale="Remission rose at both sites"
    )
    with _signed_in(inst, "patient@A") as (_, landed):  # a member of the community
        text = _text(landed.text)
        assert "Network change package , started February 2024" in text
        assert "It worked, so the team kept the change." in text
    with _signed_in(inst, "patient@B") as (_, landed):  # not a member: nothing of it
        assert "Network change package" not in landed.text


def test_a_score_is_drawn_with_time_across_and_the_score_up():
    series = ScoreSeries(
        "PROM",
        "Symptoms",
        ((date(2024, 1, 1), 2.0), (date(2024, 1, 11), 4.0), (date(2024, 1, 21), 3.0)),
    )
    drawn = draw(series)
    xs = [x for x, _ in drawn.dots]
    ys = [y for _, y in drawn.dots]
    assert xs == sorted(xs) and xs[1] - xs[0] == pytest.approx(xs[2] - xs[1])  # days apart
    assert ys[1] < ys[2] < ys[0]  # the highest score is drawn highest (smallest y)
    assert (drawn.low, drawn.high) == ("2", "4")
    one = draw(ScoreSeries("PROM", "Symptoms", ((date(2024, 1, 1), 5.0),)))
    assert len(one.dots) == 1  # one answer: a dot, no division by zero


def test_a_patient_login_with_no_record_linked_yet_is_told_so_not_refused(answered):
    inst = answered
    from careloop.trust import identity

    identity.add_user(
        inst.registry,
        inst.operator,
        email="new.patient.a@example.org",
        display_name="New patient",
        password=PASSWORD,
        roles=[("patient", "A")],
    )
    inst.emails["new-patient@A"] = "new.patient.a@example.org"
    with _signed_in(inst, "new-patient@A") as (_, landed):
        assert landed.status_code == 200 and str(landed.url).endswith("/my")
        assert "There is no record linked to your account yet" in landed.text
        assert "GivenA" not in landed.text and "GivenB" not in landed.text
