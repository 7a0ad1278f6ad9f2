"""The JSON API under ``/api``: thin routes over careloop.trust services.

Every route authenticates the caller and calls one domain function; the
authorisation (role × action × site) and the audit entry happen there.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field, model_validator

from careloop import __version__
from careloop.core.errors import PermissionDenied
from careloop.core.settings import Settings
from careloop.trust import auditing, carers, identity, invitations, patients
from careloop.trust.audit_search import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    AuditPage,
    AuditQuery,
    OutcomeFilter,
    csv_chunks,
    entry_record,
    report_row,
)
from careloop.trust.consent import record_consent_purpose
from careloop.trust.identity import require_recent_authentication
from careloop.trust.policy import ACTIONS, ROLE_DESCRIPTIONS, ROLES, policy_rows
from careloop.web.etags import etag, version_from
from careloop.web.openapi import TEXT, RecordId, Strict, errors, files_too
from careloop.web.security import (
    Actor,
    ActorDep,
    CallerDep,
    SettingsDep,
    public_address,
)

router = APIRouter(prefix="/api")


class SiteCreate(Strict):
    code: str = Field(examples=["RCH"])
    name: str
    country: str = Field(examples=["GB"])
    time_zone: str = Field(examples=["Europe/London"])


class RoleGrant(Strict):
    role: str
    site: str | None = None


class UserCreate(Strict):
    email: str
    display_name: str = ""
    password: str | None = None
    roles: list[RoleGrant] = Field(default_factory=list)


class TokenCreate(Strict):
    name: str
    expires_in_days: int | None = 90


class CarerScopesChange(Strict):
    scopes: list[str] = Field(
        description="Exactly what the carer may do: fill_forms, see_results, manage_consent.",
        examples=[["fill_forms", "see_results"]],
    )


class PatientCreate(Strict):
    site: str
    local_id: str
    given_name: str | None = None
    family_name: str | None = None
    birth_date: date | None = None
    sex: Literal["female", "male", "other", "unknown"] = "unknown"
    consent_state: Literal[
        "direct_care_only", "improvement_only", "improvement_and_research", "withdrawn"
    ]
    consent_method: Literal["paper", "verbal", "electronic", "portal", "default", "fhir"] = "paper"


class PatientUpdate(Strict):
    reason: str = Field(description="Why the details change (required, audited).")
    changes: dict[str, Any] = Field(
        description="Fields to change: local_id, given_name, family_name, birth_date, sex."
    )


class InvitationCreate(Strict):
    email: str = Field(examples=["parent@example.org"])
    role: Literal["patient", "carer"] = "patient"
    relationship: str = Field("", description="For a carer: e.g. parent, partner.")
    expires_in_hours: int = Field(invitations.DEFAULT_INVITATION_HOURS, ge=1)
    language: Literal["en", "es"] = Field("en", description="The e-mail's language.")


class ConsentChange(Strict):
    """Either a preset ``state`` (every purpose it names), or one ``purpose`` with ``given``."""

    state: (
        Literal["direct_care_only", "improvement_only", "improvement_and_research", "withdrawn"]
        | None
    ) = None
    purpose: Literal["direct_care", "quality_improvement", "research", "recontact"] | None = None
    given: bool | None = Field(
        None, description="With purpose: true to give it, false to withdraw."
    )
    method: Literal[
        "paper", "verbal", "electronic", "portal", "default", "fhir", "national_opt_out"
    ]
    note: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ConsentChange:
        if (self.state is None) == (self.purpose is None):
            raise ValueError("send either state, or purpose with given (not both)")
        if self.purpose is not None and self.given is None:
            raise ValueError("with purpose, send given: true or false")
        if self.state is not None and self.given is not None:
            raise ValueError("given goes with purpose, not with state")
        return self


def _password_recent(actor: Actor, settings: Settings) -> None:
    """From a browser session, managing users needs a recent password (a token needs none)."""
    if actor.caller.session is not None:
        require_recent_authentication(actor.caller.session, settings)


# ---------------------------------------------------------------- who am I


@router.get("/me", tags=["identity"], responses=errors(401))
def me(caller: CallerDep) -> dict[str, Any]:
    """The caller, their roles and what they may do."""
    p = caller.principal
    return {
        "user_id": p.user_id,
        "email": p.email,
        "roles": [{"role": g.role, "site": g.site_code} for g in p.grants],
        "actions": sorted(a for a in ACTIONS if p.may(a)),
    }


@router.get("/policy", tags=["identity"], responses=errors(401))
def policy(caller: CallerDep) -> dict[str, Any]:
    """The access policy: which role may do what, where."""
    return {
        "roles": [{"role": r, "description": ROLE_DESCRIPTIONS[r]} for r in ROLES],
        "actions": [{"action": a.name, "description": a.description} for a in ACTIONS.values()],
        "grants": [{"role": r, "action": a, "scope": s} for r, a, s in policy_rows()],
    }


# ---------------------------------------------------------------- sites


@router.get("/sites", tags=["sites"], responses=errors(401, 403))
def sites(actor: ActorDep) -> list[identity.SiteView]:
    return actor.call(identity.list_sites)


@router.post("/sites", status_code=201, tags=["sites"], responses=errors(400, 401, 403, 409, 422))
def create_site(body: SiteCreate, actor: ActorDep) -> identity.SiteView:
    return actor.call(identity.add_site, **body.model_dump())


# ---------------------------------------------------------------- users


@router.get("/users", tags=["users"], responses=errors(401, 403))
def users(actor: ActorDep) -> list[identity.UserView]:
    return actor.call(identity.list_users)


@router.post(
    "/users", status_code=201, tags=["users"], responses=errors(400, 401, 403, 404, 409, 422)
)
def create_user(body: UserCreate, actor: ActorDep, settings: SettingsDep) -> identity.UserView:
    _password_recent(actor, settings)
    return actor.call(
        identity.add_user,
        email=body.email,
        display_name=body.display_name,
        password=body.password,
        roles=[(r.role, r.site) for r in body.roles],
    )


@router.post("/users/{email}/disable", tags=["users"], responses=errors(401, 403, 404, 409, 422))
def disable_user(email: str, actor: ActorDep, settings: SettingsDep) -> identity.UserView:
    _password_recent(actor, settings)
    return actor.call(identity.set_user_disabled, email=email, disabled=True)


@router.post("/users/{email}/roles", tags=["users"], responses=errors(400, 401, 403, 404, 409, 422))
def grant_role(
    email: str, body: RoleGrant, actor: ActorDep, settings: SettingsDep
) -> identity.UserView:
    _password_recent(actor, settings)
    return actor.call(identity.grant_role, email=email, role=body.role, site=body.site)


@router.delete(
    "/users/{email}/roles", tags=["users"], responses=errors(400, 401, 403, 404, 409, 422)
)
def revoke_role(
    email: str, body: RoleGrant, actor: ActorDep, settings: SettingsDep
) -> identity.UserView:
    _password_recent(actor, settings)
    return actor.call(identity.revoke_role, email=email, role=body.role, site=body.site)


# ---------------------------------------------------------------- tokens


@router.get("/tokens", tags=["tokens"], responses=errors(401, 403))
def tokens(actor: ActorDep) -> list[identity.TokenView]:
    return actor.call(identity.list_tokens)


@router.post("/tokens", status_code=201, tags=["tokens"], responses=errors(400, 401, 403, 422))
def create_token(
    body: TokenCreate, actor: ActorDep, settings: SettingsDep
) -> identity.TokenCreated:
    """Create an API token (from a browser session with a recent password only)."""
    if actor.caller.session is None:
        raise PermissionDenied("Create API tokens from a logged-in session, not with a token.")
    require_recent_authentication(actor.caller.session, settings)
    return actor.call(identity.create_token, name=body.name, expires_in_days=body.expires_in_days)


@router.delete(
    "/tokens/{token_id}", status_code=204, tags=["tokens"], responses=errors(401, 403, 404, 422)
)
def revoke_token(token_id: RecordId, actor: ActorDep) -> Response:
    actor.call(identity.revoke_token, token_id=token_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- patients


@router.get("/patients", tags=["patients"], responses=errors(401, 403, 404, 422))
def search_patients(
    actor: ActorDep,
    q: str | None = None,
    site: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[patients.PatientView]:
    """Patients you may see with identifiers, by local id or name."""
    return actor.call(patients.search_patients, text=q, site=site, limit=limit)


@router.post(
    "/patients", status_code=201, tags=["patients"], responses=errors(400, 401, 403, 404, 409, 422)
)
def register_patient(
    body: PatientCreate, actor: ActorDep, response: Response
) -> patients.PatientView:
    view = actor.call(patients.register_patient, **body.model_dump())
    response.headers["ETag"] = etag(view.version)
    response.headers["Location"] = f"/api/patients/{view.id}"
    return view


@router.get("/patients/{patient_id}", tags=["patients"], responses=errors(401, 403, 404, 422))
def read_patient(patient_id: RecordId, actor: ActorDep, response: Response) -> patients.PatientView:
    view = actor.call(patients.get_patient, patient_id)
    response.headers["ETag"] = etag(view.version)
    return view


@router.patch(
    "/patients/{patient_id}", tags=["patients"], responses=errors(400, 401, 403, 404, 409, 422)
)
def update_patient(
    patient_id: RecordId,
    body: PatientUpdate,
    actor: ActorDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> patients.PatientView:
    """Change details; send the ETag you read as If-Match to avoid overwriting others."""
    view = actor.call(
        patients.update_patient,
        patient_id,
        changes=body.changes,
        reason=body.reason,
        expected_version=version_from(if_match, what="patient"),
    )
    response.headers["ETag"] = etag(view.version)
    return view


@router.delete(
    "/patients/{patient_id}",
    status_code=204,
    tags=["patients"],
    responses=errors(401, 403, 404, 422),
)
def delete_patient(
    patient_id: RecordId,
    actor: ActorDep,
    reason: Annotated[str, Query(min_length=1)],
) -> Response:
    actor.call(patients.delete_patient, patient_id, reason=reason)
    return Response(status_code=204)


@router.get(
    "/patients/{patient_id}/consent", tags=["consent"], responses=errors(401, 403, 404, 422)
)
def consent_history(patient_id: RecordId, actor: ActorDep) -> list[patients.ConsentEntry]:
    return actor.call(patients.consent_history, patient_id)


@router.post(
    "/patients/{patient_id}/consent",
    tags=["consent"],
    responses=errors(400, 401, 403, 404, 409, 422),
)
def record_consent(
    patient_id: RecordId, body: ConsentChange, actor: ActorDep, response: Response
) -> patients.PatientView:
    """Record a preset ``state``, or change one ``purpose``.

    A purpose the patient had already chosen so is recorded nowhere; the
    response then carries ``Consent-Changed: false``.
    """
    if body.purpose is not None and body.given is not None:
        change = actor.call(
            record_consent_purpose,
            patient_id,
            body.purpose,
            body.given,
            method=body.method,
            note=body.note,
        )
        response.headers["Consent-Changed"] = "true" if change.changed else "false"
        return change.patient
    assert body.state is not None  # the model allows nothing else
    response.headers["Consent-Changed"] = "true"
    return actor.call(
        patients.record_consent, patient_id, state=body.state, method=body.method, note=body.note
    )


@router.post(
    "/patients/{patient_id}/invitations",
    status_code=201,
    tags=["patients"],
    responses=errors(400, 401, 403, 404, 409, 422),
)
def invite_to_record(
    patient_id: RecordId, body: InvitationCreate, request: Request, actor: ActorDep
) -> invitations.InvitationSent:
    """E-mail a single-use link that opens a patient's or a carer's account on this record."""
    return actor.call(
        invitations.invite_to_record,
        request.app.state.mailer,
        patient_id,
        email=body.email,
        role=body.role,
        relationship=body.relationship,
        link_base=public_address(request),
        expires_in_hours=body.expires_in_hours,
        language=body.language,
    )


@router.get(
    "/patients/{patient_id}/carers", tags=["patients"], responses=errors(401, 403, 404, 422)
)
def list_carers(
    patient_id: RecordId, actor: ActorDep, settings: SettingsDep
) -> carers.CarersOfPatient:
    """The patient's carers, what each may do, and the history of changes."""
    return actor.call(carers.list_carers, patient_id, handover_age=settings.handover_age)


@router.put(
    "/carer-links/{link_id}/scopes",
    tags=["patients"],
    responses=errors(400, 401, 403, 404, 422),
)
def set_carer_scopes(
    link_id: RecordId, body: CarerScopesChange, actor: ActorDep, settings: SettingsDep
) -> carers.CarerView:
    """Set what a carer may do (the patient, a guardian of a child, or the care team)."""
    return actor.call(
        carers.set_carer_scopes, link_id, body.scopes, handover_age=settings.handover_age
    )


@router.delete(
    "/carer-links/{link_id}",
    status_code=204,
    tags=["patients"],
    responses=errors(401, 403, 404, 422),
)
def end_carer_link(link_id: RecordId, actor: ActorDep, settings: SettingsDep) -> Response:
    """Remove a carer from the patient's record (the history stays)."""
    actor.call(carers.end_carer_link, link_id, handover_age=settings.handover_age)
    return Response(status_code=204)


@router.get("/pseudonymised/patients", tags=["analysis"], responses=errors(401, 403, 404, 422))
def pseudonymised_patients(
    actor: ActorDep, site: str | None = None
) -> list[patients.PseudonymisedPatient]:
    """Patients without identifiers (analysts and care teams)."""
    return actor.call(patients.list_pseudonymised, site=site)


@router.get(
    "/pseudonymised/patients/{pseudo_id}", tags=["analysis"], responses=errors(401, 403, 404, 422)
)
def pseudonymised_patient(pseudo_id: str, actor: ActorDep) -> patients.PseudonymisedPatient:
    return actor.call(patients.get_pseudonymised_patient, pseudo_id)


# ---------------------------------------------------------------- audit


def _page_link(request: Request, **cursor: int) -> str:
    """The same request (path and filters) for another page, as a relative URL."""
    url = request.url.remove_query_params(["before", "after"]).include_query_params(**cursor)
    return f"{url.path}?{url.query}"


def _paging_links(request: Request, page: AuditPage) -> dict[str, str]:
    links = []
    if page.older is not None:
        links.append(f'<{_page_link(request, before=page.older)}>; rel="next"')
    if page.newer is not None:
        links.append(f'<{_page_link(request, after=page.newer)}>; rel="prev"')
    return {"Link": ", ".join(links)} if links else {}


@router.get(
    "/audit",
    tags=["audit"],
    responses=errors(401, 403, 422)
    | files_too("The entries, as JSON or (``format=csv``) CSV.", {"text/csv": TEXT}),
)
def audit_report(
    request: Request,
    actor: ActorDep,
    since: datetime | None = None,
    until: datetime | None = None,
    user: Annotated[str | None, Query(description="User e-mail or numeric id.")] = None,
    patient: Annotated[
        str | None, Query(description="Patient pseudonymous id or numeric id.")
    ] = None,
    action: str | None = None,
    category: Annotated[
        str | None, Query(description="What was touched: clinical, consent, identity…")
    ] = None,
    site: Annotated[str | None, Query(description="Site code.")] = None,
    outcome: OutcomeFilter | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    before: Annotated[
        int | None, Query(ge=0, description="Entries older than this entry number.")
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, description="Entries newer than this entry number.")
    ] = None,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """Audit entries for auditors, newest first, one page at a time, as JSON or CSV.

    The ``Link`` header names the next (older) page as ``rel="next"`` and the
    previous (newer) one as ``rel="prev"``.
    """
    query = AuditQuery(
        since=since,
        until=until,
        user=user,
        action=action,
        category=category,
        site=site,
        outcome=outcome,
        patient=patient,
    )
    page = actor.call(auditing.audit_entries, query, before=before, after=after, limit=limit)
    headers = _paging_links(request, page)
    if format == "csv":
        return Response(
            "".join(csv_chunks(report_row(e) for e in page.entries)),
            media_type="text/csv",
            headers=headers,
        )
    return JSONResponse([entry_record(e) for e in page.entries], headers=headers)


@router.get("/audit/verify", tags=["audit"], responses=errors(401, 403))
def audit_verify(actor: ActorDep) -> dict[str, Any]:
    """Walk the audit hash chain and say whether it is intact."""
    return asdict(actor.call(auditing.verify_audit_chain))


def health_payload(registry_ok: bool) -> dict[str, Any]:
    return {"status": "ok" if registry_ok else "degraded", "version": __version__}
