"""Pages and JSON sent gzip-compressed, but never where compression could leak a secret.

Compressing a page that holds a secret (the session's CSRF token) beside text
an attacker chose (a search term in the address) lets an attacker who sees
the encrypted sizes guess the secret a character at a time, by making the
victim's browser load the page again and again from another site (BREACH).
So careloop compresses a dynamic response only when no other site can have
made the request:

- the browser says it came from careloop's own pages or from the person
  (``Sec-Fetch-Site: same-origin`` or ``none``: typed, bookmarked, reloaded);
- or it carries a bearer token (browsers never add that header on their own);
- or it carries no cookie at all (no session, so no secret of the person's).

A request from another site (``cross-site``, ``same-site``) and a browser too
old to send ``Sec-Fetch-Site`` with a cookie get the page uncompressed:
slower, never leaky. Static assets are compressed once at start-up
(:mod:`careloop.web.assets`) and hold no secrets; this middleware passes
already-compressed responses through.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from careloop.web.assets import accepts

OWN_FETCHES = frozenset({"same-origin", "none"})
"""``Sec-Fetch-Site`` values no other site can cause."""


def may_compress(headers: Headers) -> bool:
    """Whether a response to a request with ``headers`` may be compressed (see above)."""
    if headers.get("sec-fetch-site") in OWN_FETCHES:
        return True
    if headers.get("authorization", "").lower().startswith("bearer "):
        return True
    return "cookie" not in headers and "sec-fetch-site" not in headers


class CompressionMiddleware:
    """Starlette's gzip for the requests :func:`may_compress` allows; the rest as they are."""

    def __init__(self, app: ASGIApp, *, minimum_size: int = 1024, level: int = 6) -> None:
        self.app = app
        # Level 6: nearly level 9's size for a page at a third of the time.
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=level)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._compress(Headers(scope=scope)):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @staticmethod
    def _compress(headers: Headers) -> bool:
        # Starlette only looks for "gzip" in the header: "gzip;q=0" refuses it.
        return accepts(headers.get("accept-encoding", ""), "gzip") and may_compress(headers)
