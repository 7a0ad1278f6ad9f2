"""`careloop prom …`: schedules, visits, the send-due job (through a real SMTP server) and the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from careloop.cli.main import app
from tests.capture.registry_helpers import PROM, import_examples
from tests.foundation import build_installation, make_settings
from tests.smtp import smtp_server


def test_the_operator_schedules_books_sends_and_reads_the_log_and_bad_input_changes_nothing(
    tmp_path, monkeypatch
):
    with smtp_server() as inbox:
        monkeypatch.setenv("CARELOOP_SMTP_HOST", inbox.host)
        monkeypatch.setenv("CARELOOP_SMTP_PORT", str(inbox.port))
        settings = make_settings(tmp_path, None)
        inst = build_installation(settings)
        import_examples(inst)
        inst.registry.close()
        data = ["--data-dir", str(settings.data_dir)]
        run = CliRunner().invoke

        for bad, says in (
            (["--every-weeks", "4", "--before-visit-days", "7"], "exactly one of"),
            ([], "exactly one of"),
            (["--before-visit-days", "7", "--days", "3"], "--days goes with --after-event"),
            (["--every-weeks", "0"], "weeks"),
            (["--before-visit-days", "7", "--purpose", "sales"], "purpose"),
        ):
            refused = run(
                app, ["prom", "schedule", "add", "--site", "A", "--form", PROM, *bad, *data]
            )
            assert refused.exit_code == 2 and says in refused.output, refused.output
            assert "Traceback" not in refused.output
        listed = run(app, ["prom", "schedule", "list", *data])
        assert listed.exit_code == 0 and "before" not in listed.output  # nothing was added

        added = run(
            app,
            [
                "prom",
                "schedule",
                "add",
                "--site",
                "A",
                "--form",
                PROM,
                "--before-visit-days",
                "7",
                "--remind-after-days",
                "2",
                "--reminders",
                "1",
                "--expires-after-days",
                "5",
                *data,
            ],
        )
        assert added.exit_code == 0, added.output
        assert "7 days before each visit" in added.output
        visit_day = datetime.now(UTC).date() + timedelta(days=3)
        booked = run(
            app, ["prom", "visit", "add", "MRN-A-1", "--site", "A", "--date", str(visit_day), *data]
        )
        assert booked.exit_code == 0, booked.output
        nobody = run(
            app, ["prom", "visit", "add", "MRN-Z-1", "--site", "A", "--date", str(visit_day), *data]
        )
        assert nobody.exit_code == 2 and "no patient" in nobody.output

        assert run(app, ["prom", "send-due", "--now", "tomorrow", *data]).exit_code == 2
        no_base = run(app, ["prom", "send-due", *data])
        assert no_base.exit_code == 2 and "CARELOOP_PUBLIC_BASE_URL" in no_base.output
        assert not inbox.messages
        base = ["--base-url", "https://care.example.org"]
        first = run(app, ["prom", "send-due", *base, *data])
        second = run(app, ["prom", "send-due", *base, *data])
        assert "1 due, 1 sent" in first.output, first.output
        assert "0 due, 0 sent" in second.output
        assert len(inbox.messages) == 1
        assert "https://care.example.org/prom/" in inbox.last_text()

        logged = run(app, ["prom", "log", "--site", "A", *data])
        assert logged.exit_code == 0 and "MRN-A-1" in logged.output and "smtp" in logged.output
        assert run(app, ["prom", "log", "--month", "2026-13", *data]).exit_code == 2
        done = run(app, ["prom", "completion", *data])
        assert done.exit_code == 0 and "PROM completion" in done.output
