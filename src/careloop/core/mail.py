"""E-mail from careloop: through an SMTP server, or into a folder of .eml files.

A :class:`Mailer` is built once from the settings (:meth:`Mailer.from_settings`)
by the app or the CLI and handed to the domain functions that send mail; they
never read the settings themselves. With ``CARELOOP_SMTP_HOST`` set, messages
go to that server (plain, STARTTLS or TLS, with a login when one is given);
without it they are written as ``.eml`` files into ``<data dir>/outbox/``
(readable by the installation's owner only: a message may carry a link that
opens an account), where an operator can read them or send them by hand.

The standard library's ``smtplib`` does the sending: no dependency is needed
for a protocol this small.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Literal

from careloop.core.errors import ConfigurationError, InputError
from careloop.core.plain_text import control_characters
from careloop.core.private_files import PRIVATE_FILE_MODE, private_dir
from careloop.core.settings import Settings

__all__ = ["OUTBOX_DIR", "Mailer", "SentMail"]

OUTBOX_DIR = "outbox"
"""The folder of the data directory that holds messages when no SMTP server is set."""

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class SentMail:
    """A message careloop handed on."""

    message_id: str
    """The message's Message-ID header."""
    to: str
    """The one recipient."""
    via: Literal["smtp", "outbox"]
    """Sent to the SMTP server, or written into the outbox folder."""
    path: Path | None = None
    """The .eml file, when it went to the outbox."""


@dataclass(frozen=True)
class Mailer:
    """Sends careloop's messages; see the module's description."""

    sender: str
    """The From address."""
    host: str = ""
    """The SMTP server; empty: write into :attr:`outbox` instead."""
    port: int = 25
    """The SMTP server's port."""
    security: Security = "none"
    """none, starttls or tls."""
    username: str = ""
    """The SMTP login (none when empty)."""
    password: str = ""
    """The SMTP password."""
    outbox: Path | None = None
    """Where messages are written when there is no SMTP server."""
    timeout_seconds: float = 30.0
    """How long to wait for the SMTP server."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer:
        """The mailer the settings describe (the outbox is in the data directory)."""
        return cls(
            sender=settings.mail_from,
            host=settings.smtp_host.strip(),
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=(settings.smtp_password.get_secret_value() if settings.smtp_password else ""),
            outbox=settings.data_dir / OUTBOX_DIR,
        )

    def __repr__(self) -> str:
        # The password stays out of logs and tracebacks.
        where = f"{self.host}:{self.port}" if self.host else str(self.outbox)
        return f"Mailer(sender={self.sender!r}, to={where!r})"

    def send(self, *, to: str, subject: str, text: str) -> SentMail:
        """Send a plain-text message to one address.

        Raises:
            InputError: The address or subject holds line breaks or control characters.
            ConfigurationError: The SMTP server refused or could not be reached, or
                the outbox folder is not writable (nothing was sent).
        """
        for name, value in (("recipient", to), ("subject", subject)):
            if control_characters(value) or "\n" in value or "\r" in value:
                raise InputError(
                    f"The e-mail's {name} {value!r} holds a line break or control character; "
                    "give it on one line."
                )
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2].strip("> "))
        message.set_content(text)
        if not self.host:
            return self._write(message, to)
        self._deliver(message)
        return SentMail(str(message["Message-ID"]), to, "smtp")

    def _deliver(self, message: EmailMessage) -> None:
        where = f"the SMTP server {self.host}:{self.port}"
        try:
            smtp: smtplib.SMTP
            if self.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self.timeout_seconds,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise ConfigurationError(
                f"The e-mail to {message['To']} was not sent: {where} answered "
                f"{exc.__class__.__name__}: {exc}. Check CARELOOP_SMTP_HOST, _PORT, "
                "_SECURITY, _USERNAME and _PASSWORD, or leave CARELOOP_SMTP_HOST empty to "
                "write messages into the outbox folder."
            ) from None

    def _write(self, message: EmailMessage, to: str) -> SentMail:
        if self.outbox is None:
            raise ConfigurationError(
                "No SMTP server and no outbox folder are set: set CARELOOP_SMTP_HOST, or "
                "CARELOOP_DATA_DIR for the outbox."
            )
        try:
            folder = private_dir(self.outbox)
            path = folder / f"{uuid.uuid4().hex}.eml"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.as_bytes())
        except OSError as exc:
            raise ConfigurationError(
                f"The e-mail to {to} could not be written into {self.outbox}: "
                f"{exc.strerror}. Make the folder writable or set CARELOOP_SMTP_HOST."
            ) from None
        return SentMail(str(message["Message-ID"]), to, "outbox", path)
