"""Short signed sessions that replace a link's secret at once (PROM links, invitations).

A page opened from an e-mailed link swaps the secret for a cookie that names
the link by its stored key (the secret's SHA-256), signed with the
installation's key and valid for a few minutes, then redirects to an address
without the secret. Each kind of link signs with its own purpose, so a
cookie of one kind is worthless for another.
"""

from __future__ import annotations

import hmac
import time

from careloop.core.i18n import N_
from careloop.core.settings import Settings

__all__ = ["NOT_FROM_PAGE", "form_token", "seal", "unseal"]

NOT_FROM_PAGE = N_("This form was not sent from its page. Please load the page again and retry.")
"""Said when a link page's form comes without its token (another site, an old page)."""


def _mac(settings: Settings, kind: str, purpose: str, payload: str) -> str:
    message = f"careloop {kind} {purpose} v1|{payload}".encode()
    return hmac.new(settings.signing_key().encode("utf-8"), message, "sha256").hexdigest()


def seal(settings: Settings, kind: str, key: str, expires: int) -> str:
    """A cookie value naming the link ``key`` of ``kind`` until ``expires`` (Unix time)."""
    payload = f"{key}.{expires}"
    return f"{payload}.{_mac(settings, kind, 'session', payload)}"


def unseal(settings: Settings, kind: str, value: str | None) -> str | None:
    """The link key a cookie carries, when its signature holds and it has not expired."""
    if not value or value.count(".") != 2:
        return None
    key, expires, mac = value.split(".")
    if not hmac.compare_digest(mac, _mac(settings, kind, "session", f"{key}.{expires}")):
        return None
    if not expires.isdigit() or int(expires) <= time.time():
        return None
    return key


def form_token(settings: Settings, kind: str, key: str) -> str:
    """The token a page's forms post back, derived from the link's key (CSRF)."""
    return _mac(settings, kind, "form", key)
