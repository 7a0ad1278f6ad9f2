"""How complex a change is (NASSS) and how mature the community is, as pages with forms.

The NASSS page shows each subject's latest profile — the seven domains with
the members' median rating, how many rated, their disagreement in plain
words, their notes — and the earlier rounds beside it. The maturity page
draws the latest round as a radar chart (inline SVG, with the same numbers
in a table for screen readers), with careloop's evidence, the change since
the first round and the suggested next steps. A member records their own
NASSS or maturity ratings by an ordinary form carrying the session's CSRF
token; the :mod:`careloop.community` service validates, records and audits
them, and a refusal comes back on the page with its reasons, nothing
recorded. As on every community page, an outsider gets "not found".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from careloop import community
from careloop.community.maturity import DOMAINS as MATURITY_DOMAINS
from careloop.core.clock import utcnow
from careloop.core.errors import CareloopError, ErrorDetail, InputError
from careloop.core.settings import Settings
from careloop.web.openapi import RecordId
from careloop.web.pages.community import base_context, community_detail, fmt_month
from careloop.web.pages.community_words import NASSS_DOMAINS, NASSS_RATINGS
from careloop.web.pages.radar import RadarSeries, radar_svg
from careloop.web.pages.rendering import render
from careloop.web.security import Caller, CallerDep, RegistryDep, SettingsDep

router = APIRouter(include_in_schema=False)

MAX_FIELD = 20_000


async def _posted(request: Request) -> dict[str, str]:
    """The posted form's text fields (a form of many named fields: one per domain)."""
    form = await request.form()
    out: dict[str, str] = {}
    for key, value in form.items():
        if not isinstance(value, str):
            continue
        if len(value) > MAX_FIELD:
            raise InputError(
                f"The field {key!r} is longer than {MAX_FIELD:,} characters; shorten it.",
                [ErrorDetail(key, f"at most {MAX_FIELD} characters")],
            )
        out[key] = value
    return out


PostedForm = Annotated[dict[str, str], Depends(_posted)]


def _subject_words(detail: community.CommunityDetail, plain: bool) -> Any:
    """A NASSS subject as members read it: a knowledge object the community owns is named
    as decision support for a patient or carer member, not by its identifier."""
    owned = list(detail.knowledge)

    def words(subject: str) -> str:
        if not plain or subject not in owned:
            return subject
        return (
            "our decision support tool"
            if len(owned) == 1
            else f"decision support tool {owned.index(subject) + 1}"
        )

    return words


def _round_words(name: str) -> str:
    """A round named by its month (``2024-06``) in words; any other name as it is."""
    return fmt_month(f"{name}-01") if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", name) else name


def _distinct_notes(notes: list[str]) -> list[tuple[str, int]]:
    """Each different note once, with how many members wrote it, in the order first written."""
    counts: dict[str, int] = {}
    for note in notes:
        counts[note] = counts.get(note, 0) + 1
    return list(counts.items())


def _problems(exc: CareloopError) -> dict[str, str]:
    """Each refused field's message, by the form's field (``ratings.x`` → ``x``)."""
    return {d.location.removeprefix("ratings."): d.message for d in exc.details}


# ---------------------------------------------------------------- NASSS


def _nasss_page(
    request: Request,
    caller: Caller,
    registry: Any,
    community_id: int,
    *,
    settings: Settings,
    entered: Mapping[str, str] | None = None,
    error: CareloopError | None = None,
) -> HTMLResponse:
    detail = community_detail(registry, caller, community_id)
    context = base_context(caller, detail, settings)
    rounds = community.nasss_profile_of(registry, caller.principal, community_id)
    by_subject: dict[str, list[community.NasssRound]] = {}
    for r in rounds:
        by_subject.setdefault(r.subject, []).append(r)
    # The subject assessed most recently first.
    subjects = sorted(by_subject, key=lambda s: by_subject[s][-1].round, reverse=True)
    known = list(dict.fromkeys([*subjects, *detail.knowledge]))
    return render(
        request,
        "community_nasss.html",
        {
            **context,
            "d": detail,
            "c": detail.community,
            "subjects": subjects,
            "by_subject": by_subject,
            "known_subjects": known,
            "subject_words": _subject_words(detail, context["plain"]),
            "domains": NASSS_DOMAINS,
            "ratings": NASSS_RATINGS,
            "round_words": _round_words,
            "distinct_notes": _distinct_notes,
            "entered": dict(entered or {}),
            "error": error,
            "problems": _problems(error) if error else {},
            "recorded": request.query_params.get("recorded") == "1",
        },
        error.http_status if error else 200,
    )


@router.get("/communities/{community_id}/nasss", response_class=HTMLResponse)
def nasss_page(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    return _nasss_page(request, caller, registry, community_id, settings=settings)


@router.post("/communities/{community_id}/nasss")
def nasss_submit(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    form: PostedForm,
) -> Response:
    # The CSRF token was checked with the session (careloop.web.security.authenticate).
    subject = (form.get("new_subject") or "").strip() or (form.get("subject") or "").strip()
    ratings = {
        d: (form[f"rating_{d}"], form.get(f"note_{d}", "").strip())
        for d in NASSS_DOMAINS
        if form.get(f"rating_{d}")
    }
    try:
        community.record_nasss(
            registry, caller.principal, community_id, subject=subject, ratings=ratings
        )
    except CareloopError as exc:
        # A non-member gets "not found" from the page itself (the service audited the
        # refusal); a member sees what to fix beside each domain, nothing recorded.
        return _nasss_page(
            request,
            caller,
            registry,
            community_id,
            settings=settings,
            entered=form,
            error=exc,
        )
    return RedirectResponse(f"/communities/{community_id}/nasss?recorded=1", status_code=303)


# ---------------------------------------------------------------- maturity


def _radar(profile: community.MaturityProfile) -> Any:
    """The latest round (and the first, when there are several) as a radar chart."""
    if not profile.rounds:
        return None
    latest = profile.rounds[-1]
    keys = [s.domain for s in latest.domains if s.score is not None]
    if len(keys) < 3:
        return None
    labels = {s.domain: s.label for s in latest.domains}

    def values(r: community.MaturityRound) -> list[float | None]:
        scores = {s.domain: s.score for s in r.domains}
        return [scores.get(k) for k in keys]

    series = [RadarSeries(f"Round {_round_words(latest.round)}", values(latest))]
    if len(profile.rounds) > 1:
        first = profile.rounds[0]
        series.insert(
            0, RadarSeries(f"Round {_round_words(first.round)}", values(first), latest=False)
        )
    described = "; ".join(
        f"{labels[k]} {v:.1f}" for k, v in zip(keys, values(latest), strict=True) if v is not None
    )
    return radar_svg(
        [labels[k] for k in keys],
        series,
        title=f"Maturity in round {_round_words(latest.round)}, each domain scored from 1 to 5",
        description=f"Scores: {described}. The table below gives the same figures.",
        id_prefix="maturity-radar",
    )


def _maturity_page(
    request: Request,
    caller: Caller,
    registry: Any,
    community_id: int,
    *,
    settings: Settings,
    entered: Mapping[str, str] | None = None,
    error: CareloopError | None = None,
) -> HTMLResponse:
    detail = community_detail(registry, caller, community_id)
    profile = community.maturity_profile(registry, caller.principal, community_id)
    today: date = utcnow().date()
    return render(
        request,
        "community_maturity.html",
        {
            **base_context(caller, detail, settings),
            "d": detail,
            "c": detail.community,
            "p": profile,
            "latest": profile.rounds[-1] if profile.rounds else None,
            "radar": _radar(profile),
            "round_words": _round_words,
            "domains": MATURITY_DOMAINS,
            "entered": dict(entered or {}),
            "default_round": (entered or {}).get("round") or today.strftime("%Y-%m"),
            "error": error,
            "problems": _problems(error) if error else {},
            "recorded": request.query_params.get("recorded") == "1",
        },
        error.http_status if error else 200,
    )


@router.get("/communities/{community_id}/maturity", response_class=HTMLResponse)
def maturity_page(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Response:
    return _maturity_page(request, caller, registry, community_id, settings=settings)


@router.post("/communities/{community_id}/maturity")
def maturity_submit(
    request: Request,
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    form: PostedForm,
) -> Response:
    # The CSRF token was checked with the session (careloop.web.security.authenticate).
    ratings: dict[str, tuple[int, str]] = {}
    for d in MATURITY_DOMAINS:
        level = form.get(f"level_{d.key}", "").strip()
        if level:
            # Not a whole number: passed on as 0, which the service refuses with its message.
            ratings[d.key] = (int(level) if level.isdigit() else 0, form.get(f"note_{d.key}", ""))
    try:
        community.record_maturity(
            registry,
            caller.principal,
            community_id,
            round_name=form.get("round", ""),
            ratings=ratings,
        )
    except CareloopError as exc:
        return _maturity_page(
            request, caller, registry, community_id, settings=settings, entered=form, error=exc
        )
    return RedirectResponse(f"/communities/{community_id}/maturity?recorded=1", status_code=303)
