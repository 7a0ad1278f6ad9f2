"""The JSON API under ``/api``: thin routes over careloop.trust services.

Every route authenticates the caller and calls one domain function; the
authorisation (role × action × site) and the audit entry happen there.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from careloop import __version__
from careloop.core.errors import PermissionDenied
from careloop.trust import auditing, identity, invitations, patients
from careloop.trust.audit import AuditFilter
from careloop.trust.identity import require_recent_authentication
from careloop.trust.policy import ACTIONS, ROLE_DESCRIPTIONS, ROLES, policy_rows
from careloop.web.etags import etag, version_from
from careloop.web.openapi import TEXT, RecordId, errors, files_too
from careloop.web.security import CallerDep, RegistryDep, SettingsDep, public_address

router = APIRouter(prefix="/api")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class PatientCreate(Strict):
    site: str
    local_id: str
    given_name: str | None = None
    family_name: str | None = None
    birth_date: date | None = None
    sex: Literal["female", "male", "other", "unknown"] = "unknown"
    consent_state: Literal["direct_care_only", "improvement_and_research", "withdrawn"]
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


class ConsentChange(Strict):
    state: Literal["direct_care_only", "improvement_and_research", "withdrawn"]
    method: Literal["paper", "verbal", "electronic", "portal", "default", "fhir"]
    note: str | None = None


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
def sites(caller: CallerDep, registry: RegistryDep) -> list[identity.SiteView]:
    return identity.list_sites(registry, caller.principal)


@router.post("/sites", status_code=201, tags=["sites"], responses=errors(400, 401, 403, 409, 422))
def create_site(body: SiteCreate, caller: CallerDep, registry: RegistryDep) -> identity.SiteView:
    return identity.add_site(registry, caller.principal, **body.model_dump())


# ---------------------------------------------------------------- users


@router.get("/users", tags=["users"], responses=errors(401, 403))
def users(caller: CallerDep, registry: RegistryDep) -> list[identity.UserView]:
    return identity.list_users(registry, caller.principal)


@router.post(
    "/users", status_code=201, tags=["users"], responses=errors(400, 401, 403, 404, 409, 422)
)
def create_user(
    body: UserCreate, caller: CallerDep, registry: RegistryDep, settings: SettingsDep
) -> identity.UserView:
    if caller.session is not None:
        require_recent_authentication(caller.session, settings)
    return identity.add_user(
        registry,
        caller.principal,
        email=body.email,
        display_name=body.display_name,
        password=body.password,
        roles=[(r.role, r.site) for r in body.roles],
    )


@router.post("/users/{email}/disable", tags=["users"], responses=errors(401, 403, 404, 409, 422))
def disable_user(
    email: str, caller: CallerDep, registry: RegistryDep, settings: SettingsDep
) -> identity.UserView:
    if caller.session is not None:
        require_recent_authentication(caller.session, settings)
    return identity.set_user_disabled(registry, caller.principal, email=email, disabled=True)


@router.post("/users/{email}/roles", tags=["users"], responses=errors(400, 401, 403, 404, 409, 422))
def grant_role(
    email: str, body: RoleGrant, caller: CallerDep, registry: RegistryDep, settings: SettingsDep
) -> identity.UserView:
    if caller.session is not None:
        require_recent_authentication(caller.session, settings)
    return identity.grant_role(
        registry, caller.principal, email=email, role=body.role, site=body.site
    )


@router.delete(
    "/users/{email}/roles", tags=["users"], responses=errors(400, 401, 403, 404, 409, 422)
)
def revoke_role(
    email: str, body: RoleGrant, caller: CallerDep, registry: RegistryDep, settings: SettingsDep
) -> identity.UserView:
    if caller.session is not None:
        require_recent_authentication(caller.session, settings)
    return identity.revoke_role(
        registry, caller.principal, email=email, role=body.role, site=body.site
    )


# ---------------------------------------------------------------- tokens


@router.get("/tokens", tags=["tokens"], responses=errors(401, 403))
def tokens(caller: CallerDep, registry: RegistryDep) -> list[identity.TokenView]:
    return identity.list_tokens(registry, caller.principal)


@router.post("/tokens", status_code=201, tags=["tokens"], responses=errors(400, 401, 403, 422))
def create_token(
    body: TokenCreate, caller: CallerDep, registry: RegistryDep, settings: SettingsDep
) -> identity.TokenCreated:
    """Create an API token (from a browser session with a recent password only)."""
    if caller.session is None:
        raise PermissionDenied("Create API tokens from a logged-in session, not with a token.")
    require_recent_authentication(caller.session, settings)
    return identity.create_token(
        registry, caller.principal, name=body.name, expires_in_days=body.expires_in_days
    )


@router.delete(
    "/tokens/{token_id}", status_code=204, tags=["tokens"], responses=errors(401, 403, 404, 422)
)
def revoke_token(token_id: RecordId, caller: CallerDep, registry: RegistryDep) -> Response:
    identity.revoke_token(registry, caller.principal, token_id=token_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- patients


@router.get("/patients", tags=["patients"], responses=errors(401, 403, 404, 422))
def search_patients(
    caller: CallerDep,
    registry: RegistryDep,
    q: str | None = None,
    site: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[patients.PatientView]:
    """Patients you may see with identifiers, by local id or name."""
    return patients.search_patients(registry, caller.principal, text=q, site=site, limit=limit)


@router.post(
    "/patients", status_code=201, tags=["patients"], responses=errors(400, 401, 403, 404, 409, 422)
)
def register_patient(
    body: PatientCreate, caller: CallerDep, registry: RegistryDep, response: Response
) -> patients.PatientView:
    view = patients.register_patient(registry, caller.principal, **body.model_dump())
    response.headers["ETag"] = etag(view.version)
    response.headers["Location"] = f"/api/patients/{view.id}"
    return view


@router.get("/patients/{patient_id}", tags=["patients"], responses=errors(401, 403, 404, 422))
def read_patient(
    patient_id: RecordId, caller: CallerDep, registry: RegistryDep, response: Response
) -> patients.PatientView:
    view = patients.get_patient(registry, caller.principal, patient_id)
    response.headers["ETag"] = etag(view.version)
    return view


@router.patch(
    "/patients/{patient_id}", tags=["patients"], responses=errors(400, 401, 403, 404, 409, 422)
)
def update_patient(
    patient_id: RecordId,
    body: PatientUpdate,
    caller: CallerDep,
    registry: RegistryDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> patients.PatientView:
    """Change details; send the ETag you read as If-Match to avoid overwriting others."""
    view = patients.update_patient(
        registry,
        caller.principal,
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
    caller: CallerDep,
    registry: RegistryDep,
    reason: Annotated[str, Query(min_length=1)],
) -> Response:
    patients.delete_patient(registry, caller.principal, patient_id, reason=reason)
    return Response(status_code=204)


@router.get(
    "/patients/{patient_id}/consent", tags=["consent"], responses=errors(401, 403, 404, 422)
)
def consent_history(
    patient_id: RecordId, caller: CallerDep, registry: RegistryDep
) -> list[patients.ConsentEntry]:
    return patients.consent_history(registry, caller.principal, patient_id)


@router.post(
    "/patients/{patient_id}/consent",
    tags=["consent"],
    responses=errors(400, 401, 403, 404, 409, 422),
)
def record_consent(
    patient_id: RecordId, body: ConsentChange, caller: CallerDep, registry: RegistryDep
) -> patients.PatientView:
    return patients.record_consent(
        registry, caller.principal, patient_id, state=body.state, method=body.method, note=body.note
    )


@router.post(
    "/patients/{patient_id}/invitations",
    status_code=201,
    tags=["patients"],
    responses=errors(400, 401, 403, 404, 409, 422),
)
def invite_to_record(
    patient_id: RecordId,
    body: InvitationCreate,
    request: Request,
    caller: CallerDep,
    registry: RegistryDep,
) -> invitations.InvitationSent:
    """E-mail a single-use link that opens a patient's or a carer's account on this record."""
    return invitations.invite_to_record(
        registry,
        caller.principal,
        request.app.state.mailer,
        patient_id,
        email=body.email,
        role=body.role,
        relationship=body.relationship,
        link_base=public_address(request),
        expires_in_hours=body.expires_in_hours,
    )


@router.get("/pseudonymised/patients", tags=["analysis"], responses=errors(401, 403, 404, 422))
def pseudonymised_patients(
    caller: CallerDep, registry: RegistryDep, site: str | None = None
) -> list[patients.PseudonymisedPatient]:
    """Patients without identifiers (analysts and care teams)."""
    return patients.list_pseudonymised(registry, caller.principal, site=site)


@router.get(
    "/pseudonymised/patients/{pseudo_id}", tags=["analysis"], responses=errors(401, 403, 404, 422)
)
def pseudonymised_patient(
    pseudo_id: str, caller: CallerDep, registry: RegistryDep
) -> patients.PseudonymisedPatient:
    return patients.get_pseudonymised_patient(registry, caller.principal, pseudo_id)


# ---------------------------------------------------------------- audit


@router.get(
    "/audit",
    tags=["audit"],
    responses=errors(401, 403, 422)
    | files_too("The entries, as JSON or (``format=csv``) CSV.", {"text/csv": TEXT}),
)
def audit_report(
    caller: CallerDep,
    registry: RegistryDep,
    since: datetime | None = None,
    until: datetime | None = None,
    user: str | None = None,
    patient: str | None = None,
    action: str | None = None,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """Audit entries for auditors, as JSON or CSV."""
    text = auditing.audit_report(
        registry,
        caller.principal,
        AuditFilter(since=since, until=until, user=user, patient=patient, action=action),
        fmt=format,
    )
    media = "text/csv" if format == "csv" else "application/json"
    return Response(text, media_type=media)


@router.get("/audit/verify", tags=["audit"], responses=errors(401, 403))
def audit_verify(caller: CallerDep, registry: RegistryDep) -> dict[str, Any]:
    """Walk the audit hash chain and say whether it is intact."""
    return asdict(auditing.verify_audit_chain(registry, caller.principal))


def health_payload(registry_ok: bool) -> dict[str, Any]:
    return {"status": "ok" if registry_ok else "degraded", "version": __version__}
