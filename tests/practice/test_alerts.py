"""Alerts to a measure's owners, on a real installation, warehouse and loopback SMTP server.

Stored results of remission-prevalence at sites A and B over 2024–2025; A's last
month falls far below its limits. The owners (A's site lead, the
installation-wide analyst) are alerted once, by e-mail outside quiet hours
and in the app; a clinician is not; running again sends nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from careloop.cli.main import app as cli
from careloop.core.errors import NotFound
from careloop.core.mail import Mailer
from careloop.measures import MeasureRun, store_run
from careloop.measures.catalog import load_catalog
from careloop.practice.feedback.alerts import (
    alerts_of,
    mark_read,
    quiet,
    run_alerts,
    unread_count,
)
from careloop.trust import identity
from careloop.trust.principal import Principal, RequestContext
from careloop.warehouse.connection import Warehouse, warehouse_opener
from tests.foundation import PASSWORD, Installation, build_installation, make_settings
from tests.smtp import Inbox, smtp_server

MEASURE = "remission-prevalence"
NOON = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
USERS = (("site_lead", "A"), ("clinician", "A"), ("site_lead", "B"), ("analyst", None))


def _results(months: int, last_at_a: int | None) -> pd.DataFrame:
    starts = pd.date_range("2024-01-01", periods=months, freq="MS")
    rng = np.random.default_rng(7)
    rows = [(s, m.date(), int(rng.binomial(200, 0.6)), 200) for s in "AB" for m in starts]
    frame = pd.DataFrame(rows, columns=["site", "period_start", "numerator", "denominator"])
    if last_at_a is not None:
        frame.loc[(frame.site == "A") & (frame.period_start == starts[-1].date()), "numerator"] = (
            last_at_a
        )
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


def _store(inst: Installation, months: int, last_at_a: int | None, run_id: str) -> None:
    run = MeasureRun(
        run_id=run_id,
        run_at=datetime(2026, 1, months % 28 + 1, tzinfo=UTC),
        start=date(2024, 1, 1),
        end=date(2025, 12, 31),
        by=("site",),
        results=_results(months, last_at_a),
        hashes={MEASURE: "h"},
    )
    with Warehouse.from_settings(inst.settings) as wh:
        store_run(wh, run)


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    inst = build_installation(
        make_settings(tmp_path_factory.mktemp("alerts"), None), with_users=False
    )
    for role, site in USERS:
        email = f"{role}.{(site or 'net').lower()}@example.org"
        identity.add_user(
            inst.registry, inst.operator, email=email, display_name=email, password=PASSWORD,
            roles=[(role, site)],
        )  # fmt: skip
        inst.emails[f"{role}@{site}"] = email
        inst.tokens[f"{role}@{site}"] = identity.create_token(
            inst.registry, inst.operator, name="tests", for_user=email
        ).token
    _store(inst, 24, 40, "r1")
    try:
        yield inst
    finally:
        inst.registry.close()


def _run(inst: Installation, inbox: Inbox, now: datetime = NOON):  # type: ignore[no-untyped-def]
    mailer = Mailer(sender="careloop@example.org", host=inbox.host, port=inbox.port)
    return run_alerts(
        inst.registry,
        warehouse_opener(inst.settings),
        mailer,
        inst.operator,
        load_catalog(),
        now=now,
        base_url="https://careloop.example.org",
    )


def _who(inst: Installation, key: str) -> Principal:
    return identity.resolve_token(inst.registry, inst.tokens[key], RequestContext())


def _audit(inst: Installation, action: str) -> list[dict]:
    with inst.registry.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT details FROM audit_entry WHERE action = :a ORDER BY seq"), {"a": action}
        )
        return [json.loads(r.details) for r in rows]


def test_quiet_hours_run_from_the_evening_into_the_morning():
    assert quiet(datetime(2026, 1, 15, 20, 0, tzinfo=UTC), UTC)
    assert quiet(datetime(2026, 1, 15, 7, 59, tzinfo=UTC), UTC)
    assert not quiet(datetime(2026, 1, 15, 8, 0, tzinfo=UTC), UTC)
    assert not quiet(datetime(2026, 1, 15, 19, 59, tzinfo=UTC), UTC)
    assert not quiet(datetime(2026, 1, 15, 23, 0, tzinfo=UTC), UTC, (0, 0))


def _texts(inbox) -> dict[str, str]:
    """Each recipient's e-mail text (subject and body); one e-mail per person per run."""
    out: dict[str, str] = {}
    for m in inbox.messages:
        to = str(m["To"])
        assert to not in out, f"{to} got two e-mails in one run"
        out[to] = str(m["Subject"]) + "\n" + m.get_body(preferencelist=("plain",)).get_content()
    return out


def test_the_owners_are_alerted_once_by_e_mail_and_in_the_app(inst):
    with smtp_server() as inbox:
        first = _run(inst, inbox)
        lead, analyst = inst.emails["site_lead@A"], inst.emails["analyst@None"]
        texts = _texts(inbox)
        signal = "at A: December 2025 is outside"
        assert {who for who, text in texts.items() if signal in text} == {lead, analyst}
        # The network's signal (A pulls it down too) is the analyst's alone.
        network = {who for who, text in texts.items() if "across the network" in text}
        assert network == {analyst}
        assert inst.emails["clinician@A"] not in texts
        # B's lead hears of B's feedback report only, in an e-mail of its own.
        b_lead = inst.emails["site_lead@B"]
        assert texts[b_lead].splitlines()[0] == (
            "careloop: B's audit and feedback report for December 2025 is ready"
        )
        # Several alerts come as one e-mail that lists each with its page.
        assert texts[analyst].startswith("careloop: ") and " new alerts\n" in texts[analyst]
        assert "https://careloop.example.org/sites/A" in texts[lead]
        assert first.emailed == len(inbox.messages) and first.waiting == 0
        # Again: nothing new, nothing sent twice.
        again = _run(inst, inbox)
        assert (again.created, again.emailed) == (0, 0)
        assert len(inbox.messages) == first.emailed
    created = _audit(inst, "alert.create")
    assert sum(len(d["recipients"]) for d in created) == first.created
    emailed = _audit(inst, "alert.email")
    assert len(emailed) == first.emailed
    assert sum(len(d["keys"]) for d in emailed) == first.created  # every alert e-mailed once
    assert unread_count(inst.registry, _who(inst, "clinician@A")) == 0


def test_an_alert_in_the_quiet_hours_waits_for_the_morning(inst):
    _store(inst, 25, None, "r2")  # January 2026 arrives: a new feedback report for each site
    with smtp_server() as inbox:
        evening = _run(inst, inbox, datetime(2026, 1, 20, 21, 30, tzinfo=UTC))
        assert evening.created > 0 and evening.emailed == 0 and evening.waiting > 0
        assert inbox.messages == []
        morning = _run(inst, inbox, datetime(2026, 1, 21, 8, 5, tzinfo=UTC))
        assert morning.created == 0 and morning.emailed == evening.waiting
        subjects = {str(m["Subject"]) for m in inbox.messages}
        assert "careloop: A's audit and feedback report for January 2026 is ready" in subjects


def test_a_person_marks_their_own_alerts_read_and_no_one_elses(inst):
    lead = _who(inst, "site_lead@A")
    mine = alerts_of(inst.registry, lead)
    unread = unread_count(inst.registry, lead)
    assert unread == len(mine) > 1
    assert mark_read(inst.registry, lead, [mine[0].id], now=NOON) == 1
    assert unread_count(inst.registry, lead) == unread - 1
    other = _who(inst, "site_lead@B")
    with pytest.raises(NotFound):
        mark_read(inst.registry, other, [mine[1].id], now=NOON)
    assert unread_count(inst.registry, lead) == unread - 1
    assert mark_read(inst.registry, lead, None, now=NOON) == unread - 1
    assert unread_count(inst.registry, lead) == 0


def test_the_e_mails_hold_no_patient_identifier(inst):
    with smtp_server() as inbox:
        _store(inst, 26, 30, "r3")
        _run(inst, inbox)
        assert inbox.messages
        for message in inbox.messages:
            body = message.get_body(preferencelist=("plain",)).get_content()
            # Aggregates only: the measure, a site code, a month and a link.
            assert "person" not in body.lower() and "MRN" not in body
            assert not any(tok.isdigit() and len(tok) > 4 for tok in body.replace("/", " ").split())


def test_send_due_from_the_command_line_is_idempotent(inst, monkeypatch):
    with smtp_server() as inbox:
        monkeypatch.setenv("CARELOOP_SMTP_HOST", inbox.host)
        monkeypatch.setenv("CARELOOP_SMTP_PORT", str(inbox.port))
        args = ["alerts", "send-due", "--data-dir", str(inst.settings.data_dir),
                "--now", "2026-02-10T10:00+00:00", "--base-url", "https://c.example.org"]  # fmt: skip
        done = CliRunner().invoke(cli, args)
        assert done.exit_code == 0, done.output
        assert "0 new for their owners, 0 e-mails sent" in " ".join(done.output.split())
        bad = CliRunner().invoke(cli, [*args[:4], "--quiet-hours", "20-25"])
        assert bad.exit_code != 0 and "--quiet-hours" in bad.output
