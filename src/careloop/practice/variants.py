"""Card variants allocated through careloop.analysis.trials, reproducibly, by clinician or patient.

A rule's ``variants.design`` is a :class:`~careloop.analysis.trials.TrialDesign`.
The first call for a unit (the clinician's ``userId`` or the patient's
``patientId``) takes the next position of the trial's sequence — a pure
function of the seed — and stores it; later calls for the same unit read the
stored arm. :func:`trial_allocator` rebuilds the trials module's
:class:`~careloop.analysis.trials.Allocator` from the stored rows, which
re-derives every arm from the seed and fails on a tampered record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from careloop.analysis.trials import Allocator, TrialDesign
from careloop.store.database import Registry
from careloop.store.models.knowledge import CdsVariantAssignment

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
