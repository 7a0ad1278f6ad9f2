"""Patients of a site: registration, identifiable and pseudonymised views, consent.

Direct identifiers (local id such as the MRN, names, exact date of birth)
appear only in :class:`PatientView`, returned for ``patient.read``; analysts
get :class:`PseudonymisedPatient` (pseudonym, site, year of birth, sex,
consent). Every identifiable read or change is audited in its own
transaction; which rows can be reached at all is decided by the scoped
session, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from careloop.core.clock import utcnow
from careloop.core.errors import Conflict, ErrorDetail, InputError, NotFound, ValidationFailed
from careloop.core.ids import pseudonym
from careloop.core.plain_text import shown, text_problem
from careloop.store.database import Registry
from careloop.store.models import (
    CARER_SCOPES_ALL,
    CONSENT_PRESETS,
    CONSENT_STATES,
    SEXES,
    CarerLink,
    ConsentRecord,
    Patient,
    Site,
    User,
)
from careloop.trust.audit import append_many
from careloop.trust.identity import site_by_code
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

ConsentState = Literal[
    "direct_care_only", "improvement_only", "improvement_and_research", "withdrawn"
]
ConsentMethod = Literal[
    "paper", "verbal", "electronic", "portal", "default", "fhir", "national_opt_out"
]
CONSENT_METHODS = ("paper", "verbal", "electronic", "portal", "default", "fhir", "national_opt_out")
LOCAL_ID_MAX = 64
"""Most characters of a patient's local id (record id, MRN)."""
NAME_MAX = 200
"""Most characters of a given or family name."""
EDITABLE_FIELDS = ("local_id", "given_name", "family_name", "birth_date", "sex")


@dataclass(frozen=True)
class PatientView:
    """A patient with direct identifiers (care team, the patient, their carer)."""

    id: int
    site: str
    local_id: str
    pseudo_id: str
    given_name: str | None
    family_name: str | None
    birth_date: date | None
    sex: str
    consent_state: str
    version: int
    consent: dict[str, bool] = field(default_factory=dict)
    """Purpose (direct_care, quality_improvement, research, recontact) → agreed."""


@dataclass(frozen=True)
class PseudonymisedPatient:
    """A patient as analysts see them: no names, no local ids, year of birth only."""

    pseudo_id: str
    site: str
    birth_year: int | None
    sex: str
    consent_state: str


@dataclass(frozen=True)
class ConsentEntry:
    """One recorded consent decision: one purpose, or a preset that sets several."""

    state: str
    """The patient's consent summary after this decision."""
    method: str
    recorded_at: datetime
    recorded_by: str | None
    note: str | None
    purpose: str | None = None
    """The one purpose this decision changed; None for a preset (``state``)."""
    given: bool | None = None
    """Whether that purpose was given (None for a preset)."""

    def choice(self, purpose: str) -> bool | None:
        """What this decision said about ``purpose``; None when it said nothing about it."""
        if self.purpose is not None:
            return self.given if self.purpose == purpose else None
        return CONSENT_PRESETS.get(self.state, {}).get(purpose)


def _site_code(session: Session, site_id: int) -> str:
    site = session.get(Site, site_id)
    return site.code if site else "?"


def _view(session: Session, p: Patient) -> PatientView:
    return PatientView(
        p.id,
        _site_code(session, p.site_id),
        p.local_id,
        p.pseudo_id,
        p.given_name,
        p.family_name,
        p.birth_date,
        p.sex,
        p.consent_state,
        p.version,
        p.consent_choices(),
    )


def _pseudonymised(session: Session, p: Patient) -> PseudonymisedPatient:
    return PseudonymisedPatient(
        p.pseudo_id,
        _site_code(session, p.site_id),
        p.birth_date.year if p.birth_date else None,
        p.sex,
        p.consent_state,
    )


def _shown(value: Any) -> Any:
    return shown(value) if isinstance(value, str) else value


def patient_field_problems(values: dict[str, Any]) -> list[ErrorDetail]:
    """Every way ``values`` (patient fields) break the registry's rules, located at the field.

    The same rules as registering through the API, for importers that read
    patients elsewhere (the FHIR import).
    """
    try:
        _check_fields(values)
    except ValidationFailed as exc:
        return list(exc.details)
    return []


def _check_fields(values: dict[str, Any]) -> dict[str, Any]:
    problems: list[ErrorDetail] = []
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key not in EDITABLE_FIELDS:
            problems.append(
                ErrorDetail(key, f"not a patient field; use one of {', '.join(EDITABLE_FIELDS)}")
            )
            continue
        if key == "local_id":
            problem = (
                text_problem(value, what="a local id", max_length=LOCAL_ID_MAX)
                if isinstance(value, str)
                else "a local id is text of 1-64 characters"
            )
            if problem is not None:
                problems.append(ErrorDetail(key, problem, _shown(value)))
                continue
            value = value.strip()
        elif key == "sex":
            if value not in SEXES:
                problems.append(ErrorDetail(key, f"use one of {', '.join(SEXES)}", value))
                continue
        elif key == "birth_date" and value is not None:
            if isinstance(value, str):
                try:
                    value = date.fromisoformat(value)
                except ValueError:
                    problems.append(ErrorDetail(key, "use a date as YYYY-MM-DD", value))
                    continue
            if not isinstance(value, date) or value > date.today() or value.year < 1900:
                problems.append(
                    ErrorDetail(
                        key, "the date of birth must lie between 1900 and today", str(value)
                    )
                )
                continue
        elif key in ("given_name", "family_name") and value is not None:
            problem = (
                text_problem(value, what="a name", max_length=NAME_MAX, required=False)
                if isinstance(value, str)
                else f"a name is text of at most {NAME_MAX} characters"
            )
            if problem is not None:
                problems.append(ErrorDetail(key, problem, _shown(value)))
                continue
            value = value.strip() or None
        clean[key] = value
    if problems:
        raise ValidationFailed("The patient details are not valid.", details=problems)
    return clean


def register_patient(
    registry: Registry,
    principal: Principal,
    *,
    site: str,
    local_id: str,
    given_name: str | None = None,
    family_name: str | None = None,
    birth_date: date | str | None = None,
    sex: str = "unknown",
    consent_state: ConsentState,
    consent_method: ConsentMethod = "paper",
) -> PatientView:
    """Register a patient at ``site`` with a fresh pseudonymous id and a first consent record."""
    fields = _check_fields(
        {
            "local_id": local_id,
            "given_name": given_name,
            "family_name": family_name,
            "birth_date": birth_date,
            "sex": sex,
        }
    )
    _check_consent(consent_state, consent_method)
    with unit_of_work(registry, principal, "patient.create") as work:
        session = work.session
        site_row = _site_in_scope(work, site)
        clash = session.scalar(
            select(Patient.id).where(
                Patient.site_id == site_row.id, Patient.local_id == fields["local_id"]
            )
        )
        if clash is not None:
            raise Conflict(
                f"Site {site_row.code} already has a patient with local id {fields['local_id']}."
            )
        patient = Patient(
            site_id=site_row.id, pseudo_id=pseudonym(), consent_state=consent_state, **fields
        )
        session.add(patient)
        session.flush()
        session.add(
            ConsentRecord(
                site_id=site_row.id,
                patient_id=patient.id,
                state=consent_state,
                method=consent_method,
                recorded_by_user_id=principal.user_id,
            )
        )
        work.audit("create", "demographics", patient=patient, site_code=site_row.code)
        return _view(session, patient)


def _site_in_scope(work: Work, code: str) -> Site:
    site = site_by_code(work.session, code)
    if not work.scope.allows_site(site.id) or work.scope.patient_ids is not None:
        raise NotFound(f"There is no site with code {code!r} whose patients you can see.")
    return site


def _load(work: Work, patient_id: int, action: str, category: str) -> Patient:
    work.expect(action, category, details={"patient_id": patient_id})
    patient = work.session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(f"There is no patient {patient_id} that you can see.")
    return patient


def get_patient(registry: Registry, principal: Principal, patient_id: int) -> PatientView:
    """One patient with identifiers (audited read)."""
    with unit_of_work(registry, principal, "patient.read") as work:
        patient = _load(work, patient_id, "read", "demographics")
        view = _view(work.session, patient)
        work.audit("read", "demographics", patient=patient, site_code=view.site)
        return view


def get_pseudonymised_patient(
    registry: Registry, principal: Principal, pseudo_id: str
) -> PseudonymisedPatient:
    """One patient by pseudonym, without identifiers."""
    with unit_of_work(registry, principal, "patient.read_pseudonymised") as work:
        patient = work.session.scalar(select(Patient).where(Patient.pseudo_id == pseudo_id))
        if patient is None:
            raise NotFound(f"There is no patient {pseudo_id} that you can see.")
        return _pseudonymised(work.session, patient)


def search_patients(
    registry: Registry,
    principal: Principal,
    *,
    text: str | None = None,
    site: str | None = None,
    limit: int = 50,
) -> list[PatientView]:
    """Patients the principal may see, by local id or name (audited: one entry per search)."""
    limit = max(1, min(limit, 500))
    with unit_of_work(registry, principal, "patient.read") as work:
        session = work.session
        query = select(Patient).order_by(Patient.site_id, Patient.local_id).limit(limit)
        if site:
            query = query.where(Patient.site_id == _site_in_scope(work, site).id)
        if text:
            like = f"%{text.strip().lower()}%"
            query = query.where(
                or_(
                    Patient.local_id.ilike(like),
                    Patient.given_name.ilike(like),
                    Patient.family_name.ilike(like),
                )
            )
        patients = list(session.scalars(query))
        work.audit(
            "read",
            "demographics",
            site_code=site,
            details={
                "search": bool(text),
                "results": len(patients),
                "patient_ids": [p.id for p in patients],
            },
        )
        return [_view(session, p) for p in patients]


def list_pseudonymised(
    registry: Registry, principal: Principal, *, site: str | None = None, limit: int = 1000
) -> list[PseudonymisedPatient]:
    """Patients without identifiers, for analysts."""
    with unit_of_work(registry, principal, "patient.read_pseudonymised") as work:
        query = select(Patient).order_by(Patient.pseudo_id).limit(max(1, min(limit, 100_000)))
        if site:
            query = query.where(Patient.site_id == _site_in_scope(work, site).id)
        return [_pseudonymised(work.session, p) for p in work.session.scalars(query)]


def update_patient(
    registry: Registry,
    principal: Principal,
    patient_id: int,
    *,
    changes: dict[str, Any],
    reason: str,
    expected_version: int | None = None,
) -> PatientView:
    """Change a patient's details. A reason for change is required and audited.

    ``expected_version`` (from the view or an ETag) guards against
    overwriting someone else's newer change: a stale version is a Conflict.
    """
    if not reason or not reason.strip():
        raise InputError(
            "Say why the details change (reason for change); it goes in the audit trail."
        )
    clean = _check_fields(changes)
    if not clean:
        raise InputError("Nothing to change.")
    with unit_of_work(registry, principal, "patient.update") as work:
        patient = _load(work, patient_id, "update", "demographics")
        if expected_version is not None and patient.version != expected_version:
            raise Conflict(
                f"Patient {patient_id} was changed by someone else (version {patient.version}, "
                f"you had {expected_version}). Reload and apply your change again."
            )
        changed = [k for k, v in clean.items() if getattr(patient, k) != v]
        for key in changed:
            setattr(patient, key, clean[key])
        work.session.flush()
        work.audit(
            "update",
            "demographics",
            patient=patient,
            site_code=_site_code(work.session, patient.site_id),
            reason=reason.strip(),
            details={"fields": changed},
        )
        return _view(work.session, patient)


def delete_patient(
    registry: Registry, principal: Principal, patient_id: int, *, reason: str
) -> None:
    """Delete a patient registered in error, with everything recorded about them."""
    if not reason or not reason.strip():
        raise InputError("Say why the patient is deleted; it goes in the audit trail.")
    with unit_of_work(registry, principal, "patient.delete") as work:
        patient = _load(work, patient_id, "delete", "demographics")
        site_code = _site_code(work.session, patient.site_id)
        work.audit(
            "delete", "demographics", patient=patient, site_code=site_code, reason=reason.strip()
        )
        work.session.delete(patient)


def _check_consent(state: str, method: str) -> None:
    problems = []
    if state not in CONSENT_STATES:
        problems.append(
            ErrorDetail("consent_state", f"use one of {', '.join(CONSENT_STATES)}", state)
        )
    if method not in CONSENT_METHODS:
        problems.append(ErrorDetail("method", f"use one of {', '.join(CONSENT_METHODS)}", method))
    if problems:
        raise ValidationFailed("The consent is not valid.", details=problems)


def record_consent(
    registry: Registry,
    principal: Principal,
    patient_id: int,
    *,
    state: ConsentState,
    method: ConsentMethod,
    note: str | None = None,
) -> PatientView:
    """Record a new consent decision; the history keeps every earlier one."""
    _check_consent(state, method)
    with unit_of_work(registry, principal, "consent.update") as work:
        patient = _load(work, patient_id, "update", "consent")
        previous = patient.consent_state
        before = patient.consent_choices()
        patient.consent_state = state
        after = patient.consent_choices()
        work.session.add(
            ConsentRecord(
                site_id=patient.site_id,
                patient_id=patient.id,
                state=state,
                method=method,
                recorded_by_user_id=principal.user_id,
                recorded_at=utcnow(),
                note=note,
            )
        )
        work.session.flush()
        work.audit(
            "update",
            "consent",
            patient=patient,
            site_code=_site_code(work.session, patient.site_id),
            reason=note,
            details={
                "from": previous,
                "to": state,
                "method": method,
                "purposes": {p: [before[p], after[p]] for p in after if before[p] != after[p]},
            },
        )
        return _view(work.session, patient)


def consent_history(
    registry: Registry, principal: Principal, patient_id: int
) -> list[ConsentEntry]:
    """Every consent decision about a patient, oldest first (presets and single purposes)."""
    with unit_of_work(registry, principal, "patient.read") as work:
        patient = _load(work, patient_id, "read", "consent")
        rows = work.session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.patient_id == patient.id)
            .order_by(ConsentRecord.id)
        )
        emails = {u.id: u.email for u in work.session.scalars(select(User))}
        history = [
            ConsentEntry(
                r.state,
                r.method,
                r.recorded_at,
                emails.get(r.recorded_by_user_id) if r.recorded_by_user_id else None,
                r.note,
                r.purpose,
                r.given,
            )
            for r in rows
        ]
        work.audit(
            "read", "consent", patient=patient, site_code=_site_code(work.session, patient.site_id)
        )
        return history


def link_carer(
    registry: Registry,
    principal: Principal,
    patient_id: int,
    *,
    carer_email: str,
    relationship: str,
) -> None:
    """Make a user (with the carer role) a proxy for a patient."""
    with unit_of_work(registry, principal, "patient.update") as work:
        patient = _load(work, patient_id, "update", "proxy")
        carer = work.session.scalar(select(User).where(User.email == carer_email.strip().lower()))
        if carer is None:
            raise NotFound(f"There is no user {carer_email}; add them with the carer role first.")
        if not any(m.role == "carer" for m in carer.memberships):
            raise InputError(f"{carer.email} does not have the carer role.")
        work.session.add(
            CarerLink(
                site_id=patient.site_id,
                patient_id=patient.id,
                carer_user_id=carer.id,
                relationship_to_patient=relationship.strip() or "carer",
                scopes=CARER_SCOPES_ALL,
                scopes_set_by=principal.email,
            )
        )
        work.audit(
            "privilege_change",
            "proxy",
            patient=patient,
            site_code=_site_code(work.session, patient.site_id),
            details={"carer": carer.email},
        )


@dataclass(frozen=True)
class NewPatient:
    """One patient to register in bulk."""

    local_id: str
    birth_date: date | None
    sex: str
    consent_state: str
    given_name: str | None = None
    family_name: str | None = None


def register_patients(
    registry: Registry,
    principal: Principal,
    *,
    site: str,
    patients: Sequence[NewPatient],
    consent_method: ConsentMethod = "paper",
) -> dict[str, int]:
    """Register many patients of one site at once; returns local id → patient id.

    The same rules as :func:`register_patient` (validated fields, a first
    consent record, one audit entry per patient), written with multi-row
    inserts so a registry of thousands loads in seconds. All or nothing.
    """
    rows, seen = _checked_batch(patients, consent_method)
    now = utcnow()
    with unit_of_work(registry, principal, "patient.create") as work:
        session = work.session
        site_row = _site_in_scope(work, site)
        clash = (
            set(session.scalars(select(Patient.local_id).where(Patient.site_id == site_row.id)))
            & seen
        )
        if clash:
            raise Conflict(
                f"Site {site_row.code} already has patients with local ids {sorted(clash)[:5]}."
            )
        table = Patient.__table__
        for start in range(0, len(rows), 5000):
            session.execute(
                insert(table),  # type: ignore[arg-type]
                [
                    {
                        **r,
                        "site_id": site_row.id,
                        "pseudo_id": pseudonym(),
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                    for r in rows[start : start + 5000]
                ],
            )
        ids = {
            local_id: (pid, pseudo, state)
            for pid, local_id, pseudo, state in session.execute(
                select(
                    Patient.id, Patient.local_id, Patient.pseudo_id, Patient.consent_state
                ).where(Patient.site_id == site_row.id, Patient.local_id.in_(sorted(seen)))
            )
        }
        consent = [
            {
                "site_id": site_row.id,
                "patient_id": pid,
                "state": state,
                "method": consent_method,
                "recorded_by_user_id": principal.user_id,
                "recorded_at": now,
            }
            for pid, _pseudo, state in ids.values()
        ]
        for start in range(0, len(consent), 5000):
            session.execute(insert(ConsentRecord.__table__), consent[start : start + 5000])  # type: ignore[arg-type]
        append_many(
            session,
            [
                replace(
                    work.event("create", "demographics", site_code=site_row.code),
                    patient_id=pid,
                    patient_pseudo_id=pseudo,
                )
                for pid, pseudo, _state in ids.values()
            ],
        )
        return {local_id: v[0] for local_id, v in ids.items()}


def _checked_batch(
    patients: Sequence[NewPatient], consent_method: ConsentMethod
) -> tuple[list[dict[str, Any]], set[str]]:
    """The clean row of each new patient, and their local ids.

    Raises:
        ValidationFailed: Every problem of every patient (a local id given
            twice is one); nothing is registered.
    """
    problems: list[ErrorDetail] = []
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for i, p in enumerate(patients):
        try:
            clean = _check_fields(
                {
                    "local_id": p.local_id,
                    "given_name": p.given_name,
                    "family_name": p.family_name,
                    "birth_date": p.birth_date,
                    "sex": p.sex,
                }
            )
            _check_consent(p.consent_state, consent_method)
        except ValidationFailed as exc:
            problems.extend(
                ErrorDetail(f"patients[{i}].{d.location}", d.message, d.value) for d in exc.details
            )
            continue
        if clean["local_id"] in seen:
            problems.append(
                ErrorDetail(f"patients[{i}].local_id", "appears twice in this batch", p.local_id)
            )
        seen.add(clean["local_id"])
        rows.append({**clean, "consent_state": p.consent_state})
    if problems:
        raise ValidationFailed(
            f"{len(problems)} problem(s); no patient was registered.", details=problems
        )
    return rows, seen
