"""Password hashing (argon2id) and the minimum password rule."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from careloop.core.errors import InputError

MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
# A real hash of a random password, verified against when the e-mail is unknown,
# so that a failed login takes as long for a missing account as for a wrong password.
_DUMMY_HASH = _hasher.hash("careloop-timing-equaliser-not-a-password")


def check_password_rules(password: str) -> None:
    """Refuse passwords that are too short or blank."""
    if len(password) < MIN_PASSWORD_LENGTH or not password.strip():
        raise InputError(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters "
            f"(got {len(password)}). A few random words make a good one."
        )


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; constant work when there is no hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
