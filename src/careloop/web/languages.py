"""Which language a page speaks, the link that changes it, and gettext in the templates.

Patient-facing pages (``/login``, ``/my``, ``/prom``, ``/invitation``,
``/public`` and their error pages) speak the language the person chose with
the link on each page (the ``careloop_lang`` cookie: the language code only,
no tracking, SameSite=Lax), else their browser's first language careloop
has, else English. Staff pages stay in English. Templates translate with
``{{ _("...") }}`` and ``{% trans %}``; the translator comes from the page's
context (``i18n``), so requests in different languages never share one.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from babel.dates import format_date, format_skeleton
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from careloop.core.errors import NotFound
from careloop.core.i18n import (
    LANGUAGE_COOKIE,
    LANGUAGES,
    Translator,
    choose_language,
    english,
    translator,
)
from careloop.trust.principal import Principal
from careloop.web.security import cookies_secure, settings_of

router = APIRouter(include_in_schema=False)

PATIENT_PATHS = ("/login", "/my", "/prom", "/invitation", "/public", "/language")
"""Pages (and their error pages) that speak the patient's language."""
PORTAL_ROLES = frozenset({"patient", "carer"})
ONE_YEAR = 365 * 24 * 3600


def is_staff(principal: Principal | None) -> bool:
    """Whether someone signed in with any role other than patient or carer."""
    if principal is None:
        return False
    return bool({grant.role for grant in principal.grants} - PORTAL_ROLES)


def request_language(request: Request) -> str:
    """The language this browser asks for (cookie, then Accept-Language, then English)."""
    return choose_language(
        request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
    )


def page_words(request: Request, principal: Principal | None) -> Translator:
    """The translator of a page: the person's language on patient pages, else English."""
    if is_staff(principal) or not request.url.path.startswith(PATIENT_PATHS):
        return english()
    return translator(request_language(request))


def language_context(request: Request, principal: Principal | None) -> dict[str, Any]:
    """What the layout needs to speak the page's language and offer the other ones."""
    words = page_words(request, principal)
    patient_page = not is_staff(principal) and request.url.path.startswith(PATIENT_PATHS)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    others = [
        {"code": code, "name": name, "href": f"/language/{code}?next={quote(here, safe='/')}"}
        for code, name in LANGUAGES.items()
        if code != words.language
    ]
    return {
        "i18n": words,
        "lang": words.language,
        "other_languages": others if patient_page else [],
    }


@pass_context
def _gettext(context: Context, message: str) -> str:
    if not message:  # gettext("") is the catalogue's header, never a page's word
        return message
    words = context.get("i18n")
    return (words if isinstance(words, Translator) else english()).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    words = context.get("i18n")
    return (words if isinstance(words, Translator) else english()).ngettext(singular, plural, n)


# English dates in the British order (12 April 2024), as the pages always showed them.
_DATE_LOCALES = {"en": "en_GB"}


def _date_locale(context: Context) -> str:
    words = context.get("i18n")
    language = words.language if isinstance(words, Translator) else "en"
    return _DATE_LOCALES.get(language, language)


@pass_context
def _long_date(context: Context, day: date) -> str:
    """12 April 2024, 12 de abril de 2024."""
    return format_date(day, "long", locale=_date_locale(context))


@pass_context
def _month_year(context: Context, day: date, *, short: bool = False) -> str:
    """April 2024 (Apr 2024 when short), abril de 2024."""
    return format_skeleton("yMMM" if short else "yMMMM", day, locale=_date_locale(context))


@pass_context
def _translated(context: Context, message: str | None) -> str:
    """A word from data (a form's label, an error message) in the page's language, unformatted."""
    if not message:
        return message or ""
    words = context.get("i18n")
    return (words if isinstance(words, Translator) else english()).gettext(str(message))


def install_i18n(env: Environment) -> None:
    """Give the templates gettext (``_``, ``gettext``, ``ngettext``, ``{% trans %}``) and
    dates in the page's language (``long_date``, ``month_year``)."""
    env.filters["tr"] = _translated
    env.filters["long_date"] = _long_date
    env.filters["month_year"] = _month_year
    env.add_extension("jinja2.ext.i18n")
    # newstyle: placeholders are %(name)s, filled and escaped by Jinja.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext, ngettext=_ngettext, newstyle=True
    )


def _safe_next(target: str | None) -> str:
    """Only same-site paths: the language link never sends anyone to another host."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/language/{code}")
def choose(request: Request, code: str) -> Response:
    """Remember the chosen language in a cookie and go back to the page it was chosen on."""
    if code not in LANGUAGES:
        raise NotFound(
            f"careloop has no pages in {code[:20]!r}; choose one of {sorted(LANGUAGES)}."
        )
    response = RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(
        LANGUAGE_COOKIE,
        code,
        max_age=ONE_YEAR,
        httponly=True,
        samesite="lax",
        secure=cookies_secure(request, settings_of(request)),
        path="/",
    )
    return response


__all__ = [
    "PATIENT_PATHS",
    "install_i18n",
    "is_staff",
    "language_context",
    "page_words",
    "request_language",
    "router",
]
