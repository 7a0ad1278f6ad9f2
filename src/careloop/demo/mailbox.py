"""The demo's own SMTP server: every message careloop sends lands as an .eml file.

The demo shows e-mail for real: invitations to patients and carers and PROM
reminders go over SMTP to a local server (aiosmtpd on 127.0.0.1), which
writes each message it receives into ``<data dir>/demo-mailbox/`` (readable
by the installation's owner only: a message may carry a link that opens an
account). No message leaves the machine; the demo's addresses end in
``.invalid`` in any case.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from careloop.core.mail import Mailer
from careloop.core.private_files import PRIVATE_FILE_MODE, private_dir

__all__ = ["MAILBOX_DIR", "DemoMailbox", "demo_mailbox", "link_in"]

MAILBOX_DIR = "demo-mailbox"
"""The folder of the demo's data directory that holds the messages its SMTP server received."""

_LINK = re.compile(r"https?://\S+")


@dataclass
class DemoMailbox:
    """A running local SMTP server and the folder it writes into."""

    host: str
    port: int
    folder: Path
    received: list[Path] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            number = len(self.received) + 1
            rcpt = re.sub(r"[^a-z0-9]+", "-", ",".join(envelope.rcpt_tos).lower()).strip("-")
            path = self.folder / f"{number:04d}-{rcpt[:60]}.eml"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            with os.fdopen(fd, "wb") as handle:
                handle.write(envelope.original_content or envelope.content)
            self.received.append(path)
        return "250 Message accepted for delivery"

    def mailer(self, sender: str) -> Mailer:
        """A mailer that sends to this server."""
        return Mailer(sender=sender, host=self.host, port=self.port, security="none")

    def messages_to(self, address: str) -> list[EmailMessage]:
        """The messages received for ``address``, oldest first."""
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            if address.lower() in str(message["To"]).lower():
                found.append(message)
        return found


def link_in(message: EmailMessage) -> str:
    """The first web address in a message's plain text (the link it carries)."""
    body = message.get_body(preferencelist=("plain",))
    text = str(body.get_content()) if body is not None else ""
    match = _LINK.search(text)
    if match is None:
        raise ValueError(f"The message {message['Subject']!r} carries no link.")
    return match.group(0).rstrip(".,)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def demo_mailbox(data_dir: Path) -> Iterator[DemoMailbox]:
    """Run the demo's SMTP server on a free loopback port while the block runs."""
    folder = private_dir(data_dir / MAILBOX_DIR)
    box = DemoMailbox("127.0.0.1", _free_port(), folder, sorted(folder.glob("*.eml")))
    controller = Controller(box, hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
