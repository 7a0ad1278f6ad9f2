"""Random identifiers that carry no meaning (pseudonyms, tokens, request ids)."""

from __future__ import annotations

import hashlib
import secrets

# Crockford's base32 alphabet: no I, L, O, U, so ids survive being read aloud.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def pseudonym(length: int = 12) -> str:
    """A random pseudonymous id such as ``P7K2M9QX4T1B`` (60 bits for 12 characters)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def secret_token(prefix: str) -> str:
    """A bearer secret such as ``cl_…`` with 256 bits of randomness."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def request_id() -> str:
    """A short random id tying log lines and audit entries to one request."""
    return secrets.token_hex(8)


def sha256_hex(text: str) -> str:
    """SHA-256 of a text, hex encoded (how secrets are stored at rest)."""
    return hashlib.sha256(text.encode()).hexdigest()
