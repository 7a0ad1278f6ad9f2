"""CDS Hooks 2.0 requests: validation, prefetch tokens, feedback documents.

Checked by hand rather than with a schema library: the spec publishes no
JSON Schema for 2.0, and its rules (no null or empty values, hook-specific
context, prefetch-token grammar) read more plainly as code. Each problem
names its JSON path so a client developer can fix the request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from careloop.knowledge.cards import Problem, coding_problems

MAX_BODY_BYTES = 2 * 1024 * 1024
"""Largest request body accepted (prefetch included); larger bodies get 413."""

# Required context fields of the hooks careloop serves (from the hook pages
# of cds-hooks/docs): field → JSON type(s).
HOOK_CONTEXT: dict[str, dict[str, tuple[type, ...]]] = {
    "patient-view": {"userId": (str,), "patientId": (str,)},
    "order-select": {
        "userId": (str,),
        "patientId": (str,),
        "selections": (list,),
        "draftOrders": (dict,),
    },
    "order-sign": {"userId": (str,), "patientId": (str,), "draftOrders": (dict,)},
    "encounter-start": {"userId": (str,), "patientId": (str,), "encounterId": (str,)},
}
OPTIONAL_CONTEXT: dict[str, dict[str, tuple[type, ...]]] = {
    "patient-view": {"encounterId": (str,)},
    "order-select": {"encounterId": (str,)},
    "order-sign": {"encounterId": (str,)},
}
_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


class CdsHooksError(Exception):
    """A CDS Hooks call that cannot be served: its HTTP status and what was wrong."""

    def __init__(self, status: int, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []

    def body(self) -> dict[str, Any]:
        """The JSON body sent with the status (the spec defines none; this one is small)."""
        out: dict[str, Any] = {"error": self.message}
        if self.problems:
            out["problems"] = [{"path": p.path, "message": p.message} for p in self.problems]
        return out


@dataclass(frozen=True)
class HookRequest:
    """A validated CDS Hooks request."""

    hook: str
    """The hook that fired."""
    hook_instance: str
    """The call's UUID."""
    context: dict[str, Any]
    """The hook context."""
    prefetch: dict[str, Any]
    """Prefetch data the client sent (keys with null mean "no data")."""
    fhir_server: str | None
    """The client's FHIR base URL, if given."""
    access_token: str | None
    """The bearer token for the FHIR server, if given."""


def _url_ok(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def request_problems(body: Any, *, hook: str | None = None) -> list[Problem]:
    """Every way ``body`` breaks the CDS Hooks request rules (for the service's ``hook``)."""
    if not isinstance(body, Mapping):
        return [Problem("", "The request body must be a JSON object.")]
    out: list[Problem] = []
    for key in ("hook", "hookInstance"):
        if not isinstance(body.get(key), str) or not body.get(key):
            out.append(Problem(key, f"`{key}` is required (a non-empty string)."))
    if hook is not None and isinstance(body.get("hook"), str) and body["hook"] != hook:
        out.append(Problem("hook", f"This service answers `{hook}`, not `{body['hook']}`."))
    context = body.get("context")
    if not isinstance(context, Mapping):
        out.append(Problem("context", "`context` (an object) is required."))
        context = {}
    if "fhirServer" in body and not _url_ok(body["fhirServer"]):
        out.append(Problem("fhirServer", "`fhirServer` must be an absolute http(s) URL."))
    auth = body.get("fhirAuthorization")
    if auth is not None:
        if "fhirServer" not in body:
            out.append(Problem("fhirServer", "`fhirServer` is required with `fhirAuthorization`."))
        if not isinstance(auth, Mapping):
            out.append(Problem("fhirAuthorization", "`fhirAuthorization` must be an object."))
        else:
            for key in ("access_token", "scope", "subject"):
                if not isinstance(auth.get(key), str) or not auth.get(key):
                    out.append(Problem(f"fhirAuthorization.{key}", f"`{key}` is required."))
            if auth.get("token_type") != "Bearer":
                out.append(Problem("fhirAuthorization.token_type", "`token_type` must be Bearer."))
            expires = auth.get("expires_in")
            if not isinstance(expires, int) or isinstance(expires, bool):
                out.append(
                    Problem("fhirAuthorization.expires_in", "`expires_in` must be an integer.")
                )
    if "prefetch" in body and not isinstance(body["prefetch"], Mapping):
        out.append(Problem("prefetch", "`prefetch` must be an object of prefetch keys."))
    if "extension" in body and not isinstance(body["extension"], Mapping):
        out.append(Problem("extension", "`extension` must be an object."))
    name = body.get("hook")
    for field, types in HOOK_CONTEXT.get(str(name), {}).items():
        if field not in context:
            out.append(Problem(f"context.{field}", f"`{name}` requires `context.{field}`."))
        elif not isinstance(context[field], types) or context[field] in ("", [], {}):
            kind = "/".join("string" if t is str else t.__name__ for t in types)
            out.append(
                Problem(f"context.{field}", f"`context.{field}` must be a non-empty {kind}.")
            )
    for field, types in OPTIONAL_CONTEXT.get(str(name), {}).items():
        if field in context and not isinstance(context[field], types):
            out.append(Problem(f"context.{field}", f"`context.{field}` must be a string."))
    return out


def parse_request(body: Any, *, hook: str) -> HookRequest:
    """Validate a request for a service of ``hook``; CdsHooksError(400) lists the problems."""
    problems = request_problems(body, hook=hook)
    if problems:
        raise CdsHooksError(400, "The CDS Hooks request is not valid.", problems)
    auth = body.get("fhirAuthorization") or {}
    return HookRequest(
        hook=body["hook"],
        hook_instance=body["hookInstance"],
        context=dict(body["context"]),
        prefetch=dict(body.get("prefetch") or {}),
        fhir_server=body.get("fhirServer"),
        access_token=auth.get("access_token"),
    )


def token_values(context: Mapping[str, Any]) -> dict[str, str]:
    """Values of the prefetch tokens a context provides.

    ``context.x`` for each root-level primitive field, and the user tokens
    (``userPractitionerId``…) derived from ``context.userId``.
    """
    out = {
        f"context.{k}": str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in context.items()
        if isinstance(v, str | int | float | bool)
    }
    user = context.get("userId")
    if isinstance(user, str) and "/" in user:
        kind, _, ident = user.partition("/")
        for token, resource in _USER_TOKENS.items():
            if kind == resource:
                out[token] = ident
    return out


def fill_template(template: str, values: Mapping[str, str]) -> str | None:
    """A prefetch template with its tokens replaced; None when a token has no value."""
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(match.group(1))
        if value is None:
            missing = True
            return ""
        return value

    filled = _TOKEN.sub(replace, template)
    return None if missing else filled


def feedback_problems(body: Any) -> list[Problem]:
    """Every way a feedback document breaks the spec."""
    if not isinstance(body, Mapping) or not isinstance(body.get("feedback"), list):
        return [Problem("feedback", '`feedback` (an array) is required: {"feedback": [...]}.')]
    out: list[Problem] = []
    if not body["feedback"]:
        out.append(Problem("feedback", "`feedback` must not be empty."))
    for i, item in enumerate(body["feedback"]):
        at = f"feedback[{i}]"
        if not isinstance(item, Mapping):
            out.append(Problem(at, "Each feedback item is an object."))
            continue
        if not isinstance(item.get("card"), str) or not item.get("card"):
            out.append(Problem(f"{at}.card", "`card` (the card's uuid) is required."))
        outcome = item.get("outcome")
        if outcome not in ("accepted", "overridden"):
            out.append(Problem(f"{at}.outcome", "`outcome` must be accepted or overridden."))
        accepted = item.get("acceptedSuggestions")
        if outcome == "accepted":
            if not isinstance(accepted, list) or not accepted:
                out.append(
                    Problem(f"{at}.acceptedSuggestions", "An accepted outcome lists suggestions.")
                )
            else:
                for j, suggestion in enumerate(accepted):
                    if not isinstance(suggestion, Mapping) or not isinstance(
                        suggestion.get("id"), str
                    ):
                        out.append(
                            Problem(f"{at}.acceptedSuggestions[{j}].id", "`id` is required.")
                        )
        reason = item.get("overrideReason")
        if reason is not None:
            if not isinstance(reason, Mapping) or not reason:
                out.append(Problem(f"{at}.overrideReason", "`overrideReason` is an object."))
            else:
                if "reason" in reason:
                    out.extend(
                        coding_problems(
                            reason["reason"], f"{at}.overrideReason.reason", display_required=False
                        )
                    )
                comment = reason.get("userComment")
                if comment is not None and (not isinstance(comment, str) or not comment):
                    out.append(Problem(f"{at}.overrideReason.userComment", "A non-empty string."))
        stamp = item.get("outcomeTimestamp")
        try:
            datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            out.append(
                Problem(f"{at}.outcomeTimestamp", "`outcomeTimestamp` must be an ISO timestamp.")
            )
    return out
