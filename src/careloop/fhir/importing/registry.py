"""The registry side of a FHIR import: the site, patients and consent, questionnaire responses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.capture.entry import ResponseToSave, save_responses
from careloop.capture.fhir_responses import (
    REPEAT_INSTANCE_EXTENSION,
    load_response_form,
    response_from_fhir,
)
from careloop.capture.forms import Form
from careloop.core.clock import utcnow
from careloop.core.errors import (
    ErrorDetail,
    InputError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from careloop.core.ids import pseudonym
from careloop.fhir.importing.plan import (
    RESPONSE_TYPE,
    _Checked,
    _FormAnswer,
    _Plan,
)
from careloop.fhir.mapping import (
    ConsentState,
    PatientFields,
    patient_fields,
    reference_key,
)
from careloop.store.models import ConsentRecord, Patient, Site
from careloop.trust.audit import AuditEvent, append_many
from careloop.trust.principal import Principal
from careloop.trust.work import Work

# ---------------------------------------------------------------- the registry


def _target_site(work: Work, principal: Principal, code: str | None) -> Site:
    sites = list(work.session.scalars(select(Site).order_by(Site.code)))
    if code is None:
        if len(sites) != 1:
            raise InputError(
                f"This installation has {len(sites)} sites "
                f"({', '.join(s.code for s in sites) or 'none'}); say which one the "
                "patients belong to with --site."
            )
        chosen = sites[0]
    else:
        found = [s for s in sites if s.code == code.strip().upper()]
        if not found:
            raise NotFound(f"There is no site with code {code!r}.")
        chosen = found[0]
    if not work.scope.allows_site(chosen.id) or work.scope.patient_ids is not None:
        raise NotFound(f"There is no site with code {chosen.code!r} whose patients you can add.")
    write = principal.scope_for("record.write")
    if not write.allows_site(chosen.id) or write.patient_ids is not None:
        raise PermissionDenied(
            f"Importing clinical data needs record.write at {chosen.code}; your roles "
            f"({principal.role_label() or 'none'}) do not give it."
        )
    return chosen


def _read_responses(work: Work, site: Site, plan: _Plan) -> None:
    """Read each QuestionnaireResponse against its registered form and find its patient.

    Problems go to ``plan.rejected`` (located at the resource's FHIR paths);
    the rest to ``plan.form_answers``. Nothing is written here.
    """
    if not plan.responses:
        return
    registry_ids = _registry_patients(
        work, site, [e for e in plan.responses if e.patient_key is None]
    )
    seen: dict[tuple[str | int, str, date, str, int], str] = {}
    forms: dict[str, Form] = {}
    for entry in plan.responses:
        item = entry.item
        if not item.resource.get("questionnaire"):
            # Valid FHIR (the element is optional), but nothing says which form the
            # answers belong to: left out and counted, as other unmapped resources are.
            why = "names no Questionnaire, so careloop cannot tell which form it answers"
            plan.skipped[(RESPONSE_TYPE, why)] = plan.skipped.get((RESPONSE_TYPE, why), 0) + 1
            continue
        try:
            canonical = str(item.resource.get("questionnaire"))
            form = forms.get(canonical)
            if form is None:
                _, _, form = load_response_form(work.session, item.resource, location=item.location)
                forms[canonical] = form
            response = response_from_fhir(item.resource, form, location=item.location)
        except ValidationFailed as exc:
            plan.rejected.extend(exc.details)
            continue
        patient_id = registry_ids.get(id(entry))
        owner: str | int | None = entry.patient_key or patient_id
        if owner is None:
            subject = item.resource.get("subject") or {}
            named = subject.get("reference") or (subject.get("identifier") or {}).get("value")
            plan.rejected.append(
                ErrorDetail(
                    f"{item.location}: {RESPONSE_TYPE}.subject",
                    f"refers to patient {named}, which is not in this import nor a patient of "
                    f"site {site.code} (import the Patient with it, or register the patient)",
                    named,
                )
            )
            continue
        key = (
            owner,
            response.form,
            response.event_date,
            response.event_name,
            response.repeat_instance,
        )
        if key in seen:
            plan.rejected.append(
                ErrorDetail(
                    f"{item.location}: {RESPONSE_TYPE}",
                    f"a second response of this patient to form {response.form!r} on "
                    f"{response.event_date.isoformat()} (also at {seen[key]}); careloop keeps "
                    "one per patient, form and event date (and REDCap event and repeat "
                    "instance: give a second one the repeat-instance extension "
                    f"{REPEAT_INSTANCE_EXTENSION})",
                )
            )
            continue
        seen[key] = item.location
        plan.form_answers.append(_FormAnswer(item, response, entry.patient_key, patient_id))


def _registry_patients(work: Work, site: Site, entries: list[_Checked]) -> dict[int, int]:
    """Registry patient id of each response whose subject the import does not hold.

    ``subject.reference`` ``Patient/<pseudonym>`` (what careloop exports), else
    ``subject.identifier.value`` as the local id (MRN), at the import's site.
    """
    pseudonyms: dict[int, str] = {}
    local_ids: dict[int, str] = {}
    for entry in entries:
        subject = entry.item.resource.get("subject") or {}
        ref = reference_key(subject)
        if ref and ref.startswith("Patient/"):
            pseudonyms[id(entry)] = ref.removeprefix("Patient/")
        value = (subject.get("identifier") or {}).get("value")
        if value:
            local_ids[id(entry)] = str(value)
    by_pseudonym: dict[str, int] = {}
    by_local_id: dict[str, int] = {}
    wanted_p, wanted_l = sorted(set(pseudonyms.values())), sorted(set(local_ids.values()))
    for start in range(0, max(len(wanted_p), len(wanted_l)), 500):
        chunk_p, chunk_l = wanted_p[start : start + 500], wanted_l[start : start + 500]
        for pid, pseudo, local_id in work.session.execute(
            select(Patient.id, Patient.pseudo_id, Patient.local_id).where(
                Patient.site_id == site.id,
                Patient.pseudo_id.in_(chunk_p) | Patient.local_id.in_(chunk_l),
            )
        ):
            by_pseudonym[pseudo] = pid
            by_local_id[local_id] = pid
    found: dict[int, int] = {}
    for entry in entries:
        key = id(entry)
        match = by_pseudonym.get(pseudonyms.get(key, "")) or by_local_id.get(local_ids.get(key, ""))
        if match is not None:
            found[key] = match
    return found


def _save_responses(
    work: Work, plan: _Plan, persons: dict[str, _Person], path: Path
) -> dict[str, int]:
    """Create or replace the form responses (capture's rules, audit entry each), in bulk."""
    ids = {
        a.registry_patient_id if a.patient_key is None else persons[a.patient_key].person_id
        for a in plan.form_answers
    }
    patients: dict[int, Patient] = {}
    wanted = sorted(i for i in ids if i is not None)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        patients.update(
            (p.id, p) for p in work.session.scalars(select(Patient).where(Patient.id.in_(chunk)))
        )
    items: list[ResponseToSave] = []
    for answer in plan.form_answers:
        pid = (
            persons[answer.patient_key].person_id
            if answer.patient_key is not None
            else answer.registry_patient_id
        )
        patient = patients.get(pid) if pid is not None else None
        if patient is None:  # pragma: no cover - found in this transaction
            raise NotFound(f"There is no patient {pid}.")
        r = answer.response
        items.append(
            ResponseToSave(
                r.form,
                patient,
                r.event_date,
                r.values,
                r.status,
                version=r.form_version,
                patient_entered=r.patient_entered,
                event_name=r.event_name,
                repeat_instance=r.repeat_instance,
                location=f"{answer.item.location}: QuestionnaireResponse",
            )
        )
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for saved in save_responses(
        work, items, reason=f"FHIR import of {path.name}", via="fhir-import"
    ):
        counts[saved.outcome] += 1
    return counts


@dataclass(frozen=True)
class _Person:
    person_id: int
    pseudo_id: str
    birth_date: date | None
    sex: str
    consent_state: str
    quality_improvement: bool
    """Whether the patient agrees to quality improvement (the warehouse's purpose)."""


def _upsert_patients(
    work: Work, default_consent: ConsentState, site: Site, plan: _Plan
) -> tuple[dict[str, _Person], int, int]:
    """Register new patients, update known ones (by MRN); person per patient key."""
    session = work.session
    unique = {f"Patient/{e.item.resource['id']}": e for e in plan.patients.values()}
    fields = {key: patient_fields(e.item.resource) for key, e in unique.items()}
    local_ids = [f.local_id for f in fields.values()]
    existing = _existing_patients(session, site, local_ids)
    # New patients are added together and flushed once (ids for their consent records
    # and audit entries); the audit entries go in with one multi-row INSERT.
    new: dict[str, tuple[Patient, bool]] = {}
    records: list[ConsentRecord] = []
    events: list[AuditEvent] = []
    updated = 0
    for key, f in fields.items():
        wanted_consent = plan.consents.get(key)
        patient = existing.get(f.local_id)
        if patient is None:
            patient = Patient(
                site_id=site.id,
                local_id=f.local_id,
                pseudo_id=pseudonym(),
                given_name=f.given_name,
                family_name=f.family_name,
                birth_date=f.birth_date,
                sex=f.sex,
                consent_state=wanted_consent or default_consent,
            )
            existing[f.local_id] = patient
            new[key] = (patient, wanted_consent is not None)
            continue
        if _update_patient(work, site, patient, f, wanted_consent, records, events):
            updated += 1
    session.add_all([patient for patient, _ in new.values()])
    session.flush()
    for patient, from_fhir in new.values():
        records.append(
            ConsentRecord(
                site_id=site.id,
                patient_id=patient.id,
                state=patient.consent_state,
                method="fhir" if from_fhir else "default",
                recorded_by_user_id=work.principal.user_id,
            )
        )
        events.append(
            work.event(
                "create",
                "demographics",
                patient=patient,
                site_code=site.code,
                details={"source": "fhir"},
            )
        )
    session.add_all(records)
    session.flush()
    append_many(session, events)
    persons = {
        key: _Person(
            p.id, p.pseudo_id, p.birth_date, p.sex, p.consent_state, p.consent_quality_improvement
        )
        for key, p in ((key, existing[f.local_id]) for key, f in fields.items())
    }
    return persons, len(new), updated


def _existing_patients(session: Session, site: Site, local_ids: list[str]) -> dict[str, Patient]:
    """The site's patients with these local ids (MRNs), by local id."""
    existing: dict[str, Patient] = {}
    for start in range(0, len(local_ids), 500):
        chunk = local_ids[start : start + 500]
        for p in session.scalars(
            select(Patient).where(Patient.site_id == site.id, Patient.local_id.in_(chunk))
        ):
            existing[p.local_id] = p
    return existing


def _update_patient(
    work: Work,
    site: Site,
    patient: Patient,
    f: PatientFields,
    wanted_consent: ConsentState | None,
    records: list[ConsentRecord],
    events: list[AuditEvent],
) -> bool:
    """Apply the resource's demographics and consent to a known patient; True if changed.

    The consent record and the audit events of the changes are appended to
    ``records`` and ``events``.
    """
    changed = [
        name
        for name in ("given_name", "family_name", "birth_date", "sex")
        if getattr(patient, name) != getattr(f, name)
    ]
    for name in changed:
        setattr(patient, name, getattr(f, name))
    consent_changed = bool(wanted_consent) and wanted_consent != patient.consent_state
    if consent_changed:
        assert wanted_consent is not None
        events.append(
            work.event(
                "update",
                "consent",
                patient=patient,
                site_code=site.code,
                details={"from": patient.consent_state, "to": wanted_consent, "method": "fhir"},
            )
        )
        patient.consent_state = wanted_consent
        records.append(
            ConsentRecord(
                site_id=site.id,
                patient_id=patient.id,
                state=wanted_consent,
                method="fhir",
                recorded_by_user_id=work.principal.user_id,
                recorded_at=utcnow(),
            )
        )
    if changed:
        events.append(
            work.event(
                "update",
                "demographics",
                patient=patient,
                site_code=site.code,
                reason="FHIR import",
                details={"fields": changed, "source": "fhir"},
            )
        )
    return bool(changed or consent_changed)
