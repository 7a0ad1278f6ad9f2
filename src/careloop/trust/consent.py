"""Consent by purpose: each a separate choice, with its history, and the national opt-out.

A patient agrees (or not) to four purposes, each recorded on its own:

- ``direct_care``: their own care;
- ``quality_improvement``: the warehouse, measures and the network's aggregates
  (improving care for everyone), and quality-improvement tests of CDS variants;
- ``research``: exports for research and research tests of CDS variants;
- ``recontact``: being contacted for anything other than their own care
  (invitations to research studies, reminders that are not part of care).

``patient.consent_state`` stays as a one-word summary (a preset such as
``improvement_and_research``, or ``custom``) so that imports and filters that
give a state keep working. Code elsewhere asks :func:`consent_allows` (one
patient) or :func:`consenting` (a query) rather than reading the summary.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import ColumnElement, select

from careloop.core.clock import utcnow
from careloop.core.errors import ErrorDetail, InputError, ValidationFailed
from careloop.store.database import Registry
from careloop.store.models import (
    CONSENT_PURPOSES,
    ConsentRecord,
    Patient,
    consent_summary,
)
from careloop.trust.audit import AuditEvent
from careloop.trust.patients import (
    CONSENT_METHODS,
    ConsentMethod,
    PatientView,
    _load,
    _site_code,
    _site_in_scope,
    _view,
)
from careloop.trust.principal import Principal
from careloop.trust.work import Work, record_events, unit_of_work

__all__ = [
    "OPT_OUT_COLUMNS",
    "OPT_OUT_PURPOSES",
    "PURPOSES",
    "OptOutReport",
    "Purpose",
    "PurposeChange",
    "consent_allows",
    "consenting",
    "import_opt_outs",
    "read_opt_out_list",
    "record_consent_effect",
    "record_consent_purpose",
]

Purpose = Literal["direct_care", "quality_improvement", "research", "recontact"]
PURPOSES: tuple[str, ...] = CONSENT_PURPOSES
"""Every purpose, in the order shown to people."""
OPT_OUT_PURPOSES: tuple[Purpose, ...] = ("research", "recontact")
"""What the national data opt-out turns off: research (and contact for it), not care or audit."""
OPT_OUT_COLUMNS = ("nhs_number", "local_id")
"""Columns an opt-out CSV may name the identifier in (the first present is used)."""
OPT_OUT_MAX_BYTES = 50_000_000


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValidationFailed(
            "The consent purpose is not known.",
            details=[ErrorDetail("purpose", f"use one of {', '.join(PURPOSES)}", purpose)],
        )


def consent_allows(facts: Any, purpose: str) -> bool:
    """Whether a patient's consent allows ``purpose``.

    Args:
        facts: A patient row (``consent_<purpose>`` attributes), a
            :class:`~careloop.trust.patients.PatientView` (its ``consent``), or
            a mapping with ``consent_<purpose>`` or ``<purpose>`` keys.
        purpose: One of :data:`PURPOSES`.

    Raises:
        InputError: The purpose is unknown, or ``facts`` say nothing about it
            (never read as a yes).
    """
    _check_purpose(purpose)
    key = f"consent_{purpose}"
    if isinstance(facts, Mapping):
        value = facts.get(key, facts.get(purpose))
    else:
        choices = getattr(facts, "consent", None)
        value = choices.get(purpose) if isinstance(choices, Mapping) else getattr(facts, key, None)
    if value is None:
        raise InputError(f"These patient facts say nothing about consent to {purpose}.")
    return bool(value)


def consenting(purpose: str) -> ColumnElement[bool]:
    """A query condition: the patient agrees to ``purpose`` (``select(Patient).where(...)``)."""
    _check_purpose(purpose)
    column: ColumnElement[bool] = getattr(Patient, f"consent_{purpose}").is_(True)
    return column


@dataclass(frozen=True)
class PurposeChange:
    """The outcome of asking to change one purpose."""

    patient: PatientView
    """The patient after the change (their purposes in ``patient.consent``)."""
    purpose: str
    given: bool
    """The choice asked for."""
    changed: bool
    """False when the patient had already made that choice: nothing was recorded."""


def _set_purposes(
    work: Work,
    patient: Patient,
    wanted: Mapping[str, bool],
    *,
    method: str,
    note: str | None,
    site_code: str,
) -> dict[str, list[bool]]:
    """Set purposes, one consent record per change and one audit entry; purpose → [old, new]."""
    before = patient.consent_choices()
    changes = {p: [before[p], g] for p, g in wanted.items() if before[p] != g}
    if not changes:
        return {}
    previous = patient.consent_state
    for purpose, (_old, new) in changes.items():
        setattr(patient, f"consent_{purpose}", new)
    summary = consent_summary(patient.consent_choices())
    patient.consent_state = summary
    now = utcnow()
    for purpose, (_old, new) in changes.items():
        work.session.add(
            ConsentRecord(
                site_id=patient.site_id,
                patient_id=patient.id,
                state=summary,
                purpose=purpose,
                given=new,
                method=method,
                recorded_by_user_id=work.principal.user_id,
                recorded_at=now,
                note=note,
            )
        )
    work.session.flush()
    work.audit(
        "update",
        "consent",
        patient=patient,
        site_code=site_code,
        reason=note,
        details={"from": previous, "to": summary, "method": method, "purposes": changes},
    )
    return changes


def record_consent_purpose(
    registry: Registry,
    principal: Principal,
    patient_id: int,
    purpose: Purpose,
    given: bool,
    *,
    method: ConsentMethod,
    note: str | None = None,
) -> PurposeChange:
    """Record one purpose's choice; the other purposes stay as they are.

    Who may: the care team of the patient's site, the patient for their own
    record, a carer for the records they are proxy for (``consent.update``).
    A choice the patient had already made is reported as unchanged and
    nothing is recorded; a change gets a consent record and an audit entry
    with the purpose and its old and new value.
    """
    _check_purpose(purpose)
    if method not in CONSENT_METHODS:
        raise ValidationFailed(
            "The consent is not valid.",
            details=[ErrorDetail("method", f"use one of {', '.join(CONSENT_METHODS)}", method)],
        )
    if not isinstance(given, bool):
        raise ValidationFailed(
            "The consent is not valid.",
            details=[ErrorDetail("given", "use true or false", str(given))],
        )
    with unit_of_work(registry, principal, "consent.update") as work:
        patient = _load(work, patient_id, "update", "consent")
        changes = _set_purposes(
            work,
            patient,
            {purpose: given},
            method=method,
            note=note,
            site_code=_site_code(work.session, patient.site_id),
        )
        return PurposeChange(_view(work.session, patient), purpose, given, bool(changes))


# ---------------------------------------------------------------- national opt-out


@dataclass(frozen=True)
class OptOutReport:
    """What importing a national opt-out list did at one site."""

    listed: int
    """Distinct identifiers in the file."""
    matched: int
    """Of those, patients of the site."""
    changed: int
    """Matched patients whose research or re-contact consent was turned off now."""
    already_off: int
    """Matched patients who had both off already (nothing recorded)."""
    not_found: int
    """Identifiers that match no patient of the site (never listed: they are not ours)."""


def _nhs_number_problem(value: str) -> str | None:
    """Why ``value`` is not a valid NHS number (10 digits, modulus 11 check digit), or None."""
    if len(value) != 10 or not value.isdigit():
        return "an NHS number has 10 digits (spaces allowed), e.g. 943 476 5919"
    total = sum(int(d) * w for d, w in zip(value[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    if check == 10 or check != int(value[9]):
        return "its check digit is wrong; copy the NHS number again"
    return None


def _normalised(identifier: str) -> str:
    """An identifier as matched: NHS numbers are written with or without spaces."""
    squeezed = identifier.replace(" ", "")
    return squeezed if squeezed.isdigit() else identifier.strip()


def read_opt_out_list(text: str, *, source: str) -> list[str]:
    """The identifiers of an opt-out list, normalised, in file order, without repeats.

    Two layouts: a CSV whose header has an ``nhs_number`` or ``local_id``
    column, or one identifier a line, which may end with a comma (the
    ``.dat`` files the NHS "Check for National Data Opt-outs" service takes
    and returns over MESH); blank lines and lines starting with ``#`` are
    skipped. NHS numbers (the ``nhs_number`` column, or a line of ten digits)
    must pass the modulus 11 check.

    Raises:
        ValidationFailed: Every bad row, located as ``source:row``; nothing is changed.
    """
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.startswith("#")), "")
    header = [h.strip().lower() for h in next(csv.reader([first]))] if first else []
    column = next((c for c in OPT_OUT_COLUMNS if c in header), None)
    if column is not None:
        reader = csv.DictReader(io.StringIO(text))
        reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
        rows = [
            (reader.line_num, (r.get(column) or "").strip())
            for r in reader
            if any((v or "").strip() for v in r.values() if isinstance(v, str))
        ]
    else:
        rows = [
            (n, ln.strip().removesuffix(",").strip())
            for n, ln in enumerate(lines, start=1)
            if ln.strip() and not ln.startswith("#")
        ]
    problems: list[ErrorDetail] = []
    found: list[str] = []
    for row, raw in rows:
        value = _normalised(raw)
        where = f"{source}:{row}"
        if column is None and "," in value:
            problems.append(
                ErrorDetail(
                    where,
                    "give one identifier a line, or a CSV with a column named "
                    + " or ".join(OPT_OUT_COLUMNS),
                    raw[:80],
                )
            )
        elif not value:
            problems.append(ErrorDetail(where, f"the {column} is empty", raw))
        elif column == "nhs_number" or (column is None and value.isdigit() and len(value) == 10):
            problem = _nhs_number_problem(value)
            if problem:
                problems.append(ErrorDetail(where, problem, raw))
            else:
                found.append(value)
        elif len(value) > 64:
            problems.append(ErrorDetail(where, "an identifier has at most 64 characters", raw[:80]))
        else:
            found.append(value)
    if problems:
        raise ValidationFailed(
            f"{len(problems)} problem(s) in {source}; no consent was changed.", details=problems
        )
    return list(dict.fromkeys(found))


def _read_list(path: Path | str) -> tuple[str, list[str]]:
    file = Path(path)
    try:
        if file.stat().st_size > OPT_OUT_MAX_BYTES:
            raise InputError(f"{file} is larger than {OPT_OUT_MAX_BYTES} bytes.")
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"There is no file {file}.") from None
    except UnicodeDecodeError:
        raise InputError(f"{file} is not UTF-8 text; save it as UTF-8 CSV or text.") from None
    return file.name, read_opt_out_list(text, source=file.name)


def import_opt_outs(
    registry: Registry,
    principal: Principal,
    path: Path | str,
    *,
    site: str,
    sent: Path | str | None = None,
) -> OptOutReport:
    """Honour a national data opt-out list at ``site``: research and re-contact off.

    ``path`` lists the people who have opted out. With ``sent``, ``path`` is
    instead the reply of the NHS "Check for National Data Opt-outs" service
    (the numbers that *may* be used) to the list ``sent`` to it: those sent
    and not returned have opted out.

    The list is matched against the site's patients' local ids (NHS numbers
    with or without spaces). Each matched patient who still agreed to research
    or re-contact gets those purposes turned off, recorded in their consent
    history with method ``national_opt_out`` and audited; direct care and
    quality improvement (local audit) stay as they are, as the opt-out does
    not cover them. Importing the same list again changes nothing. A bad file
    changes nothing. Identifiers that match no patient are counted, never
    shown or stored.
    """
    name, listed = _read_list(path)
    if sent is not None:
        sent_name, asked = _read_list(sent)
        cleared = set(listed)
        listed = [i for i in asked if i not in cleared]
        name = f"{sent_name} less {name}"
    elif not listed:
        raise InputError(f"{name} lists no one; give one identifier a line or a CSV column.")
    wanted = listed
    off: dict[str, bool] = dict.fromkeys(OPT_OUT_PURPOSES, False)
    with unit_of_work(registry, principal, "consent.update") as work:
        site_row = _site_in_scope(work, site)
        patients = {
            _normalised(p.local_id): p
            for p in work.session.scalars(select(Patient).where(Patient.site_id == site_row.id))
        }
        matched = [patients[i] for i in wanted if i in patients]
        changed = 0
        for patient in matched:
            if _set_purposes(
                work,
                patient,
                off,
                method="national_opt_out",
                note="National data opt-out",
                site_code=site_row.code,
            ):
                changed += 1
        report = OptOutReport(
            listed=len(wanted),
            matched=len(matched),
            changed=changed,
            already_off=len(matched) - changed,
            not_found=len(wanted) - len(matched),
        )
        work.audit(
            "import",
            "consent",
            site_code=site_row.code,
            details={"source": "national_opt_out", "file": name, **report.__dict__},
        )
        return report


def record_consent_effect(
    registry: Registry,
    principal: Principal,
    *,
    activity: str,
    purpose: str,
    kept_out: int,
    removed: list[int] | None = None,
    site_code: str | None = None,
) -> None:
    """Audit what consent did to one run of ``activity`` (a refresh, an export, an assignment).

    Args:
        activity: What ran, e.g. ``warehouse.refresh`` or ``export``.
        purpose: The purpose the run needed.
        kept_out: Patients left out because they do not agree to it.
        removed: Internal ids of patients taken out of data kept from earlier
            runs because their consent changed (no clinical data).
        site_code: The site, when the run was about one.
    """
    _check_purpose(purpose)
    details: dict[str, Any] = {"activity": activity, "purpose": purpose, "kept_out": kept_out}
    if removed is not None:
        details["removed_patient_ids"] = sorted(removed)
    record_events(
        registry,
        [
            AuditEvent(
                action="apply",
                category="consent",
                outcome="success",
                user_id=principal.user_id,
                user_email=principal.email,
                role=principal.role_label() or None,
                site_code=site_code,
                request_id=principal.context.request_id,
                client_addr=principal.context.client_addr,
                details=details,
            )
        ],
    )
