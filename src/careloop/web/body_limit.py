"""A cap on request bodies (``CARELOOP_MAX_REQUEST_BODY_MB``), before anything reads them.

A body that declares a larger ``Content-Length`` is answered 413 at once,
unread. One that does not declare its size (chunked) is counted as it
arrives and refused at the first chunk past the cap, so no route ever holds
more than the cap in memory. The error has careloop's shape and code
(``input_too_large``, see docs/errors.md).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from careloop.core.errors import InputTooLarge
from careloop.core.limits import megabytes


def _message(limit: int) -> str:
    return (
        f"The request body is larger than {megabytes(limit)}, the most careloop accepts. "
        "Send a smaller file, or ask the operator to raise CARELOOP_MAX_REQUEST_BODY_MB."
    )


class BodyTooLarge(HTTPException):
    """Raised from inside a route's body reading: rendered as ``input_too_large``."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_message(limit))


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` (pure ASGI: sees the raw stream)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            error = InputTooLarge(_message(self.max_bytes))
            body = {"error": {**error.as_dict(), "request_id": _request_id(scope)}}
            response = JSONResponse(body, status_code=413, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


def _request_id(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    value = state.get("request_id") if isinstance(state, dict) else None
    return value if isinstance(value, str) else None
