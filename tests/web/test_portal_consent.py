"""Consent by purpose on the portal: a patient or a carer changes one choice on their page.

Each purpose is a yes/no form posted with the session's CSRF token; the change goes
through the same scoped, audited service as the care team's, so a patient reaches only
their own record and a carer only the records they are proxy for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from careloop.store.models import AuditEntry, Patient
from careloop.store.scoping import Scope, set_scope
from careloop.web.app import create_app
from tests.foundation import PASSWORD


@contextmanager
def _signed_in(inst, who: str) -> Iterator[tuple[TestClient, Any]]:
    with TestClient(create_app(inst.settings)) as client:
        login = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf is not None
        landed = client.post(
            "/login",
            data={"email": inst.emails[who], "password": PASSWORD, "csrf_token": csrf.group(1)},
        )
        yield client, landed


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _choices(inst, patient_id: int) -> dict[str, bool]:
    with inst.registry.transaction() as session:
        set_scope(session, Scope.everything())
        patient = session.get(Patient, patient_id)
        assert patient is not None
        return patient.consent_choices()


def _last_consent_audit(inst) -> AuditEntry:
    with inst.registry.transaction() as session:
        entry = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.category == "consent", AuditEntry.action == "update")
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        ).one()
        session.expunge(entry)
        return entry


def test_a_patient_withdraws_research_and_keeps_improvement_on_their_page(installation):
    inst = installation
    own = inst.patient_user_of["patient@A"]
    with _signed_in(inst, "patient@A") as (client, landed):
        text = _text(landed.text)
        for words in (
            "Use my information to look after me",
            "Use my information to make care better for everyone",
            "Use my information for research",
            "Ask me if I want to take part in research studies",
        ):
            assert words in text
        sent = client.post(
            "/my/consent",
            data={
                "csrf_token": _token(landed.text),
                "patient_id": str(own),
                "purpose": "research",
                "choice": "no",
            },
            follow_redirects=False,
        )
        assert sent.status_code == 303 and sent.headers["location"].startswith("/my?saved=")
        page = client.get(sent.headers["location"])
        text = _text(page.text)
        assert "We have saved your choice" in text
        assert "No to: Use my information for research (on this page)" in text
        research_form = re.search(
            r'value="research">.*?</form>', page.text, re.S
        )  # the research choice now shows No
        assert research_form is not None
        assert re.search(r'value="no"[^>]*checked', research_form.group(0))
    assert _choices(inst, own) == {
        "direct_care": True,
        "quality_improvement": True,
        "research": False,
        "recontact": False,
    }
    audit = _last_consent_audit(inst)
    details = json.loads(audit.details or "{}")
    assert audit.patient_id == own and audit.user_email == inst.emails["patient@A"]
    assert details["purposes"] == {"research": [True, False]} and details["method"] == "portal"
    assert details["to"] == "improvement_only"


def test_a_patient_cannot_change_another_patients_consent(installation):
    inst = installation
    other = inst.patient_user_of["carer@A"]  # site A's other patient
    before = _choices(inst, other)
    with _signed_in(inst, "patient@A") as (client, landed):
        refused = client.post(
            "/my/consent",
            data={
                "csrf_token": _token(landed.text),
                "patient_id": str(other),
                "purpose": "quality_improvement",
                "choice": "no",
            },
        )
        assert refused.status_code == 404
        assert "We could not save that choice" in _text(refused.text)
    assert _choices(inst, other) == before


def test_a_choice_without_an_answer_or_without_the_form_token_changes_nothing(installation):
    inst = installation
    own = inst.patient_user_of["patient@A"]
    before = _choices(inst, own)
    with _signed_in(inst, "patient@A") as (client, landed):
        unanswered = client.post(
            "/my/consent",
            data={"csrf_token": _token(landed.text), "patient_id": str(own), "purpose": "research"},
        )
        assert unanswered.status_code == 422
        assert "Please choose yes or no, then press Save." in _text(unanswered.text)
        forged = client.post(
            "/my/consent",
            data={"patient_id": str(own), "purpose": "recontact", "choice": "yes"},
        )
        assert forged.status_code == 403
    assert _choices(inst, own) == before


def test_a_carer_changes_a_choice_for_the_person_they_care_for(installation):
    inst = installation
    cared_for = inst.patient_user_of["carer@A"]
    with _signed_in(inst, "carer@A") as (client, landed):
        sent = client.post(
            "/my/consent",
            data={
                "csrf_token": _token(landed.text),
                "patient_id": str(cared_for),
                "purpose": "recontact",
                "choice": "yes",
            },
            follow_redirects=False,
        )
        assert sent.status_code == 303
    assert _choices(inst, cared_for)["recontact"] is True
    assert _last_consent_audit(inst).user_email == inst.emails["carer@A"]
