"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, keeping what it receives."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Inbox:
    """The messages one aiosmtpd server received, in order."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def last_text(self) -> str:
        body = self.messages[-1].get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content()).replace("\r\n", "\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[Inbox]:
    """An SMTP server on a free loopback port; its :class:`Inbox` collects each message."""
    inbox = Inbox("127.0.0.1", free_port())
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_inbox() -> Iterator[Inbox]:
    """A running :func:`smtp_server` for one test."""
    with smtp_server() as inbox:
        yield inbox
