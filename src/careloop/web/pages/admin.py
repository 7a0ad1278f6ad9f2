"""The installation admin's pages under ``/admin``: sites, users and roles, API tokens,
trusted CDS clients, forms and the data-quality results.

Each page is a thin door over the functions the CLI (``careloop site|user|token|forms``,
``careloop cds``) and the JSON API call: :mod:`careloop.trust.identity`,
:mod:`careloop.practice.clients`, :mod:`careloop.capture.forms_store` and the stored
results of :mod:`careloop.warehouse.quality`. Those check the policy and write the
audit entry of every change; this module turns a posted form into one call and the
answer back into a page.

Who may open them: the pages are the installation admin's. The policy grants
``site.manage`` to the admin role alone, so every page asks for it first
(:func:`admin_actor`); anyone else gets 403, and the refusal is audited as any
refused unit of work is. A sensitive change (a user, a role, a token, a trusted
EHR) needs the admin's password entered within ``CARELOOP_REAUTH_MINUTES``, as the
API does: when it is older the form asks for it beside the button.

Every form posts with the session's CSRF token (checked by
:func:`careloop.web.security.authenticate`). A refusal comes back on the same page
with what was typed and each problem beside its field, nothing changed; a save
redirects (303) to the page with a confirmation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from careloop.capture import forms_store
from careloop.capture.forms_store import DictionaryFormat
from careloop.core.errors import (
    AuthenticationRequired,
    CareloopError,
    ErrorDetail,
    InputError,
    ReauthenticationRequired,
    ValidationFailed,
)
from careloop.core.settings import Settings
from careloop.practice import distrust_client, list_clients, trust_client
from careloop.trust import identity
from careloop.trust.policy import INSTALLATION_WIDE_ROLES, ROLE_DESCRIPTIONS, ROLES
from careloop.trust.work import unit_of_work
from careloop.web.openapi import RecordId
from careloop.web.pages.admin_quality import quality_context
from careloop.web.pages.rendering import form_state, page_context, render
from careloop.web.security import Actor, ActorDep, SettingsDep, request_context

router = APIRouter(prefix="/admin", include_in_schema=False)

ADMIN_ACTION = "site.manage"
"""The policy grants it to the installation admin alone: it opens every admin page."""

SECTIONS: tuple[tuple[str, str], ...] = (
    ("sites", "Sites"),
    ("users", "Users and roles"),
    ("tokens", "API tokens"),
    ("cds-clients", "Trusted CDS clients"),
    ("forms", "Forms"),
    ("data-quality", "Data quality"),
)

SAVED: dict[str, str] = {
    "site": "Saved: site {what} was added.",
    "user": "Saved: {what} was added.",
    "granted": "Saved: {what} has the new role.",
    "revoked": "Saved: the role was taken away from {what}.",
    "disabled": "Saved: {what} is disabled. Their sessions ended and their API tokens stopped.",
    "token-revoked": "Saved: token {what} was revoked and no longer works.",
    "client": "Saved: careloop now trusts the CDS client {what}.",
    "client-removed": "Saved: careloop no longer trusts the CDS client {what}.",
}
"""What the page says after each kind of save (``?saved=KIND&what=…``)."""

FIELD_WORDS: dict[str, str] = {
    "time_zone": "Time zone",
    "display_name": "Name",
    "password": "Their first password",
    "password_confirm": "Your password",
    "jwks_url": "JWK Set URL",
    "jwks": "JWK Set",
    "jku": "jku URLs",
    "fhir_servers": "FHIR servers",
    "origins": "Browser origins",
    "email": "E-mail",
}
"""How the error summary names a field (others: the field's name, capitalised)."""

PASSWORD_FIELD = "password_confirm"  # noqa: S105 - a form field's name, not a secret


def admin_actor(actor: ActorDep) -> Actor:
    """The caller, when the policy lets them administer the installation; else 403.

    A refusal goes through a unit of work, which audits it (``access``, denied).
    """
    if not actor.principal.may(ADMIN_ACTION):
        with unit_of_work(actor.registry, actor.principal, ADMIN_ACTION):
            pass  # not reached: the unit of work refuses and audits first
    return actor


AdminDep = Annotated[Actor, Depends(admin_actor)]


async def _form(request: Request) -> dict[str, str]:
    """The posted text fields; a field sent more than once keeps every value, one a line."""
    form = await request.form()
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out[key] = f"{out[key]}\n{value}" if key in out else value
    return out


FormDep = Annotated[dict[str, str], Depends(_form)]


def _problems(error: CareloopError | None) -> dict[str, str]:
    """Each problem by the form field it is about (``roles[0].site`` is the ``site`` field)."""
    if error is None:
        return {}
    out: dict[str, str] = {}
    for d in error.details:
        field = re.sub(r"^roles\[\d+\]\.", "", d.location)
        out.setdefault(field, d.message)
    return out


def needs_password(actor: Actor, settings: Settings) -> bool:
    """Whether a sensitive change asks for the password (the session's is too old)."""
    session = actor.caller.session
    if session is None:
        return False  # an API token needs none, as on the API
    try:
        identity.require_recent_authentication(session, settings)
    except ReauthenticationRequired:
        return True
    return False


def confirm_password(
    request: Request, actor: Actor, settings: Settings, form: Mapping[str, str]
) -> None:
    """A sensitive change goes ahead only with a recent password (the one typed, if any).

    Raises:
        ValidationFailed: the password is wrong, or needed and not given
            (located at the password field; the lock-out counts failures).
    """
    password = form.get(PASSWORD_FIELD, "")
    token = actor.caller.session_token
    if password and token:
        try:
            identity.reauthenticate(
                actor.registry, settings, token, password, request_context(request)
            )
        except AuthenticationRequired as exc:
            raise ValidationFailed(
                "Nothing was changed: your password was not accepted.",
                details=[ErrorDetail(PASSWORD_FIELD, exc.message)],
            ) from None
        return
    if needs_password(actor, settings):
        raise ValidationFailed(
            "Nothing was changed yet: this change needs your password.",
            details=[ErrorDetail(PASSWORD_FIELD, "Enter your password to confirm this change.")],
        )


def _page(
    request: Request,
    actor: Actor,
    settings: Settings,
    section: str,
    context: Mapping[str, Any],
    *,
    entered: Mapping[str, str] | None = None,
    error: CareloopError | None = None,
) -> HTMLResponse:
    """One admin page: its section's template, the saved message, what was typed and why
    it was refused (each problem by field)."""
    state = form_state(request, entered, error)
    state["problems"] = _problems(error)
    kind = request.query_params.get("saved", "")
    saved = SAVED[kind].format(what=request.query_params.get("what", "")) if kind in SAVED else ""
    return render(
        request,
        f"admin_{section.replace('-', '_')}.html",
        {
            **page_context(actor.caller),
            "sections": SECTIONS,
            "section": section,
            "saved": saved,
            "ask_password": needs_password(actor, settings),
            "password_field": PASSWORD_FIELD,
            "field_words": FIELD_WORDS,
            **state,
            **context,
        },
        error.http_status if error else 200,
    )


def _saved(section: str, kind: str, what: str) -> RedirectResponse:
    query = urlencode({"saved": kind, "what": what})
    return RedirectResponse(f"/admin/{section}?{query}", status_code=303)


# ---------------------------------------------------------------- the admin's start page


@router.get("", response_class=HTMLResponse)
def admin_home(request: Request, actor: AdminDep, settings: SettingsDep) -> Response:
    """What the admin can do here, with a count for each part."""
    counts = {
        "sites": len(actor.call(identity.list_sites)),
        "users": len(actor.call(identity.list_users)),
        "tokens": sum(t.revoked_at is None for t in actor.call(identity.list_tokens)),
        "cds-clients": len(actor.call(list_clients)),
        "forms": len(actor.call(forms_store.list_forms)),
    }
    return _page(request, actor, settings, "index", {"counts": counts})


# ---------------------------------------------------------------- sites

SITE_FIELDS = ("code", "name", "country", "time_zone")


def _sites_page(request: Request, actor: Actor, settings: Settings, **state: Any) -> HTMLResponse:
    return _page(
        request, actor, settings, "sites", {"sites": actor.call(identity.list_sites)}, **state
    )


@router.get("/sites", response_class=HTMLResponse)
def sites_page(request: Request, actor: AdminDep, settings: SettingsDep) -> Response:
    return _sites_page(request, actor, settings)


@router.post("/sites")
def add_site(request: Request, actor: AdminDep, settings: SettingsDep, form: FormDep) -> Response:
    """Add a care centre (``careloop site add``)."""
    entered = {k: form.get(k, "") for k in SITE_FIELDS}
    try:
        site = actor.call(identity.add_site, **entered)
    except CareloopError as exc:
        return _sites_page(request, actor, settings, entered=entered, error=exc)
    return _saved("sites", "site", site.code)


# ---------------------------------------------------------------- users and roles

USER_FIELDS = ("email", "display_name", "password", "role", "site")


def _users_page(request: Request, actor: Actor, settings: Settings, **state: Any) -> HTMLResponse:
    return _page(
        request,
        actor,
        settings,
        "users",
        _user_choices(actor.call(identity.list_users), actor.call(identity.list_sites)),
        **state,
    )


def _user_choices(users: list[identity.UserView], sites: list[identity.SiteView]) -> dict[str, Any]:
    """The users' table and the choices of the forms: users, roles (with what each may do)
    and sites."""
    return {
        "users": users,
        "user_choices": [(u.email, u.email) for u in users if not u.disabled],
        "role_choices": [(r, f"{r}: {ROLE_DESCRIPTIONS[r]}") for r in ROLES],
        "site_choices": [(s.code, f"{s.code}: {s.name}") for s in sites],
        "installation_wide": sorted(INSTALLATION_WIDE_ROLES),
    }


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, actor: AdminDep, settings: SettingsDep) -> Response:
    return _users_page(request, actor, settings)


@router.post("/users")
def add_user(request: Request, actor: AdminDep, settings: SettingsDep, form: FormDep) -> Response:
    """Add a user with a first role (``careloop user add``); without a password they
    cannot log in until one is set (or they are invited)."""
    entered = {k: form.get(k, "") for k in USER_FIELDS}
    try:
        confirm_password(request, actor, settings, form)
        user = actor.call(
            identity.add_user,
            email=entered["email"],
            display_name=entered["display_name"],
            password=entered["password"] or None,
            roles=[(entered["role"], entered["site"] or None)],
        )
    except CareloopError as exc:
        entered["password"] = ""  # never sent back to the browser
        return _users_page(request, actor, settings, entered={**entered, "form": "add"}, error=exc)
    return _saved("users", "user", user.email)


@router.post("/users/roles")
def change_role(
    request: Request, actor: AdminDep, settings: SettingsDep, form: FormDep
) -> Response:
    """Give a role at a site (``grant``) or take it away (``revoke``), as the API does."""
    entered = {k: form.get(k, "") for k in ("email", "role", "site", "change")}
    revoke = entered["change"] == "revoke"
    try:
        confirm_password(request, actor, settings, form)
        service = identity.revoke_role if revoke else identity.grant_role
        user = actor.call(
            service, email=entered["email"], role=entered["role"], site=entered["site"] or None
        )
    except CareloopError as exc:
        return _users_page(request, actor, settings, entered={**entered, "form": "role"}, error=exc)
    return _saved("users", "revoked" if revoke else "granted", user.email)


@router.post("/users/disable")
def disable_user(
    request: Request, actor: AdminDep, settings: SettingsDep, form: FormDep
) -> Response:
    """Disable a user: their sessions end and their tokens stop (``careloop user disable``)."""
    email = form.get("email", "")
    try:
        confirm_password(request, actor, settings, form)
        user = actor.call(identity.set_user_disabled, email=email, disabled=True)
    except CareloopError as exc:
        return _users_page(
            request, actor, settings, entered={"email": email, "form": "disable"}, error=exc
        )
    return _saved("users", "disabled", user.email)


# ---------------------------------------------------------------- API tokens


def _tokens_page(request: Request, actor: Actor, settings: Settings, **state: Any) -> HTMLResponse:
    return _page(
        request,
        actor,
        settings,
        "tokens",
        {"tokens": actor.call(identity.list_tokens), "created": None, **state.pop("extra", {})},
        **state,
    )


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, actor: AdminDep, settings: SettingsDep) -> Response:
    return _tokens_page(request, actor, settings)


def _days(text: str) -> int:
    if not text.strip().isdigit():
        raise ValidationFailed(
            "The token was not created.",
            details=[ErrorDetail("days", "Write a whole number of days from 1 to 3650, e.g. 90.")],
        )
    return int(text)


@router.post("/tokens")
def create_token(
    request: Request, actor: AdminDep, settings: SettingsDep, form: FormDep
) -> Response:
    """Create one of the admin's own API tokens: its secret is shown on this answer only."""
    entered = {"name": form.get("name", ""), "days": form.get("days", "90")}
    try:
        confirm_password(request, actor, settings, form)
        created = actor.call(
            identity.create_token, name=entered["name"], expires_in_days=_days(entered["days"])
        )
    except CareloopError as exc:
        if exc.details == [] and isinstance(exc, InputError):
            exc = ValidationFailed(
                exc.message, details=[ErrorDetail(_token_field(exc), exc.message)]
            )
        return _tokens_page(request, actor, settings, entered=entered, error=exc)
    # Rendered, not redirected: the secret must never sit in an address or a history.
    return _tokens_page(request, actor, settings, extra={"created": created})


def _token_field(exc: CareloopError) -> str:
    """The field a token refusal without details is about (its message says which)."""
    return "days" if "days" in exc.message else "name"


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    request: Request, token_id: RecordId, actor: AdminDep, settings: SettingsDep
) -> Response:
    """Revoke one of the admin's tokens (``careloop token revoke``)."""
    try:
        actor.call(identity.revoke_token, token_id=token_id)
    except CareloopError as exc:
        return _tokens_page(request, actor, settings, error=exc)
    return _saved("tokens", "token-revoked", str(token_id))


# ---------------------------------------------------------------- trusted CDS clients

CLIENT_FIELDS = ("issuer", "jwks_url", "jwks", "site", "origins", "jku", "fhir_servers")


def _clients_page(request: Request, actor: Actor, settings: Settings, **state: Any) -> HTMLResponse:
    return _page(
        request,
        actor,
        settings,
        "cds-clients",
        {
            "clients": actor.call(list_clients),
            "site_choices": [
                (s.code, f"{s.code}: {s.name}") for s in actor.call(identity.list_sites)
            ],
        },
        **state,
    )


@router.get("/cds-clients", response_class=HTMLResponse)
def clients_page(request: Request, actor: AdminDep, settings: SettingsDep) -> Response:
    return _clients_page(request, actor, settings)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@router.post("/cds-clients")
def add_client(request: Request, actor: AdminDep, settings: SettingsDep, form: FormDep) -> Response:
    """Trust an EHR's CDS client (``careloop cds trust-client``): its issuer and JWK Set."""
    entered = {k: form.get(k, "") for k in CLIENT_FIELDS}
    url, pasted = entered["jwks_url"].strip(), entered["jwks"].strip()
    try:
        confirm_password(request, actor, settings, form)
        if bool(url) == bool(pasted):
            raise ValidationFailed(
                "The CDS client was not trusted.",
                details=[ErrorDetail("jwks", "Give the JWK Set's URL or paste the JWK Set: one.")],
            )
        client = actor.call(
            trust_client,
            issuer=entered["issuer"].strip(),
            jwks_url=url or None,
            jwks_text=pasted or None,
            site=entered["site"] or None,
            origins=_lines(entered["origins"]),
            jku=_lines(entered["jku"]),
            fhir_servers=_lines(entered["fhir_servers"]),
        )
    except CareloopError as exc:
        return _clients_page(request, actor, settings, entered=entered, error=exc)
    return _saved("cds-clients", "client", client.issuer)


@router.post("/cds-clients/remove")
def remove_client(
    request: Request, actor: AdminDep, settings: SettingsDep, form: FormDep
) -> Response:
    """Stop trusting a CDS client (``careloop cds distrust-client``)."""
    issuer = form.get("issuer", "")
    try:
        confirm_password(request, actor, settings, form)
        actor.call(distrust_client, issuer=issuer)
    except CareloopError as exc:
        return _clients_page(request, actor, settings, entered={"remove": issuer}, error=exc)
    return _saved("cds-clients", "client-removed", issuer)


# ---------------------------------------------------------------- forms


def _forms_page(request: Request, actor: Actor, settings: Settings, **state: Any) -> HTMLResponse:
    extra = state.pop("extra", {})
    return _page(
        request,
        actor,
        settings,
        "forms",
        {"forms": actor.call(forms_store.list_forms), "imported": None, **extra},
        **state,
    )


@router.get("/forms", response_class=HTMLResponse)
def forms_page(request: Request, actor: AdminDep, settings: SettingsDep) -> Response:
    return _forms_page(request, actor, settings)


@router.post("/forms")
async def import_form_file(request: Request, actor: AdminDep, settings: SettingsDep) -> Response:
    """Import a data dictionary file (``careloop forms import``): REDCap CSV, careloop
    YAML or a FHIR Questionnaire. A bad file changes nothing; its problems are listed by
    row and field."""
    async with request.form() as form:
        upload, fmt = form.get("file"), str(form.get("format") or "") or None
        name, data = "", b""
        if upload is not None and not isinstance(upload, str) and upload.filename:
            name, data = upload.filename, await upload.read()
    entered = {"format": fmt or "", "form": "import"}
    try:
        if not name:
            raise ValidationFailed(
                "No file was imported.",
                details=[ErrorDetail("file", "Choose the data dictionary file to import.")],
            )
        results = await run_in_threadpool(
            forms_store.import_forms,
            actor.registry,
            actor.principal,
            data,
            fmt=cast(DictionaryFormat | None, fmt),  # import_forms refuses an unknown one
            name=name,
        )
    except CareloopError as exc:
        return await run_in_threadpool(
            _forms_page, request, actor, settings, entered=entered, error=exc
        )
    return await run_in_threadpool(
        _forms_page, request, actor, settings, extra={"imported": results}
    )


@router.get("/forms/{name}", response_class=HTMLResponse)
def form_versions(request: Request, name: str, actor: AdminDep, settings: SettingsDep) -> Response:
    """One form's fields and every stored version (``careloop forms show``)."""
    stored = actor.call(forms_store.get_form, name)
    return _page(request, actor, settings, "form", {"stored": stored})


# ---------------------------------------------------------------- data quality


@router.get("/data-quality", response_class=HTMLResponse)
def data_quality_page(request: Request, actor: AdminDep, settings: SettingsDep) -> Response:
    """The latest stored data-quality run, by site and by form (``careloop warehouse check``)."""
    return _page(request, actor, settings, "data-quality", quality_context(actor, request))
