"""Carers' scopes: each action needs its scope, who may change them, and the hand-over.

Every family here is made by the test that uses it (the installation is
shared by the module), so counts are taken for that family only.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from careloop.capture import entry
from careloop.core.errors import NotFound, PermissionDenied, ValidationFailed
from careloop.store.models import CarerLink, Patient, User
from careloop.store.scoping import Scope, set_scope
from careloop.trust import carers, identity, patients
from careloop.trust.handover import effective_scopes, handover_date, is_child
from careloop.trust.identity import principal_for
from careloop.trust.policy import CARER_SCOPE_FOR, CARER_SCOPES, POLICY
from careloop.trust.principal import Principal, RequestContext
from tests.capture.registry_helpers import PROM, audit_seq, audit_since, import_examples
from tests.capture.registry_helpers import prom_answers as _prom_answers
from tests.foundation import PASSWORD

_n = itertools.count()
TODAY = datetime.now(UTC).date()


def _years_ago(years: int, days: int = 0) -> date:
    return handover_date(TODAY, -years) + timedelta(days=days)


def _family(inst, *, born: date | None, carers_count: int = 1, with_login: bool = False):
    """A patient of site A with ``carers_count`` carers (every scope); their e-mails."""
    n = next(_n)
    pid = patients.register_patient(
        inst.registry,
        inst.operator,
        site="A",
        local_id=f"CS-{n}",
        given_name=f"Young{n}",
        family_name="Person",
        birth_date=born,
        consent_state="improvement_and_research",
    ).id
    emails = []
    for k in range(carers_count):
        email = f"carer{n}.{k}@example.org"
        identity.add_user(
            inst.registry,
            inst.operator,
            email=email,
            display_name=f"Carer {n}.{k}",
            password=PASSWORD,
            roles=[("carer", "A")],
        )
        patients.link_carer(
            inst.registry, inst.operator, pid, carer_email=email, relationship="parent"
        )
        emails.append(email)
    if with_login:
        identity.add_user(
            inst.registry,
            inst.operator,
            email=f"young{n}@example.org",
            display_name=f"Young{n}",
            password=PASSWORD,
            roles=[("patient", "A")],
            patient_id=pid,
        )
    return pid, emails


def _as(inst, email: str, *, now: datetime | None = None, age: int = 16) -> Principal:
    """The principal ``email`` would have on signing in (at ``now``)."""
    with inst.registry.sessions() as session:
        set_scope(session, Scope.everything())
        user = session.scalars(select(User).where(User.email == email)).one()
        return principal_for(session, user, RequestContext(), handover_age=age, now=now)


def _link(inst, pid: int, email: str) -> int:
    found = carers.list_carers(inst.registry, inst.operator, pid).carers
    return next(c.link_id for c in found if c.email == email)


def _stored(inst, link_id: int) -> tuple[str, datetime | None]:
    with inst.registry.sessions() as session:
        set_scope(session, Scope.everything())
        link = session.get(CarerLink, link_id)
        assert link is not None
        return link.scopes, link.revoked_at


def _granted_all(inst, link_id: int, when: datetime) -> None:
    """Every scope, granted by the care team on ``when`` (first taken away, so it is a change)."""
    carers.set_carer_scopes(inst.registry, inst.operator, link_id, [], now=when)
    carers.set_carer_scopes(inst.registry, inst.operator, link_id, list(CARER_SCOPES), now=when)


def _details(event) -> dict:
    details = event.details
    return json.loads(details) if isinstance(details, str) else dict(details)


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def test_every_carer_action_of_the_policy_names_the_scope_it_needs():
    carer_actions = {action for (role, action), scope in POLICY.items() if role == "carer"}
    proxied = {a for (r, a), s in POLICY.items() if r == "carer" and s == "proxied_records"}
    assert proxied <= set(CARER_SCOPE_FOR)
    assert set(CARER_SCOPE_FOR.values()) - {None} == set(CARER_SCOPES)
    assert carer_actions >= proxied


def test_the_hand_over_rule_lapses_scopes_set_before_the_birthday_only():
    born = date(2010, 2, 28)
    assert handover_date(born, 16) == date(2026, 2, 28)
    assert handover_date(date(2012, 2, 29), 16) == date(2028, 2, 29)  # a leap year
    assert handover_date(date(2012, 2, 29), 17) == date(2029, 3, 1)
    every = frozenset(CARER_SCOPES)
    before = _at(date(2025, 1, 1))
    kw = {"birth_date": born, "handover_age": 16}
    assert effective_scopes(every, set_at=before, today=date(2026, 2, 27), **kw) == every
    assert effective_scopes(every, set_at=before, today=date(2026, 2, 28), **kw) == frozenset()
    after = _at(date(2026, 3, 1))
    assert effective_scopes(every, set_at=after, today=date(2026, 3, 2), **kw) == every
    assert (
        effective_scopes(
            every, set_at=before, today=date(2030, 1, 1), birth_date=None, handover_age=16
        )
        == every
    )
    assert (
        effective_scopes(
            every, set_at=before, today=date(2026, 2, 28), birth_date=born, handover_age=18
        )
        == every
    )
    assert is_child(born, date(2026, 2, 27), 16) and not is_child(born, date(2026, 2, 28), 16)
    assert not is_child(None, date(2026, 2, 27), 16)


@pytest.mark.parametrize("missing", CARER_SCOPES)
def test_each_carer_action_needs_its_scope_and_a_refusal_is_audited(installation, missing):
    inst = installation
    import_examples(inst)
    pid, [email] = _family(inst, born=_years_ago(9))
    others = [s for s in CARER_SCOPES if s != missing]
    carers.set_carer_scopes(inst.registry, inst.operator, _link(inst, pid, email), others)
    carer = _as(inst, email)
    assert carer.proxy_for(pid) is not None
    # The patient's name is always there, whatever the scopes.
    assert patients.get_patient(inst.registry, carer, pid).given_name.startswith("Young")

    def read() -> object:
        return entry.patient_timeline(inst.registry, carer, pid)

    def write() -> object:
        return entry.create_response(
            inst.registry,
            carer,
            PROM,
            patient_id=pid,
            event_date="2024-05-01",
            values=_prom_answers("2024-05-01"),
            status="complete",
        )

    def consent() -> object:
        return patients.record_consent(
            inst.registry, carer, pid, state="direct_care_only", method="portal"
        )

    actions = {"see_results": read, "fill_forms": write, "manage_consent": consent}
    for scope, act in actions.items():
        seq = audit_seq(inst)
        if scope == missing:
            with pytest.raises(PermissionDenied):
                act()
            entries = audit_since(inst, seq)
            assert [e.outcome for e in entries] == ["denied"], scope
            assert entries[0].user_email == email
        else:
            act()
            assert all(e.outcome == "success" for e in audit_since(inst, seq)), scope
    view = patients.get_patient(inst.registry, inst.operator, pid)
    assert view.consent_state == (
        "improvement_and_research" if missing == "manage_consent" else "direct_care_only"
    )
    answers = entry.list_responses(inst.registry, inst.operator, PROM, patient_id=pid)
    assert len(answers) == (0 if missing == "fill_forms" else 1)


def test_a_carer_sees_the_results_of_one_patient_and_not_of_another_they_help(installation):
    inst = installation
    first, [email] = _family(inst, born=_years_ago(8))
    second, _ = _family(inst, born=_years_ago(6), carers_count=0)
    patients.link_carer(
        inst.registry, inst.operator, second, carer_email=email, relationship="aunt"
    )
    carers.set_carer_scopes(
        inst.registry, inst.operator, _link(inst, second, email), ["fill_forms"]
    )
    carer = _as(inst, email)
    entry.patient_timeline(inst.registry, carer, first)
    seq = audit_seq(inst)
    with pytest.raises(NotFound):
        entry.patient_timeline(inst.registry, carer, second)
    assert [e.outcome for e in audit_since(inst, seq)] == ["not_found"]


def test_a_patient_grants_and_takes_back_what_their_carer_may_do(installation):
    inst = installation
    pid, [email] = _family(inst, born=_years_ago(30), with_login=True)
    me = _as(inst, f"young{_n_of(pid, inst)}@example.org")
    link = _link(inst, pid, email)
    seq = audit_seq(inst)
    changed = carers.set_carer_scopes(inst.registry, me, link, ["fill_forms"])
    assert changed.scopes == ("fill_forms",)
    [event] = [e for e in audit_since(inst, seq) if e.action == "privilege_change"]
    assert event.outcome == "success" and event.patient_id == pid
    assert _details(event)["from"] == ["fill_forms", "see_results", "manage_consent"]
    assert _details(event)["to"] == ["fill_forms"]
    carer = _as(inst, email)
    assert carer.scope_for("record.read") == Scope.nothing()
    listing = carers.list_carers(inst.registry, me, pid)
    assert listing.may_manage and not listing.is_child and listing.handed_over
    [history] = [c.history for c in listing.carers]
    assert [(h.change, h.new_scopes, h.changed_by) for h in history] == [
        ("changed", ("fill_forms",), me.email)
    ]
    carers.end_carer_link(inst.registry, me, link)
    assert _stored(inst, link)[1] is not None
    assert _as(inst, email).proxy_for(pid) is None


def _n_of(pid: int, inst) -> str:
    with inst.registry.sessions() as session:
        set_scope(session, Scope.everything())
        local = session.scalars(select(Patient.local_id).where(Patient.id == pid)).one()
    return local.removeprefix("CS-")


def test_a_patient_or_carer_reaching_another_family_is_refused_audited_and_nothing_changes(
    installation,
):
    inst = installation
    mine, [my_carer] = _family(inst, born=_years_ago(10), with_login=True)
    theirs, [their_carer] = _family(inst, born=_years_ago(10))
    their_link = _link(inst, theirs, their_carer)
    before = _stored(inst, their_link)
    for who in (f"young{_n_of(mine, inst)}@example.org", my_carer):
        principal = _as(inst, who)
        for attempt in (
            lambda p=principal: carers.set_carer_scopes(inst.registry, p, their_link, []),
            lambda p=principal: carers.end_carer_link(inst.registry, p, their_link),
            lambda p=principal: carers.list_carers(inst.registry, p, theirs),
        ):
            seq = audit_seq(inst)
            with pytest.raises(NotFound):
                attempt()
            assert [e.outcome for e in audit_since(inst, seq)] == ["not_found"], who
    assert _stored(inst, their_link) == before


def test_a_guardian_decides_for_a_child_but_not_after_the_hand_over(installation):
    inst = installation
    pid, [parent, grandparent] = _family(
        inst, born=_years_ago(16, days=-30), carers_count=2, with_login=True
    )
    other = _link(inst, pid, grandparent)
    # Sixty days ago the patient was a child: the parent (manage_consent) was their guardian.
    then = datetime.now(UTC) - timedelta(days=60)
    for email in (parent, grandparent):  # both links were set when the patient was 15
        _granted_all(inst, _link(inst, pid, email), then)
    guardian = _as(inst, parent, now=then)
    assert guardian.proxy_for(pid).guardian  # type: ignore[union-attr]
    carers.set_carer_scopes(inst.registry, guardian, other, ["see_results"], now=then)
    assert _stored(inst, other)[0] == "see_results"
    # Today the young person is past 16: the parent's child-time scopes lapsed at sign-in.
    parent_now = _as(inst, parent)
    assert parent_now.proxy_for(pid).scopes == frozenset()  # type: ignore[union-attr]
    seq = audit_seq(inst)
    with pytest.raises(PermissionDenied):
        carers.set_carer_scopes(inst.registry, parent_now, other, list(CARER_SCOPES))
    assert [e.outcome for e in audit_since(inst, seq)] == ["denied"]
    # The young person gives the parent manage_consent again: consent, not guardianship.
    young = _as(inst, f"young{_n_of(pid, inst)}@example.org")
    carers.set_carer_scopes(inst.registry, young, _link(inst, pid, parent), ["manage_consent"])
    again = _as(inst, parent)
    assert again.proxy_for(pid).scopes == {"manage_consent"}  # type: ignore[union-attr]
    assert not again.proxy_for(pid).guardian  # type: ignore[union-attr]
    with pytest.raises(PermissionDenied):
        carers.set_carer_scopes(inst.registry, again, other, list(CARER_SCOPES))
    assert _stored(inst, other)[0] == "see_results"  # unchanged, and lapsed:
    [shown] = [
        c for c in carers.list_carers(inst.registry, young, pid).carers if c.link_id == other
    ]
    assert shown.scopes == () and shown.lapsed


def test_a_carer_without_manage_consent_cannot_change_another_carer(installation):
    inst = installation
    pid, [first, second] = _family(inst, born=_years_ago(7), carers_count=2)
    carers.set_carer_scopes(inst.registry, inst.operator, _link(inst, pid, first), ["fill_forms"])
    target = _link(inst, pid, second)
    with pytest.raises(PermissionDenied):
        carers.set_carer_scopes(inst.registry, _as(inst, first), target, [])
    assert _stored(inst, target)[0] == ",".join(CARER_SCOPES)


def test_sign_in_drops_child_time_scopes_even_before_the_job_has_run(installation):
    inst = installation
    pid, [email] = _family(inst, born=_years_ago(16, days=-1))  # 16 yesterday
    link = _link(inst, pid, email)
    _granted_all(inst, link, datetime.now(UTC) - timedelta(days=40))
    assert _stored(inst, link)[0] == ",".join(CARER_SCOPES)  # the job has not run
    signed_in = identity.login(
        inst.registry, inst.settings, email=email, password=PASSWORD, context=RequestContext()
    ).principal
    assert signed_in.proxy_for(pid).scopes == frozenset()  # type: ignore[union-attr]
    assert patients.get_patient(inst.registry, signed_in, pid).id == pid
    with pytest.raises(PermissionDenied):
        entry.patient_timeline(inst.registry, signed_in, pid)
    # With the US age of 18 the same carer keeps the scopes for two more years.
    assert _as(inst, email, age=18).proxy_for(pid).scopes == frozenset(CARER_SCOPES)  # type: ignore[union-attr]


def test_the_hand_over_job_writes_the_lapse_down_once_and_lists_who_to_invite(installation):
    inst = installation
    born = date(2009, 6, 15)
    birthday = handover_date(born, 16)
    pid, [email] = _family(inst, born=born)
    with_login, [email2] = _family(inst, born=born, with_login=True)
    link = _link(inst, pid, email)
    for p, e in ((pid, email), (with_login, email2)):
        _granted_all(inst, _link(inst, p, e), _at(birthday - timedelta(days=100)))

    def mine(result: carers.HandoverResult) -> tuple[list[int], list[int]]:
        return (
            [x.patient_id for x in result.lapsed if x.patient_id in (pid, with_login)],
            [y.patient_id for y in result.without_account if y.patient_id in (pid, with_login)],
        )

    early = carers.run_handover(
        inst.registry, inst.operator, site="A", now=_at(birthday - timedelta(days=1))
    )
    assert mine(early) == ([], [])
    dry = carers.run_handover(
        inst.registry, inst.operator, site="A", now=_at(birthday), dry_run=True
    )
    assert mine(dry) == ([pid, with_login], [pid])
    assert _stored(inst, link)[0] == ",".join(CARER_SCOPES)  # a dry run changes nothing
    seq = audit_seq(inst)
    done = carers.run_handover(inst.registry, inst.operator, site="A", now=_at(birthday))
    assert mine(done) == ([pid, with_login], [pid])
    [young] = [y for y in done.without_account if y.patient_id == pid]
    assert young.name.startswith("Young") and young.handover_date == birthday
    assert _stored(inst, link)[0] == ""
    lapses = [e for e in audit_since(inst, seq) if e.action == "privilege_change"]
    assert {e.patient_id for e in lapses} >= {pid, with_login}
    assert all(_details(e)["change"] == "handover" for e in lapses)
    again = carers.run_handover(inst.registry, inst.operator, site="A", now=_at(birthday))
    assert mine(again) == ([], [pid])  # idempotent: nothing more lapses
    history = carers.list_carers(inst.registry, inst.operator, pid).carers[0].history
    assert [h.change for h in history] == ["changed", "changed", "handover"]
    # The young person grants their carer again: it holds after the hand-over.
    young_login = _as(inst, f"young{_n_of(with_login, inst)}@example.org")
    carers.set_carer_scopes(
        inst.registry, young_login, _link(inst, with_login, email2), ["see_results"]
    )
    assert _as(inst, email2).proxy_for(with_login).scopes == {"see_results"}  # type: ignore[union-attr]


def test_an_unknown_scope_is_refused_with_the_choices_and_changes_nothing(installation):
    inst = installation
    pid, [email] = _family(inst, born=_years_ago(5))
    link = _link(inst, pid, email)
    with pytest.raises(ValidationFailed) as refused:
        carers.set_carer_scopes(inst.registry, inst.operator, link, ["see_everything"])
    [detail] = refused.value.details
    assert detail.value == "see_everything" and "see_results" in detail.message
    assert _stored(inst, link)[0] == ",".join(CARER_SCOPES)


def test_staff_of_another_site_cannot_reach_a_sites_carers(installation):
    inst = installation
    pid, [email] = _family(inst, born=_years_ago(5))
    link = _link(inst, pid, email)
    from tests.capture.registry_helpers import principal as token_principal

    with pytest.raises(NotFound):
        carers.set_carer_scopes(inst.registry, token_principal(inst, "clinician@B"), link, [])
    done = carers.set_carer_scopes(inst.registry, token_principal(inst, "clinician@A"), link, [])
    assert done.scopes == ()
