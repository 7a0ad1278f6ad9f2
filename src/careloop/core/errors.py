"""careloop's one error tree.

Every error has a stable ``code`` (documented in docs/errors.md and pinned by
a test), an HTTP status the web layer uses, a message that says what was
wrong, what was expected and how to fix it, and optional ``details`` that
point at the place (file, row, field, JSON path).

    CareloopError
    ├── ConfigurationError            configuration_error        500
    ├── InputError                    invalid_input              422
    │   ├── ValidationFailed          validation_failed          422
    │   └── InputTooLarge             input_too_large            413
    ├── AuthenticationRequired        authentication_required    401
    │   ├── InvalidCredentials        invalid_credentials        401
    │   ├── AccountLocked             account_locked             423
    │   ├── SessionExpired            session_expired            401
    │   └── ReauthenticationRequired  reauthentication_required  401
    ├── PermissionDenied              permission_denied          403
    │   └── CsrfRejected              csrf_rejected              403
    ├── NotFound                      not_found                  404
    ├── Conflict                      conflict                   409
    ├── NotBuilt                      not_built                  501
    └── IntegrityFailure              integrity_failure          500
        └── StoredFormUnreadable      stored_form_unreadable     500

The web layer renders any of them as ``{"error": {"code", "message",
"details", "request_id"}}``; the CLI prints ``Error: <message>`` and exits
with a non-zero status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class ErrorDetail:
    """Where one problem is and what is wrong with it."""

    location: str
    """File, row, field or JSON path of the problem, e.g. ``visits.csv:12:weight``."""
    message: str
    """What was found, what was expected and how to fix it."""
    value: Any = None
    """The offending value, when it is safe to echo back."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"location": self.location, "message": self.message}
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass
class CareloopError(Exception):
    """Base of every error careloop raises on purpose."""

    message: str
    details: list[ErrorDetail] = field(default_factory=list)

    code: ClassVar[str] = "careloop_error"
    http_status: ClassVar[int] = 500

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        if not self.details:
            return self.message
        lines = [self.message, *(f"  {d.location}: {d.message}" for d in self.details)]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "details": [d.as_dict() for d in self.details],
        }


class ConfigurationError(CareloopError):
    """A setting or the data directory is not usable."""

    code = "configuration_error"
    http_status = 500


class InputError(CareloopError):
    """A value given to careloop is not acceptable."""

    code = "invalid_input"
    http_status = 422


class ValidationFailed(InputError):
    """One or more fields, rows or keys failed validation; ``details`` lists each."""

    code = "validation_failed"


class InputTooLarge(InputError):
    """An input (a file, a request body) is larger than careloop reads; says the limit."""

    code = "input_too_large"
    http_status = 413


class AuthenticationRequired(CareloopError):
    """The request carries no valid session or token."""

    code = "authentication_required"
    http_status = 401


class InvalidCredentials(AuthenticationRequired):
    """The e-mail and password do not match an active account."""

    code = "invalid_credentials"


class AccountLocked(AuthenticationRequired):
    """Too many failed logins: the account is locked for a while."""

    code = "account_locked"
    http_status = 423


class SessionExpired(AuthenticationRequired):
    """The session was idle for longer than the configured timeout."""

    code = "session_expired"


class ReauthenticationRequired(AuthenticationRequired):
    """A sensitive action needs the password again."""

    code = "reauthentication_required"


class PermissionDenied(CareloopError):
    """The user is authenticated but their roles do not allow this action here."""

    code = "permission_denied"
    http_status = 403


class CsrfRejected(PermissionDenied):
    """A form or cookie-authenticated request lacks a valid CSRF token."""

    code = "csrf_rejected"


@dataclass
class TooManyRequests(CareloopError):
    """One network address sent more requests to a public page than careloop answers."""

    retry_after: int = 60
    """Seconds after which the address may try again (the ``Retry-After`` header)."""

    code: ClassVar[str] = "too_many_requests"
    http_status: ClassVar[int] = 429


class NotFound(CareloopError):
    """The thing does not exist, or the user may not know that it does."""

    code = "not_found"
    http_status = 404


class Conflict(CareloopError):
    """The change clashes with the current state (duplicate, stale version)."""

    code = "conflict"
    http_status = 409


class NotBuilt(CareloopError):
    """The feature is planned but not built yet."""

    code = "not_built"
    http_status = 501


class IntegrityFailure(CareloopError):
    """Stored data failed an integrity check (e.g. the audit hash chain)."""

    code = "integrity_failure"
    http_status = 500


class StoredFormUnreadable(IntegrityFailure):
    """A stored form version cannot be rebuilt; other forms are unaffected."""

    code = "stored_form_unreadable"


def all_error_types() -> list[type[CareloopError]]:
    """Every error class in the tree, base first (used by docs and tests)."""
    seen: list[type[CareloopError]] = []
    stack: list[type[CareloopError]] = [CareloopError]
    while stack:
        cls = stack.pop(0)
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
