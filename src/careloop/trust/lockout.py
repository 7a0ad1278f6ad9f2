"""Locking an e-mail address after failed password attempts (login and re-authentication).

After ``settings.lockout_threshold`` failed attempts in a row the address is
locked for ``settings.lockout_minutes``: logins and re-authentications with
it are refused even with the right password. The count is kept per address,
whether or not an account has it, so an unknown address answers exactly like
a known one (401, then 423 with the same message, after the same argon2
work): the lock-out reveals nothing about which addresses exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from careloop.core.clock import as_utc
from careloop.core.ids import sha256_hex
from careloop.core.settings import Settings
from careloop.store.models import LoginLockout

FORGET_AFTER = timedelta(days=30)
"""A count not added to for this long is forgotten (keeps the table small)."""


def address_key(email: str) -> str:
    """The key of an address (its hash: unknown addresses typed by anyone are not kept)."""
    return sha256_hex("careloop-login:" + email.strip().lower())


def is_locked(session: Session, email: str, now: datetime) -> bool:
    """Whether ``email`` is locked out at ``now``."""
    until = session.scalar(
        select(LoginLockout.locked_until).where(LoginLockout.email_key == address_key(email))
    )
    return until is not None and as_utc(until) > now


def record_failure(session: Session, email: str, settings: Settings, now: datetime) -> bool:
    """Count a failed attempt; lock the address at the threshold. True when it locked it."""
    table: Any = LoginLockout.__table__
    key = address_key(email)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # One statement, so that concurrent failures for a new address neither collide nor
    # lose a count.
    statement = (
        insert(table)
        .values(email_key=key, failed_logins=1, locked_until=None, last_failed_at=now)
        .on_conflict_do_update(
            index_elements=["email_key"],
            set_={"failed_logins": table.c.failed_logins + 1, "last_failed_at": now},
        )
        .returning(table.c.failed_logins)
    )
    count = int(session.execute(statement).scalar_one())
    if count >= settings.lockout_threshold:
        session.execute(
            update(LoginLockout)
            .where(LoginLockout.email_key == key)
            .values(failed_logins=0, locked_until=now + timedelta(minutes=settings.lockout_minutes))
        )
        return True
    if hash(key) % 100 == 0:  # now and then, forget stale counts
        session.execute(
            delete(LoginLockout).where(
                LoginLockout.last_failed_at < now - FORGET_AFTER,
                (LoginLockout.locked_until.is_(None)) | (LoginLockout.locked_until < now),
            )
        )
    return False


def clear(session: Session, email: str) -> None:
    """Forget the failed attempts of ``email`` (after a successful login)."""
    session.execute(delete(LoginLockout).where(LoginLockout.email_key == address_key(email)))
