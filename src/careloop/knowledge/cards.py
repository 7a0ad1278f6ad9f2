"""The CDS Hooks 2.0 constraints on cards, suggestions, actions and links.

Both the knowledge-object loader (a KO's cards must be valid before it can be
stored) and the CDS Hooks service (every response it sends is checked) use
these checks. Written here rather than taken from a library: no maintained
Python package carries the CDS Hooks 2.0 response rules, and they are short.
Each problem names its JSON path, e.g. ``cards[0].suggestions[1].label``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

INDICATORS = ("info", "warning", "critical")
SELECTION_BEHAVIOURS = ("at-most-one", "any")
ACTION_TYPES = ("create", "update", "delete")
LINK_TYPES = ("absolute", "smart")
SUMMARY_MAX = 139
"""The spec asks for a "<140-character" summary."""


@dataclass(frozen=True)
class Problem:
    """One way a CDS Hooks document breaks the spec."""

    path: str
    """JSON path of the offending element, e.g. ``cards[0].summary``."""
    message: str
    """What is wrong and what the spec expects."""


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _absolute_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _string(
    obj: Mapping[str, Any], key: str, path: str, out: list[Problem], *, required: bool
) -> None:
    if key not in obj:
        if required:
            out.append(Problem(f"{path}.{key}", f"`{key}` is required."))
        return
    value = obj[key]
    if not isinstance(value, str) or value == "":
        out.append(Problem(f"{path}.{key}", f"`{key}` must be a non-empty string."))


def no_empty_values(value: Any, path: str, out: list[Problem]) -> None:
    """The spec forbids null and empty values (``null``, ``""``, ``[]``, ``{}``) anywhere.

    A FHIR resource inside an action is the client's business, so it is not
    descended into.
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if _is_empty(item):
                out.append(Problem(child, "Must be omitted rather than null or empty."))
            elif key != "resource":
                no_empty_values(item, child, out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            child = f"{path}[{i}]"
            if _is_empty(item):
                out.append(Problem(child, "Must not be null or empty."))
            else:
                no_empty_values(item, child, out)


def coding_problems(
    coding: Any, path: str, *, display_required: bool, system_required: bool = True
) -> list[Problem]:
    """Problems of a CDS Hooks ``Coding`` (code, system, display)."""
    out: list[Problem] = []
    if not isinstance(coding, Mapping):
        return [Problem(path, "A Coding must be an object with `code` and `system`.")]
    _string(coding, "code", path, out, required=True)
    _string(coding, "system", path, out, required=system_required)
    _string(coding, "display", path, out, required=display_required)
    return out


def action_problems(action: Any, path: str) -> list[Problem]:
    """Problems of one action (in a suggestion or a system action)."""
    if not isinstance(action, Mapping):
        return [Problem(path, "An action must be an object.")]
    out: list[Problem] = []
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        out.append(Problem(f"{path}.type", f"`type` must be one of {', '.join(ACTION_TYPES)}."))
    _string(action, "description", path, out, required=True)
    if kind in ("create", "update") and not isinstance(action.get("resource"), Mapping):
        out.append(Problem(f"{path}.resource", f"A {kind} action needs the FHIR `resource`."))
    if kind == "delete" and not (isinstance(action.get("resourceId"), str) or "resource" in action):
        out.append(Problem(f"{path}.resourceId", "A delete action needs `resourceId`."))
    if "resourceId" in action and not isinstance(action["resourceId"], str):
        out.append(Problem(f"{path}.resourceId", "`resourceId` must be a relative reference."))
    return out


def card_problems(card: Any, path: str = "card", *, require_uuid: bool = False) -> list[Problem]:
    """Every way ``card`` breaks the CDS Hooks 2.0 card rules (empty list: valid)."""
    if not isinstance(card, Mapping):
        return [Problem(path, "A card must be an object.")]
    out: list[Problem] = []
    no_empty_values(card, path, out)
    _string(card, "uuid", path, out, required=require_uuid)
    _string(card, "summary", path, out, required=True)
    summary = card.get("summary")
    if isinstance(summary, str) and len(summary) > SUMMARY_MAX:
        out.append(
            Problem(
                f"{path}.summary",
                f"The summary has {len(summary)} characters; the spec allows fewer than 140.",
            )
        )
    if card.get("indicator") not in INDICATORS:
        out.append(
            Problem(f"{path}.indicator", f"`indicator` must be one of {', '.join(INDICATORS)}.")
        )
    _string(card, "detail", path, out, required=False)
    source = card.get("source")
    if not isinstance(source, Mapping):
        out.append(Problem(f"{path}.source", "`source` (an object with a `label`) is required."))
    else:
        _string(source, "label", f"{path}.source", out, required=True)
        for key in ("url", "icon"):
            if key in source and not _absolute_url(source[key]):
                out.append(Problem(f"{path}.source.{key}", f"`{key}` must be an absolute URL."))
        if "topic" in source:
            out.extend(
                coding_problems(source["topic"], f"{path}.source.topic", display_required=False)
            )
    suggestions = card.get("suggestions")
    if suggestions is not None:
        if not isinstance(suggestions, list):
            out.append(Problem(f"{path}.suggestions", "`suggestions` must be an array."))
        else:
            if card.get("selectionBehavior") not in SELECTION_BEHAVIOURS:
                out.append(
                    Problem(
                        f"{path}.selectionBehavior",
                        "A card with suggestions needs `selectionBehavior` "
                        f"({' or '.join(SELECTION_BEHAVIOURS)}).",
                    )
                )
            for i, suggestion in enumerate(suggestions):
                out.extend(_suggestion_problems(suggestion, f"{path}.suggestions[{i}]"))
    elif "selectionBehavior" in card and card["selectionBehavior"] not in SELECTION_BEHAVIOURS:
        out.append(Problem(f"{path}.selectionBehavior", "Unknown `selectionBehavior`."))
    reasons = card.get("overrideReasons")
    if reasons is not None:
        if not isinstance(reasons, list):
            out.append(Problem(f"{path}.overrideReasons", "`overrideReasons` must be an array."))
        else:
            for i, reason in enumerate(reasons):
                out.extend(
                    coding_problems(reason, f"{path}.overrideReasons[{i}]", display_required=True)
                )
    links = card.get("links")
    if links is not None:
        if not isinstance(links, list):
            out.append(Problem(f"{path}.links", "`links` must be an array."))
        else:
            for i, link in enumerate(links):
                out.extend(_link_problems(link, f"{path}.links[{i}]"))
    return out


def _suggestion_problems(suggestion: Any, path: str) -> list[Problem]:
    if not isinstance(suggestion, Mapping):
        return [Problem(path, "A suggestion must be an object.")]
    out: list[Problem] = []
    _string(suggestion, "label", path, out, required=True)
    _string(suggestion, "uuid", path, out, required=False)
    if "isRecommended" in suggestion and not isinstance(suggestion["isRecommended"], bool):
        out.append(Problem(f"{path}.isRecommended", "`isRecommended` must be true or false."))
    actions = suggestion.get("actions")
    if actions is not None:
        if not isinstance(actions, list):
            out.append(Problem(f"{path}.actions", "`actions` must be an array."))
        else:
            for i, action in enumerate(actions):
                out.extend(action_problems(action, f"{path}.actions[{i}]"))
    return out


def _link_problems(link: Any, path: str) -> list[Problem]:
    if not isinstance(link, Mapping):
        return [Problem(path, "A link must be an object.")]
    out: list[Problem] = []
    _string(link, "label", path, out, required=True)
    if not _absolute_url(link.get("url")):
        out.append(Problem(f"{path}.url", "`url` must be an absolute http(s) URL."))
    if link.get("type") not in LINK_TYPES:
        out.append(Problem(f"{path}.type", "`type` must be `absolute` or `smart`."))
    if "appContext" in link:
        if link.get("type") != "smart":
            out.append(Problem(f"{path}.appContext", "`appContext` is only for `smart` links."))
        elif not isinstance(link["appContext"], str):
            out.append(Problem(f"{path}.appContext", "`appContext` must be a string."))
    return out


def response_problems(body: Any) -> list[Problem]:
    """Every way a service response breaks the spec (cards, systemActions)."""
    if not isinstance(body, Mapping):
        return [Problem("", "A CDS service response must be a JSON object.")]
    out: list[Problem] = []
    cards = body.get("cards")
    if not isinstance(cards, list):
        out.append(Problem("cards", "`cards` (an array, possibly empty) is required."))
    else:
        for i, card in enumerate(cards):
            out.extend(card_problems(card, f"cards[{i}]"))
    if "systemActions" in body:
        actions = body["systemActions"]
        if not isinstance(actions, list) or not actions:
            out.append(Problem("systemActions", "`systemActions` must be a non-empty array."))
        else:
            for i, action in enumerate(actions):
                out.extend(action_problems(action, f"systemActions[{i}]"))
    return out
