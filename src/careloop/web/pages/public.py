"""The public page: how this installation uses patients' information, for anyone, no login.

Generated from the registry by :func:`careloop.practice.transparency.public_facts`
(nothing identifiable; small counts hidden and the rest rounded). It is a
public route, so the per-address request limit applies
(:mod:`careloop.web.rate_limit`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from careloop.practice.transparency import public_facts
from careloop.web.languages import page_words
from careloop.web.pages.rendering import render
from careloop.web.security import RegistryDep, SettingsDep

router = APIRouter(include_in_schema=False)


@router.get("/public", response_class=HTMLResponse)
async def public_page(request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    words = page_words(request, None)
    facts = await run_in_threadpool(
        lambda: public_facts(registry, threshold=settings.disclosure_threshold, words=words)
    )
    return render(
        request,
        "public.html",
        {"facts": facts, "threshold": settings.disclosure_threshold, "principal": None},
    )
