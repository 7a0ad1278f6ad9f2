"""careloop's e-mail: through a real SMTP server (aiosmtpd), or into the outbox folder."""

from __future__ import annotations

import stat
from email import message_from_bytes, policy

import pytest

from careloop.core.errors import ConfigurationError, InputError
from careloop.core.mail import OUTBOX_DIR, Mailer
from careloop.core.settings import load_settings
from tests.smtp import Inbox, free_port


def test_a_message_reaches_the_smtp_server_with_its_sender_recipient_and_text(
    smtp_inbox: Inbox,
) -> None:
    mailer = Mailer(sender="careloop@clinic.example", host=smtp_inbox.host, port=smtp_inbox.port)
    sent = mailer.send(to="pat@example.org", subject="Hello", text="Line one\nLine two")
    assert sent.via == "smtp" and sent.path is None
    [message] = smtp_inbox.messages
    assert smtp_inbox.envelopes == [("careloop@clinic.example", ["pat@example.org"])]
    assert message["Subject"] == "Hello"
    assert message["Message-ID"] == sent.message_id
    assert smtp_inbox.last_text() == "Line one\nLine two\n"


def test_the_settings_build_a_mailer_for_their_smtp_server(smtp_inbox: Inbox, tmp_path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        smtp_host=smtp_inbox.host,
        smtp_port=smtp_inbox.port,
        mail_from="team@clinic.example",
        smtp_password="s3cret",
    )
    mailer = Mailer.from_settings(settings)
    assert "s3cret" not in repr(mailer)
    mailer.send(to="a@example.org", subject="S", text="T")
    assert smtp_inbox.messages[0]["From"] == "team@clinic.example"


def test_without_an_smtp_host_messages_are_written_into_the_outbox_for_the_owner_only(
    tmp_path,
) -> None:
    mailer = Mailer.from_settings(load_settings(data_dir=tmp_path))
    sent = mailer.send(to="pat@example.org", subject="Your link", text="Open it")
    assert sent.via == "outbox" and sent.path is not None
    assert sent.path.parent == tmp_path / OUTBOX_DIR
    assert stat.S_IMODE(sent.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(sent.path.parent.stat().st_mode) == 0o700
    message = message_from_bytes(sent.path.read_bytes(), policy=policy.default)
    assert message["To"] == "pat@example.org"
    assert "Open it" in message.get_content()  # type: ignore[attr-defined]


def test_an_smtp_server_that_cannot_be_reached_is_a_configuration_error_naming_it() -> None:
    port = free_port()  # nothing listens there
    mailer = Mailer(sender="c@example.org", host="127.0.0.1", port=port, timeout_seconds=5)
    with pytest.raises(ConfigurationError, match=f"127.0.0.1:{port}.*CARELOOP_SMTP_HOST"):
        mailer.send(to="a@example.org", subject="S", text="T")


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(tmp_path) -> None:
    mailer = Mailer(sender="c@example.org", outbox=tmp_path / "out")
    with pytest.raises(InputError, match="line break"):
        mailer.send(to="a@example.org\nBcc: x@example.org", subject="S", text="T")
    assert not (tmp_path / "out").exists()
