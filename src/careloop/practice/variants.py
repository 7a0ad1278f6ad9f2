"""Card variants allocated through careloop.analysis.trials, reproducibly, by clinician or patient.

A rule's ``variants.design`` is a :class:`~careloop.analysis.trials.TrialDesign`.
The first call for a unit (the clinician's ``userId`` or the patient's
``patientId``) takes the next position of the trial's sequence — a pure
function of the seed — and stores it; later calls for the same unit read the
stored arm. :func:`trial_allocator` rebuilds the trials module's
:class:`~careloop.analysis.trials.Allocator` from the stored rows, which
re-derives every arm from the seed and fails on a tampered record.

A trial that randomises **patients** allocates only a patient whose consent
covers the test's purpose (the deployment's ``consent_purpose``, which
follows from its learning cycle): the patient's own choice for that purpose,
quality improvement or research (:mod:`careloop.trust.consent`). :func:`patient_consent` finds the
calling site's patient by the EHR's identifiers (the prefetched Patient's
MRN, or the context's ``patientId``) and reads their consent; a patient
without it, or not in careloop's registry, gets usual care: no variant and
no allocation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from careloop.analysis.trials import Allocator, TrialDesign
from careloop.fhir.mapping import patient_fields
from careloop.knowledge.trial_cover import CONSENT_PURPOSES
from careloop.store.database import Registry
from careloop.store.models import Patient, Site
from careloop.store.models.knowledge import CdsVariantAssignment
from careloop.store.scoping import Scope, set_scope
from careloop.trust.consent import consent_allows

_ATTEMPTS = 8


def unit_of(design: TrialDesign, context: Mapping[str, Any]) -> str | None:
    """The randomised unit's id in a hook context (None when the context lacks it)."""
    field = {"clinician": "userId", "patient": "patientId"}.get(design.unit)
    value = context.get(field) if field else None
    return value if isinstance(value, str) and value else None


def allocate(registry: Registry, design: TrialDesign, unit_id: str, *, ko_identifier: str) -> str:
    """The arm of ``unit_id`` in ``design``: stored, or the next of the seeded sequence."""
    for _ in range(_ATTEMPTS):
        try:
            with registry.transaction() as session:
                arm = session.scalar(
                    select(CdsVariantAssignment.arm).where(
                        CdsVariantAssignment.trial == design.name,
                        CdsVariantAssignment.unit_id == unit_id,
                    )
                )
                if arm is not None:
                    return arm
                position = session.scalar(
                    select(func.count())
                    .select_from(CdsVariantAssignment)
                    .where(CdsVariantAssignment.trial == design.name)
                )
                position = int(position or 0)
                arm = design.sequence(position + 1)[position]
                session.add(
                    CdsVariantAssignment(
                        trial=design.name,
                        ko_identifier=ko_identifier,
                        unit_id=unit_id,
                        stratum="",
                        position=position,
                        arm=arm,
                    )
                )
            return arm
        except IntegrityError:
            continue  # another worker took this position or this unit: read again
    raise RuntimeError(f"Could not allocate {unit_id!r} in trial {design.name!r}.")


def trial_allocator(registry: Registry, design: TrialDesign) -> Allocator:
    """The trial's allocations as the trials module's Allocator (checked against the seed)."""
    with registry.transaction() as session:
        rows = session.scalars(
            select(CdsVariantAssignment)
            .where(CdsVariantAssignment.trial == design.name)
            .order_by(CdsVariantAssignment.position)
        ).all()
        record = {
            "version": 1,
            "design": design.to_dict(),
            "assignments": [
                {"unit_id": r.unit_id, "arm": r.arm, "stratum": r.stratum, "position": r.position}
                for r in rows
            ],
        }
    return Allocator.from_dict(record)


@dataclass(frozen=True)
class ConsentCheck:
    """Whether a patient's consent covers a randomised test, and which patient it was."""

    allowed: bool
    reason: str
    """In words: whose consent, in which state, for which purpose."""
    patient_id: int | None = None
    """careloop's patient (None when the registry has no such patient at the site)."""
    pseudo_id: str | None = None
    consent_state: str | None = None


def patient_local_ids(context: Mapping[str, Any], prefetch: Mapping[str, Any]) -> tuple[str, ...]:
    """The identifiers careloop may know the call's patient by: the MRN of the prefetched
    Patient (careloop's ``local_id``, as the FHIR import keeps it), then ``patientId``."""
    patient_id = context.get("patientId")
    found: list[str] = []
    for value in prefetch.values():
        if not (isinstance(value, Mapping) and value.get("resourceType") == "Patient"):
            continue
        if patient_id is not None and value.get("id") not in (None, patient_id):
            continue
        try:
            found.append(patient_fields(value).local_id)
        except (AttributeError, KeyError, TypeError, ValueError):
            continue  # an EHR's malformed Patient: fall back on patientId
    if isinstance(patient_id, str) and patient_id:
        found.append(patient_id)
    return tuple(dict.fromkeys(found))


def patient_consent(
    registry: Registry,
    local_ids: Sequence[str],
    *,
    site_code: str | None,
    consent_purpose: str | None,
) -> ConsentCheck:
    """Whether the patient known by ``local_ids`` at ``site_code`` consents to the purpose.

    A deployment recorded before purposes were kept (None) is held to the
    research purpose. No patient, or two patients the identifiers could be
    (a client with no site), is no consent on record.
    """
    purpose = consent_purpose or "research"
    if purpose not in CONSENT_PURPOSES:
        return ConsentCheck(
            False, f"A test under {purpose!r} has no consent purpose careloop knows."
        )
    column = getattr(Patient, f"consent_{purpose}")
    if not local_ids:
        return ConsentCheck(False, "The call names no patient, so no consent is on record.")
    with registry.transaction() as session:
        # The calling client's site's patients only (a client with no site serves them all);
        # the session is scoped so, as every read of patients is.
        site_ids = (
            tuple(session.scalars(select(Site.id).where(Site.code == site_code)))
            if site_code is not None
            else None
        )
        set_scope(session, Scope(site_ids=site_ids))
        query = (
            select(Patient.id, Patient.pseudo_id, Patient.consent_state, Site.code, column)
            .join(Site, Site.id == Patient.site_id)
            .where(Patient.local_id.in_(list(local_ids)))
        )
        found = {row[0]: row for row in session.execute(query).all()}
    if len(found) != 1:
        why = "no patient" if not found else f"{len(found)} patients"
        return ConsentCheck(
            False,
            f"careloop's registry has {why} with these identifiers"
            f"{f' at site {site_code}' if site_code else ''}, so no consent for {purpose} is "
            "on record.",
        )
    ((pid, pseudo, state, site, given),) = found.values()
    allowed = consent_allows({purpose: given}, purpose)
    return ConsentCheck(
        allowed,
        f"Patient {pseudo} at {site} is {state}: "
        f"{'consent' if allowed else 'no consent'} for {purpose}.",
        pid,
        pseudo,
        state,
    )
