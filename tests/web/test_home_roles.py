"""The home page per role: a clinician's drafts and patients (an audited read), a site
lead's sites, the votes waiting for a community member, the auditor's chain status, the
admin's pages; patients and carers still go to /my."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from careloop.capture import entry, forms_store
from careloop.capture.examples import example_file
from careloop.community import propose
from tests.community.helpers import make_community, principal
from tests.foundation import PASSWORD, Installation
from tests.web.test_community_pages import _client

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def app(installation: Installation) -> Iterator[Any]:
    from careloop.web.app import create_app

    forms_store.import_forms(
        installation.registry,
        installation.operator,
        example_file("yaml"),
        fmt="yaml",
        name="ibd_registry.yaml",
    )
    application = create_app(installation.settings)
    yield application
    application.state.registry.close()


def _home(app: Any, inst: Installation, who: str) -> Any:
    client = _client(app, inst.emails[who], PASSWORD)
    return client.get("/", headers=HTML, follow_redirects=False)


def _section(page: str, heading_id: str) -> str:
    start = page.index(f'id="{heading_id}"')
    return page[start : page.index("</section>", start)]


def test_a_clinician_sees_their_drafts_and_patients_and_the_read_is_audited(app, installation):
    me = principal(installation, "clinician@A")
    empty = _home(app, installation, "clinician@A").text
    assert "You have no unfinished drafts." in empty
    assert "You have not entered a record yet." in empty
    own, other = installation.patient_ids["A"]
    draft = entry.create_response(
        installation.registry, me, "ibd_visit", patient_id=own, event_date="2024-05-02", values={}
    )
    page = _home(app, installation, "clinician@A").text
    drafts = _section(page, "drafts-h")
    assert f'href="/responses/{draft.id}"' in drafts and "GivenA1 FamilyA1 (MRN-A-1)" in drafts
    assert "2024-05-02" in drafts
    patients = _section(page, "my-patients-h")
    assert f'href="/patients/{own}"' in patients and f'href="/patients/{other}"' not in patients
    with installation.registry.engine.connect() as conn:
        details = conn.execute(
            text(
                "SELECT details FROM audit_entry WHERE user_email = :e AND action = 'read' "
                "AND category = 'clinical' ORDER BY seq DESC LIMIT 1"
            ),
            {"e": installation.emails["clinician@A"]},
        ).scalar()
    assert json.loads(details) == {"home": True, "patient_ids": [own]}
    # Another site's clinician sees none of it.
    theirs = _home(app, installation, "clinician@B").text
    assert "GivenA1" not in theirs and "You have no unfinished drafts." in theirs


def test_a_site_lead_sees_their_site_and_why_no_measures_are_shown_yet(app, installation):
    page = _home(app, installation, "site_lead@A").text
    lead = _section(page, "lead-A-h")
    assert "No measure results to show" in lead
    assert "No invitation is waiting for an answer." in lead
    assert 'href="/sites/A"' in lead
    assert 'id="lead-B-h"' not in page


def test_a_community_member_sees_the_votes_waiting_for_them_until_they_vote(app, installation):
    created = make_community(installation)
    cid = created.community.id
    proposal = propose(
        installation.registry,
        principal(installation, "clinician@A"),
        cid,
        kind="priority",
        title="Check steroid use at every visit",
        payload={"kind": "idea", "title": "Check steroid use at every visit"},
    )
    page = _home(app, installation, "clinician@B").text
    waiting = _section(page, "waiting-h")
    assert f'href="/communities/{cid}/proposals/{proposal.id}"' in waiting
    assert "Check steroid use at every visit" in waiting
    # Not a member: nothing waits.
    assert "Check steroid use at every visit" not in _home(app, installation, "site_lead@B").text


def test_the_auditor_sees_the_chain_status_and_the_admin_the_admin_pages(app, installation):
    auditor = _home(app, installation, "auditor").text
    chain = _section(auditor, "chain-h")
    assert "The audit trail is intact" in chain or "being checked now" in chain
    assert 'href="/audit"' in chain and 'id="admin-h"' not in auditor
    admin = _home(app, installation, "admin").text
    assert 'href="/admin/users"' in _section(admin, "admin-h")
    assert 'id="chain-h"' not in admin and 'id="drafts-h"' not in admin
    for who in ("patient@A", "carer@B"):
        answer = _home(app, installation, who)
        assert answer.status_code == 303 and answer.headers["location"] == "/my"
