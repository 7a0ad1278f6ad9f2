"""PROM outreach: schedules, due days, reminders, expiry, consent, e-mail and completion.

Each test has an installation of its own (SQLite and PostgreSQL): the job acts
on every open invitation of a site, so tests sharing one would see each other's.
Time runs on a simulated clock: ``send_due(now=...)``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update

from careloop.capture import entry
from careloop.capture.prom_log import (
    completion_by_month,
    completion_chart,
    invitation_log,
    patient_questionnaires,
    summarise,
)
from careloop.capture.prom_outreach import _message, send_due
from careloop.capture.prom_schedules import (
    add_schedule,
    book_visit,
    cancel_visit,
    list_schedules,
    move_visit,
    set_schedule_active,
)
from careloop.capture.proms import submit_prom_link
from careloop.core.errors import NotFound, PermissionDenied, ValidationFailed
from careloop.core.mail import Mailer
from careloop.store.models import Site
from careloop.store.models.capture import FormDefinition, PromInvitation, PromSchedule
from careloop.trust import patients
from tests.capture.registry_helpers import (
    PROM,
    VISIT,
    audit_seq,
    audit_since,
    crohns_visit,
    import_examples,
    principal,
    prom_answers,
)
from tests.foundation import build_installation, make_settings
from tests.smtp import Inbox, smtp_server

BASE = "https://careloop.example.org"


@pytest.fixture
def inst(tmp_path, database_url):
    installation = build_installation(make_settings(tmp_path, database_url))
    import_examples(installation)
    yield installation
    installation.registry.close()


@pytest.fixture
def inbox():
    with smtp_server() as box:
        yield box


def _mailer(inbox: Inbox) -> Mailer:
    return Mailer(sender="careloop@example.org", host=inbox.host, port=inbox.port)


def _today() -> date:
    return datetime.now(UTC).date()


def _at(day: date, hour: int = 9) -> datetime:
    """``hour`` o'clock UTC on ``day`` (in London in winter, the same)."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _log(inst, **kw):
    return invitation_log(inst.registry, inst.operator, **kw)


def _run(inst, inbox, now, **kw):
    return send_due(inst.registry, inst.operator, _mailer(inbox), link_base=BASE, now=now, **kw)


def test_a_visit_schedule_invites_n_days_before_the_visit_once_and_reminds_then_expires(
    inst, inbox
):
    own = inst.patient_ids["A"][0]  # has a login of their own: patient.a@example.org
    add_schedule(
        inst.registry,
        inst.operator,
        site="A",
        form=PROM,
        kind="before_visit",
        days=7,
        remind_after_days=2,
        max_reminders=1,
        expires_after_days=5,
    )
    visit_day = _today() + timedelta(days=20)
    book_visit(inst.registry, inst.operator, own, visit_date=visit_day)

    early = _run(inst, inbox, _at(visit_day - timedelta(days=8)))
    assert early.created == 0 and not inbox.messages  # not due yet

    due = visit_day - timedelta(days=7)
    first = _run(inst, inbox, _at(due))
    again = _run(inst, inbox, _at(due, 10))  # idempotent: nobody is invited twice
    assert (first.created, first.sent, again.created, again.sent) == (1, 1, 0, 0)
    assert len(inbox.messages) == 1
    assert inbox.envelopes[0][1] == ["patient.a@example.org"]
    (row,) = _log(inst)
    assert row.due_date == due and row.channel == "smtp" and row.state == "open"

    assert _run(inst, inbox, _at(due + timedelta(days=1))).reminded == 0  # too soon
    reminded = _run(inst, inbox, _at(due + timedelta(days=2)))
    assert reminded.reminded == 1 and inbox.messages[-1]["Subject"].startswith("Reminder:")
    assert _run(inst, inbox, _at(due + timedelta(days=4))).reminded == 0  # max 1 reminder
    assert len(inbox.messages) == 2

    seq = audit_seq(inst)
    expired = _run(inst, inbox, _at(due + timedelta(days=5)))
    assert expired.expired == 1
    (row,) = _log(inst)
    assert row.state == "expired" and row.reminders_sent == 1
    closing = [e for e in audit_since(inst, seq) if e.category == "prom_invitation"]
    assert any("expired" in str(e.details) for e in closing)


def test_the_email_reaches_a_real_smtp_server_with_a_working_link_and_no_clinical_data(inst, inbox):
    own = inst.patient_ids["A"][0]
    add_schedule(inst.registry, inst.operator, site="A", form=PROM, kind="before_visit", days=7)
    visit_day = _today() + timedelta(days=5)
    book_visit(inst.registry, inst.operator, own, visit_date=visit_day)
    seq = audit_seq(inst)
    _run(inst, inbox, _at(_today()))
    text = inbox.last_text()
    assert "Your care team at Site A asks you to fill in a short questionnaire before your " in (
        text
    )
    assert f"{visit_day.day} {visit_day:%B %Y}" in text  # 7 December 2026, as long_date writes it
    for secret in (PROM, "IBD", "symptom", "Given", "Family", "MRN", "tummy", "score"):
        assert secret.lower() not in text.lower()
        assert secret.lower() not in str(inbox.messages[-1]["Subject"]).lower()
    token = re.search(r"/prom/(\S+)", text)
    assert token is not None
    # The patient fills it through the link; the next run sees it done.
    submit_prom_link(inst.registry, token.group(1), values=prom_answers(_today().isoformat()))
    done = _run(inst, inbox, _at(_today(), 23))
    assert done.completed == 1
    (row,) = _log(inst)
    assert row.state == "done"
    events = [e for e in audit_since(inst, seq) if e.category == "prom_invitation"]
    assert [e.action for e in events][:1] == ["create"]
    for event in events:
        assert "tummy" not in str(event.details) and PROM not in str(event.details)


def test_an_older_questionnaire_entered_after_the_request_does_not_count_as_the_answer(inst, inbox):
    # The care team types in last month's paper questionnaire after the e-mail went out:
    # the request is still open, on the patient's page too, until one about now comes in.
    own = inst.patient_ids["A"][0]
    add_schedule(inst.registry, inst.operator, site="A", form=PROM, kind="before_visit", days=7)
    visit_day = _today() + timedelta(days=3)
    due = visit_day - timedelta(days=7)
    book_visit(inst.registry, inst.operator, own, visit_date=visit_day)
    assert _run(inst, inbox, _at(due)).sent == 1
    older = due - timedelta(days=30)
    entry.create_response(
        inst.registry,
        inst.operator,
        PROM,
        patient_id=own,
        event_date=older,
        values=prom_answers(older.isoformat()),
        status="complete",
    )
    assert _run(inst, inbox, datetime.now(UTC)).completed == 0
    (row,) = _log(inst)
    assert row.state == "open"
    (asked,) = patient_questionnaires(inst.registry, principal(inst, "patient@A"))
    assert asked.done_at is None
    token = re.search(r"/prom/(\S+)", inbox.last_text())
    assert token is not None
    submit_prom_link(inst.registry, token.group(1), values=prom_answers(_today().isoformat()))
    assert _run(inst, inbox, datetime.now(UTC)).completed == 1


def test_a_moved_visit_withdraws_the_old_invitation_and_a_cancelled_one_withdraws_it(inst, inbox):
    own, proxied = inst.patient_ids["A"]
    add_schedule(inst.registry, inst.operator, site="A", form=PROM, kind="before_visit", days=7)
    first = book_visit(inst.registry, inst.operator, own, visit_date=_today() + timedelta(days=30))
    second = book_visit(
        inst.registry, inst.operator, proxied, visit_date=_today() + timedelta(days=30)
    )
    day = _today() + timedelta(days=23)
    assert _run(inst, inbox, _at(day)).created == 2
    # The carer of the second patient got that patient's invitation.
    assert sorted(rcpt for _, (rcpt,) in inbox.envelopes) == [
        "carer.a@example.org",
        "patient.a@example.org",
    ]
    move_visit(inst.registry, inst.operator, first.id, visit_date=_today() + timedelta(days=40))
    cancel_visit(inst.registry, inst.operator, second.id)
    run = _run(inst, inbox, _at(day, 12))
    assert run.withdrawn == 2 and run.created == 0  # the moved visit is not due yet
    reasons = sorted(row.closed_reason or "" for row in _log(inst))
    assert reasons == ["visit_cancelled", "visit_moved"]
    later = _run(inst, inbox, _at(_today() + timedelta(days=33)))
    assert later.created == 1  # the moved visit, 7 days before its new day
    assert _log(inst)[-1].due_date == _today() + timedelta(days=33)


def test_every_n_weeks_falls_due_from_registration_and_after_event_from_the_event(inst, inbox):
    own = inst.patient_ids["A"][0]
    add_schedule(inst.registry, inst.operator, site="A", form=PROM, kind="every_weeks", weeks=4)
    add_schedule(
        inst.registry,
        inst.operator,
        site="A",
        form=PROM,
        kind="after_event",
        event_kind=VISIT,
        days=3,
    )
    entry.create_response(
        inst.registry,
        principal(inst, "clinician@A"),
        VISIT,
        patient_id=own,
        event_date=_today().isoformat(),
        values=crohns_visit(_today().isoformat()),
        status="complete",
    )
    assert _run(inst, inbox, _at(_today() + timedelta(days=2))).created == 0
    after = _run(inst, inbox, _at(_today() + timedelta(days=3)))
    assert after.created == 1
    assert _log(inst)[0].due_date == _today() + timedelta(days=3)
    four_weeks = _run(inst, inbox, _at(_today() + timedelta(weeks=4)))
    # Both patients of site A (and only site A) were registered today.
    assert four_weeks.created == 2
    rows = [r for r in _log(inst) if r.due_date == _today() + timedelta(weeks=4)]
    assert len(rows) == 2 and {r.site for r in _log(inst)} == {"A"}
    assert _run(inst, inbox, _at(_today() + timedelta(weeks=5))).created == 0
    assert _run(inst, inbox, _at(_today() + timedelta(weeks=8))).created == 2


def test_a_patient_without_an_address_is_logged_and_sees_it_on_the_portal_only(inst, inbox):
    lone = patients.register_patient(
        inst.registry,
        inst.operator,
        site="A",
        local_id="MRN-A-9",
        consent_state="direct_care_only",
    ).id
    add_schedule(inst.registry, inst.operator, site="A", form=PROM, kind="before_visit", days=7)
    book_visit(inst.registry, inst.operator, lone, visit_date=_today() + timedelta(days=3))
    run = _run(inst, inbox, _at(_today()))
    assert (run.created, run.no_address, run.sent) == (1, 1, 0) and not inbox.messages
    (row,) = _log(inst)
    assert row.channel == "no_address" and row.sent_at is None
    assert _run(inst, inbox, _at(_today(), 11)).no_address == 0  # logged once


def test_consent_decides_for_improvement_and_research_schedules(inst, inbox):
    direct_only = patients.register_patient(
        inst.registry, inst.operator, site="A", local_id="MRN-A-8", consent_state="direct_care_only"
    ).id
    own = inst.patient_ids["A"][0]  # improvement_and_research
    add_schedule(
        inst.registry,
        inst.operator,
        site="A",
        form=PROM,
        kind="before_visit",
        days=7,
        purpose="quality_improvement",
    )
    for patient_id in (direct_only, own):
        book_visit(
            inst.registry, inst.operator, patient_id, visit_date=_today() + timedelta(days=3)
        )
    run = _run(inst, inbox, _at(_today()))
    assert (run.created, run.skipped_consent) == (1, 1)
    assert [r.patient_id for r in _log(inst)] == [own]
    patients.record_consent(inst.registry, inst.operator, own, state="withdrawn", method="paper")
    assert _run(inst, inbox, _at(_today(), 12)).withdrawn == 1
    assert _log(inst)[0].closed_reason == "consent"


def test_a_retired_form_or_a_paused_schedule_invites_nobody(inst, inbox):
    own = inst.patient_ids["A"][0]
    made = add_schedule(
        inst.registry, inst.operator, site="A", form=PROM, kind="before_visit", days=7
    )
    book_visit(inst.registry, inst.operator, own, visit_date=_today() + timedelta(days=3))
    set_schedule_active(inst.registry, inst.operator, made.id, active=False)
    assert _run(inst, inbox, _at(_today())).created == 0
    set_schedule_active(inst.registry, inst.operator, made.id, active=True)
    assert _run(inst, inbox, _at(_today(), 10)).created == 1
    with inst.registry.transaction() as session:
        session.execute(
            update(FormDefinition).where(FormDefinition.name == PROM).values(patient_reported=False)
        )
    try:
        assert _run(inst, inbox, _at(_today(), 11)).withdrawn == 1
        assert _log(inst)[0].closed_reason == "form_retired"
    finally:
        with inst.registry.transaction() as session:
            session.execute(
                update(FormDefinition)
                .where(FormDefinition.name == PROM)
                .values(patient_reported=True)
            )


def test_a_failed_send_is_logged_and_retried_at_the_next_run(inst, inbox):
    own = inst.patient_ids["A"][0]
    add_schedule(inst.registry, inst.operator, site="A", form=PROM, kind="before_visit", days=7)
    book_visit(inst.registry, inst.operator, own, visit_date=_today() + timedelta(days=3))
    dead = Mailer(sender="careloop@example.org", host="127.0.0.1", port=1, timeout_seconds=2)
    run = send_due(inst.registry, inst.operator, dead, link_base=BASE, now=_at(_today()))
    assert (run.created, run.failed, run.sent) == (1, 1, 0) and "127.0.0.1:1" in run.failures[0]
    (row,) = _log(inst)
    assert row.channel == "failed" and row.failures == 1 and row.sent_at is None
    assert _run(inst, inbox, _at(_today(), 10)).sent == 1
    assert _log(inst)[0].channel == "smtp"


def test_bad_schedules_are_refused_with_each_field_named_and_nothing_saved(inst):
    for kwargs, field in (
        ({"kind": "before_visit"}, "days"),
        ({"kind": "every_weeks", "weeks": 0}, "weeks"),
        ({"kind": "after_event", "days": 3}, "event_kind"),
        ({"kind": "monthly"}, "kind"),
        ({"kind": "before_visit", "days": 7, "purpose": "marketing"}, "purpose"),
        ({"kind": "before_visit", "days": 7, "weeks": 2}, "weeks"),
        ({"kind": "before_visit", "days": 7, "max_reminders": 9}, "max_reminders"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            add_schedule(inst.registry, inst.operator, site="A", form=PROM, **kwargs)
        assert field in [d.location for d in caught.value.details]
    with pytest.raises(ValidationFailed):
        add_schedule(
            inst.registry, inst.operator, site="A", form=VISIT, kind="every_weeks", weeks=4
        )
    with pytest.raises(NotFound):
        add_schedule(inst.registry, inst.operator, site="Z", form=PROM, kind="every_weeks", weeks=4)
    assert list_schedules(inst.registry, inst.operator) == []


def test_access_patients_see_their_own_due_proms_and_staff_only_their_site(inst, inbox):
    own, proxied = inst.patient_ids["A"]
    other_site = inst.patient_ids["B"][0]
    add_schedule(
        inst.registry,
        principal(inst, "clinician@A"),
        site="A",
        form=PROM,
        kind="before_visit",
        days=7,
    )
    add_schedule(inst.registry, inst.operator, site="B", form=PROM, kind="before_visit", days=7)
    for patient_id in (own, proxied, other_site):
        book_visit(
            inst.registry, inst.operator, patient_id, visit_date=_today() + timedelta(days=3)
        )
    _run(inst, inbox, _at(_today()))
    mine = patient_questionnaires(inst.registry, principal(inst, "patient@A"))
    assert [q.patient_id for q in mine] == [own] and mine[0].done_at is None
    cared = patient_questionnaires(inst.registry, principal(inst, "carer@A"))
    assert [q.patient_id for q in cared] == [proxied]
    with pytest.raises(PermissionDenied):
        invitation_log(inst.registry, principal(inst, "patient@A"))
    with pytest.raises(PermissionDenied):
        add_schedule(
            inst.registry,
            principal(inst, "patient@A"),
            site="A",
            form=PROM,
            kind="every_weeks",
            weeks=4,
        )
    clinician_b = principal(inst, "clinician@B")
    assert {r.site for r in invitation_log(inst.registry, clinician_b)} == {"B"}
    with pytest.raises(NotFound):
        add_schedule(inst.registry, clinician_b, site="A", form=PROM, kind="every_weeks", weeks=4)
    a_schedule = list_schedules(inst.registry, inst.operator, site="A")[0]
    with pytest.raises(NotFound):
        set_schedule_active(inst.registry, clinician_b, a_schedule.id, active=False)
    with pytest.raises(NotFound):
        book_visit(inst.registry, clinician_b, own, visit_date=_today())


def test_completion_per_site_and_month_matches_a_hand_count_and_draws_a_p_chart(inst, inbox):
    own = inst.patient_ids["A"][0]
    add_schedule(
        inst.registry,
        inst.operator,
        site="A",
        form=PROM,
        kind="before_visit",
        days=7,
        expires_after_days=3,
    )
    book_visit(inst.registry, inst.operator, own, visit_date=_today() + timedelta(days=5))
    _run(inst, inbox, _at(_today()))
    entry.create_response(
        inst.registry,
        principal(inst, "patient@A"),
        PROM,
        patient_id=own,
        event_date=_today().isoformat(),
        values=prom_answers(_today().isoformat()),
        status="complete",
    )
    # Filled on the portal: done on the patient's page at once, before the job sees it.
    seen = patient_questionnaires(inst.registry, principal(inst, "patient@A"))
    assert seen[0].done_at is not None
    _run(inst, inbox, _at(_today(), 23))
    months = completion_by_month(inst.registry, inst.operator, site="A")
    month = (_today() - timedelta(days=2)).strftime("%Y-%m")
    assert [(m.month, m.invited, m.completed, m.rate) for m in months] == [(month, 1, 1, 1.0)]
    done = patient_questionnaires(inst.registry, principal(inst, "patient@A"))
    assert done[0].done_at is not None


def test_completion_counts_settled_invitations_only_and_the_p_chart_limits_match_a_hand_count():
    from careloop.capture.prom_log import InvitationLogRow

    def row(i, month, *, done=False, closed=None, channel="smtp"):
        day = date(2026, month, 10)
        stamp = datetime(2026, month, 11, tzinfo=UTC)
        return InvitationLogRow(
            i,
            "A",
            1,
            PROM,
            i,
            f"P{i}",
            day,
            stamp,
            stamp,
            channel,
            0,
            0,
            stamp if done else None,
            closed,
        )

    # Hand count. September: 4 settled (3 done, 1 expired), 1 open, 1 withdrawn.
    # October: 5 settled (2 done), one of the expired without an address.
    rows = [
        row(1, 9, done=True),
        row(2, 9, done=True),
        row(3, 9, done=True),
        row(4, 9, closed="expired"),
        row(5, 9),
        row(6, 9, closed="visit_cancelled"),
        row(7, 10, done=True),
        row(8, 10, done=True),
        row(9, 10, closed="expired"),
        row(10, 10, closed="expired", channel="no_address"),
        row(11, 10, closed="expired"),
    ]
    months = summarise(rows)
    assert [(m.month, m.invited, m.completed, m.pending, m.no_address) for m in months] == [
        ("2026-09", 4, 3, 1, 0),
        ("2026-10", 5, 2, 0, 1),
    ]
    from careloop.capture.prom_log import CompletionMonth

    # The p-chart by hand (Montgomery, Introduction to Statistical Quality Control, 6.2):
    # p-bar = (30 + 20) / (40 + 50); limits p-bar ± 3 sqrt(p-bar (1 - p-bar) / n_i), x100.
    big = [
        CompletionMonth("A", "2026-09", 40, 30, 0, 0),
        CompletionMonth("A", "2026-10", 50, 20, 0, 0),
    ]
    p = 50 / 90
    points = completion_chart(big, site="A").points
    assert points["cl"].iloc[0] == pytest.approx(100 * p)
    for i, n in enumerate((40, 50)):
        sigma = (p * (1 - p) / n) ** 0.5
        assert points["ucl"].iloc[i] == pytest.approx(100 * (p + 3 * sigma), rel=1e-9)
        assert points["lcl"].iloc[i] == pytest.approx(100 * (p - 3 * sigma), rel=1e-9)
    assert list(points["y"]) == pytest.approx([75.0, 40.0])
    with pytest.raises(ValidationFailed):
        completion_chart(months, site="B")


def test_the_email_is_written_in_the_language_asked_for_with_the_day_in_that_language():
    # Transient rows (never saved): only the words of the e-mail are checked here.
    site = Site(code="N", name="Clínica Norte", time_zone="Europe/Madrid")
    schedule = PromSchedule(kind="before_visit")
    invitation = PromInvitation(
        occasion_date=date(2026, 3, 9), expires_at=datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    )
    url = "https://careloop.example.org/prom/secret"
    subject, text = _message(site, invitation, schedule, url, reminder=True, language="es")
    assert subject == "Recordatorio: Un cuestionario corto de su equipo de cuidado de Clínica Norte"
    assert "antes de su visita del 9 de marzo de 2026" in text
    assert "hasta el 10 de marzo de 2026" in text and url in text
    english_subject, english = _message(site, invitation, schedule, url, reminder=False)
    assert english_subject == "A short questionnaire from your care team at Clínica Norte"
    assert "before your visit on 9 March 2026" in english and "until 10 March 2026" in english
