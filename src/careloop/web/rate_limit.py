"""Limits on the pages anyone can reach: floods and guessed PROM links are refused.

Two counters per network address, kept in this server process's memory:

- every request to a public path (the login page, PROM links, the public API
  for PROM links, invitations to an account, the public page about how
  information is used) counts towards ``CARELOOP_PUBLIC_REQUESTS_PER_MINUTE``;
- every PROM link or invitation that is opened but unknown, used or expired
  counts towards ``CARELOOP_FAILED_LINKS_PER_HOUR``, so that link secrets cannot be guessed
  (they are long and random; the limit stops a scan long before it could
  matter, and makes one visible in the audit trail).

Over a limit the address is answered 429 ``too_many_requests`` with a
``Retry-After`` header until its window ends. The first refusal of each
window is audited (``rate_limited``, with the address and the path, never a
token); the rest are not, so a flood cannot flood the audit trail.

Windows are fixed (a minute, an hour) and counted per process: with several
server processes each counts on its own. The address is the connection's
(uvicorn takes it from ``X-Forwarded-For`` only for proxies it is told to
trust: ``--forwarded-allow-ips``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from careloop.core.errors import NotFound, TooManyRequests
from careloop.trust.audit import AuditEvent
from careloop.trust.work import record_events
from careloop.web.errors import careloop_error

__all__ = [
    "PUBLIC_PREFIXES",
    "WindowCounter",
    "link_attempt",
    "public_rate_middleware",
    "refuse_if_over",
]

PUBLIC_PREFIXES = ("/login", "/prom", "/api/prom", "/public", "/invitation")
"""Paths anyone can reach without logging in, and so anyone can flood."""

T = TypeVar("T")

MAX_ADDRESSES = 100_000
"""Addresses one counter remembers in a window; beyond it the window starts afresh."""


@dataclass
class WindowCounter:
    """Counts events per key in fixed windows of ``window_seconds``.

    ``limit`` 0 means no limit (nothing is counted).
    """

    limit: int
    window_seconds: int
    clock: Callable[[], float] = time.monotonic
    _window: int = -1
    _counts: dict[str, int] = field(default_factory=dict)
    _refused: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _roll(self) -> int:
        """The current window's number, forgetting the counts of earlier windows."""
        now = self.clock()
        window = int(now // self.window_seconds)
        if window != self._window or len(self._counts) > MAX_ADDRESSES:
            self._window, self._counts, self._refused = window, {}, set()
        return window

    def _retry_after(self, window: int) -> int:
        return max(1, math.ceil((window + 1) * self.window_seconds - self.clock()))

    def add(self, key: str) -> None:
        """Count one event for ``key``."""
        if self.limit <= 0:
            return
        with self._lock:
            self._roll()
            self._counts[key] = self._counts.get(key, 0) + 1

    def over(self, key: str) -> tuple[int, bool] | None:
        """``(retry_after, first)`` when ``key`` has used up its window, else None.

        ``first`` is True for the first refusal of the window (the one to audit).
        """
        if self.limit <= 0:
            return None
        with self._lock:
            window = self._roll()
            if self._counts.get(key, 0) < self.limit:
                return None
            first = key not in self._refused
            self._refused.add(key)
            return self._retry_after(window), first


def _without_secret(path: str) -> str:
    """The path to record, without a PROM link's secret."""
    for prefix in ("/prom/", "/api/prom/"):
        if path.startswith(prefix):
            return prefix + "…"
    return path[:200]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def refuse_if_over(request: Request, counter: WindowCounter, message: str) -> None:
    """Raise ``too_many_requests`` when this request's address has used up ``counter``.

    The first refusal of each window is audited as ``rate_limited``.
    """
    address = _address(request)
    over = counter.over(address)
    if over is None:
        return
    retry_after, first = over
    if first:
        event = AuditEvent(
            action="rate_limited",
            category="session",
            outcome="denied",
            request_id=getattr(request.state, "request_id", None),
            client_addr=address,
            details={
                "path": _without_secret(request.url.path),
                "limit": counter.limit,
                "window_seconds": counter.window_seconds,
            },
        )
        await run_in_threadpool(record_events, request.app.state.registry, [event])
    raise TooManyRequests(message, retry_after=retry_after)


PUBLIC_FLOOD_MESSAGE = (
    "Too many requests came from your network in the last minute. "
    "Please wait a minute and try again."
)


async def public_rate_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Count requests to public paths per address; refuse them over the limit (429)."""
    if request.url.path.startswith(PUBLIC_PREFIXES):
        counter: WindowCounter = request.app.state.public_requests
        try:
            await refuse_if_over(request, counter, PUBLIC_FLOOD_MESSAGE)
        except TooManyRequests as exc:
            return await careloop_error(request, exc)
        counter.add(_address(request))
    return await call_next(request)


GUESSING_MESSAGE = (
    "Too many links that do not work were opened from your network. "
    "Please wait an hour, or ask your care team for help."
)


async def link_attempt(request: Request, use_link: Callable[[], T]) -> T:
    """Run ``use_link`` (opening or submitting a PROM link) under the failed-link limit.

    A refusal because the link is unknown, used or expired (NotFound) counts
    against this request's address; over the limit the address is refused
    (429) before the link is even looked up.
    """
    failures: WindowCounter = request.app.state.failed_links
    await refuse_if_over(request, failures, GUESSING_MESSAGE)
    try:
        return await run_in_threadpool(use_link)
    except NotFound:
        failures.add(_address(request))
        raise
