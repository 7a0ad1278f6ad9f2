"""`careloop patient invite`: the e-mail goes through SMTP, or into the outbox folder."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

from typer.testing import CliRunner

from careloop.cli.main import app
from careloop.core.mail import OUTBOX_DIR
from careloop.trust import invitations
from careloop.trust.installation import open_registry
from tests.foundation import build_installation, make_settings
from tests.smtp import Inbox


def _installation(tmp_path, **extra):
    settings = make_settings(tmp_path, None, **extra)
    return build_installation(settings, with_users=False), settings


def _register(inst) -> int:
    from careloop.trust import patients

    return patients.register_patient(
        inst.registry, inst.operator, site="A", local_id="H-77", consent_state="withdrawn"
    ).id


def test_the_operator_invites_a_patient_and_the_message_lands_in_the_outbox(tmp_path):
    inst, settings = _installation(tmp_path)
    patient_id = _register(inst)
    inst.registry.close()
    data = ["--data-dir", str(settings.data_dir)]
    args = ["patient", "invite", "H-77", "--site", "A", "--email", "kid@example.org", *data]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "CARELOOP_PUBLIC_BASE_URL" in refused.output
    done = CliRunner().invoke(app, [*args, "--base-url", "https://care.example.org"])
    assert done.exit_code == 0, done.output
    assert "kid@example.org as patient of patient H-77 at A" in done.output
    assert "outbox" in done.output
    [eml] = list((settings.data_dir / OUTBOX_DIR).glob("*.eml"))
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"https://care\.example\.org/invitation/(\S+)", text)
    assert link is not None and "H-77" not in text
    inst2 = open_registry(settings)
    try:
        view = invitations.open_invitation_by_key(inst2, invitations.invitation_key(link.group(1)))
        assert view.email == "kid@example.org" and view.role == "patient"
        accepted = invitations.accept_invitation_by_key(
            inst2,
            invitations.invitation_key(link.group(1)),
            display_name="Kid",
            password="a long enough password",
            lockout_settings=settings,
        )
        assert accepted.patient_id == patient_id and accepted.created_account
    finally:
        inst2.close()


def test_an_unknown_local_id_is_refused_and_a_carer_is_invited_through_smtp(
    tmp_path, smtp_inbox: Inbox, monkeypatch
):
    monkeypatch.setenv("CARELOOP_SMTP_HOST", smtp_inbox.host)
    monkeypatch.setenv("CARELOOP_SMTP_PORT", str(smtp_inbox.port))
    inst, settings = _installation(tmp_path, smtp_host=smtp_inbox.host, smtp_port=smtp_inbox.port)
    _register(inst)
    inst.registry.close()
    args = ["patient", "invite", "H-7", "--site", "A", "--email", "x@example.org", "--carer"]
    done = CliRunner().invoke(
        app, [*args, "--base-url", "https://c.example.org", "--data-dir", str(settings.data_dir)]
    )
    assert done.exit_code == 2 and "no patient 'H-7' at site A" in done.output
    assert smtp_inbox.messages == []
    ok = CliRunner().invoke(
        app,
        [
            "patient",
            "invite",
            "H-77",
            "--site",
            "A",
            "--email",
            "mum@example.org",
            "--carer",
            "--relationship",
            "parent",
            "--base-url",
            "https://c.example.org",
            "--data-dir",
            str(settings.data_dir),
        ],
    )
    assert ok.exit_code == 0 and "outbox" not in ok.output, ok.output
    assert smtp_inbox.envelopes[-1][1] == ["mum@example.org"]
    assert "as their carer" in smtp_inbox.last_text()


def test_the_operator_withdraws_one_purpose_and_imports_the_national_opt_out(tmp_path):
    from careloop.trust import patients
    from tests.conftest import TEST_DATA

    inst, settings = _installation(tmp_path)
    for local_id in ("H-5", "9998645425", "9994103660"):
        patients.register_patient(
            inst.registry,
            inst.operator,
            site="A",
            local_id=local_id,
            consent_state="improvement_and_research",
        )
    inst.registry.close()
    data = ["--data-dir", str(settings.data_dir)]
    shown = CliRunner().invoke(app, ["patient", "consent", "H-5", "--site", "A", *data])
    assert shown.exit_code == 0, shown.output
    assert "research yes" in shown.output and "recontact no" in shown.output
    args = ["patient", "consent", "H-5", "--site", "A", "--purpose", "research"]
    done = CliRunner().invoke(app, [*args, "--withdraw", *data])
    assert done.exit_code == 0, done.output
    assert "Consent to research withdrawn: recorded." in done.output
    assert "quality_improvement yes, research no" in done.output
    again = CliRunner().invoke(app, [*args, "--withdraw", *data])
    assert "unchanged" in again.output
    both = CliRunner().invoke(app, [*args, "--withdraw", "--give", *data])
    assert both.exit_code != 0 and "--give or --withdraw" in both.output
    opt_outs = TEST_DATA / "national_opt_out"
    imported = CliRunner().invoke(
        app,
        ["patient", "opt-outs", "import", str(opt_outs / "opted_out.dat"), "--site", "A", *data],
    )
    assert imported.exit_code == 0, imported.output
    assert "6 on the list: 2 are patients of A (2 now opted out" in imported.output
    assert "4 are not patients of A" in imported.output
    assert "9991146180" not in imported.output  # never shown: not our patients
    bad_file = str(opt_outs / "bad_check_digit.csv")
    bad = CliRunner().invoke(app, ["patient", "opt-outs", "import", bad_file, "--site", "A", *data])
    assert bad.exit_code != 0 and "bad_check_digit.csv:3" in bad.output
