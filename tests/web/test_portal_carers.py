"""The portal's "People who help me": the patient (or a child's guardian) ticks what each
carer may do and can remove one; a carer without ``see_results`` sees no answers or scores;
a young person past the hand-over age is told that they now decide.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from careloop.capture import proms
from careloop.store.models import CarerLink
from careloop.store.scoping import Scope, set_scope
from careloop.trust import carers, identity, patients
from careloop.trust.handover import handover_date
from careloop.web.app import create_app
from tests.capture.registry_helpers import PROM, import_examples, prom_answers
from tests.foundation import PASSWORD

_n = itertools.count()


def _family(inst, *, born: date, carers_count: int = 1) -> tuple[int, str, list[str]]:
    n = next(_n)
    pid = patients.register_patient(
        inst.registry,
        inst.operator,
        site="A",
        local_id=f"PC-{n}",
        given_name=f"Robin{n}",
        family_name="Example",
        birth_date=born,
        consent_state="improvement_and_research",
    ).id
    me = f"robin{n}@example.org"
    identity.add_user(
        inst.registry,
        inst.operator,
        email=me,
        display_name=f"Robin{n}",
        password=PASSWORD,
        roles=[("patient", "A")],
        patient_id=pid,
    )
    helpers = []
    for k in range(carers_count):
        email = f"helper{n}.{k}@example.org"
        identity.add_user(
            inst.registry,
            inst.operator,
            email=email,
            display_name=f"Helper {n}.{k}",
            password=PASSWORD,
            roles=[("carer", "A")],
        )
        patients.link_carer(
            inst.registry, inst.operator, pid, carer_email=email, relationship="mum"
        )
        helpers.append(email)
    return pid, me, helpers


def _link(inst, pid: int, email: str) -> int:
    return next(
        c.link_id
        for c in carers.list_carers(inst.registry, inst.operator, pid).carers
        if c.email == email
    )


def _scopes(inst, link_id: int) -> tuple[str, bool]:
    with inst.registry.sessions() as session:
        set_scope(session, Scope.everything())
        link = session.scalars(select(CarerLink).where(CarerLink.id == link_id)).one()
        return link.scopes, link.revoked_at is not None


@contextmanager
def _signed_in(inst, email: str) -> Iterator[tuple[TestClient, Any, str]]:
    """A browser session of ``email``: the client, the page it lands on, its form token."""
    with TestClient(create_app(inst.settings)) as client:
        login = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token is not None
        landed = client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
        )
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', landed.text)
        yield client, landed, csrf.group(1) if csrf else ""


def _ticked(html: str) -> list[str]:
    """The carer scopes ticked on the page (the consent choices' radio buttons are not counted)."""
    return re.findall(r'name="scope" value="(\w+)" checked', html)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_patient_ticks_what_their_carer_may_do_and_removes_them(installation):
    inst = installation
    pid, me, [helper] = _family(inst, born=date(1990, 5, 1))
    link = _link(inst, pid, helper)
    with _signed_in(inst, me) as (client, landed, csrf):
        text = _text(landed.text)
        assert "People who help me" in text and "Helper" in text
        assert f'action="/my/carers/{link}"' in landed.text
        assert len(_ticked(landed.text)) == 3  # every scope, as linked by the care team
        refused = client.post(
            f"/my/carers/{link}", data={"scope": "fill_forms"}, headers={"accept": "text/html"}
        )
        assert refused.status_code == 403  # no form token: nothing changes
        assert _scopes(inst, link)[0] == "fill_forms,see_results,manage_consent"
        saved = client.post(f"/my/carers/{link}", data={"scope": "fill_forms", "csrf_token": csrf})
        assert saved.status_code == 200 and "Saved." in saved.text
        assert _scopes(inst, link)[0] == "fill_forms"
        assert "changed to: fill in questionnaires (by you)" in _text(saved.text)
        bad = client.post(
            f"/my/carers/{link}",
            data={"scope": "everything", "csrf_token": csrf},
            headers={"accept": "text/html"},
        )
        assert bad.status_code == 422 and _scopes(inst, link)[0] == "fill_forms"
        removed = client.post(f"/my/carers/{link}/end", data={"csrf_token": csrf})
        assert removed.status_code == 200 and _scopes(inst, link)[1]
        assert "No carer is linked to this record." in _text(removed.text)


def test_a_carer_without_see_results_sees_the_name_but_no_scores(installation):
    inst = installation
    import_examples(inst)
    pid, _me, [helper] = _family(inst, born=date(1985, 1, 1))
    sent = proms.create_prom_link(inst.registry, inst.operator, PROM, patient_id=pid)
    proms.submit_prom_link(
        inst.registry, sent.token, values=prom_answers("2024-02-02"), event_date="2024-02-02"
    )
    link = _link(inst, pid, helper)
    with _signed_in(inst, helper) as (_client, landed, _csrf):
        assert "How things have been" in landed.text
    carers.set_carer_scopes(inst.registry, inst.operator, link, ["fill_forms"])
    with _signed_in(inst, helper) as (client, landed, csrf):
        text = _text(landed.text)
        assert "Robin" in text and "How things have been" not in text
        assert "but not their answers or scores" in text
        assert "Fill in questionnaires" in text and f'action="/my/carers/{link}"' not in text
        refused = client.post(
            f"/my/carers/{link}",
            data={"scope": ["fill_forms", "see_results"], "csrf_token": csrf},
            headers={"accept": "text/html"},
        )
        assert refused.status_code == 403
    assert _scopes(inst, link)[0] == "fill_forms"


def test_a_guardian_ticks_for_a_child_and_a_young_person_is_told_they_now_decide(installation):
    inst = installation
    child, _me, [parent, other] = _family(inst, born=date(2018, 1, 1), carers_count=2)
    other_link = _link(inst, child, other)
    with _signed_in(inst, parent) as (client, landed, csrf):
        text = _text(landed.text)
        assert f'action="/my/carers/{other_link}"' in landed.text
        assert "you can choose what each person who helps may do" in text
        client.post(f"/my/carers/{other_link}", data={"scope": "see_results", "csrf_token": csrf})
    assert _scopes(inst, other_link)[0] == "see_results"
    today = datetime.now(UTC).date()
    grown, young, [mum] = _family(inst, born=handover_date(today, -16) - timedelta(days=3))
    link = _link(inst, grown, mum)
    for scopes in ([], ["fill_forms", "see_results", "manage_consent"]):  # set when 15
        carers.set_carer_scopes(
            inst.registry, inst.operator, link, scopes, now=datetime.now(UTC) - timedelta(days=30)
        )
    with _signed_in(inst, young) as (_client, landed, _csrf):
        text = _text(landed.text)
        assert "You are 16 or older now, so you decide who helps you" in text
        assert landed.text.count('name="scope"') == 3 and not _ticked(landed.text)
    with _signed_in(inst, mum) as (client, landed, csrf):
        assert "How things have been" not in landed.text
        refused = client.post(
            f"/my/carers/{link}", data={"csrf_token": csrf}, headers={"accept": "text/html"}
        )
        assert refused.status_code == 403
