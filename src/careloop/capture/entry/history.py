"""The data history of a response: each change of each answer, when, by whom, old → new.

Like REDCap's data history. Every save on the entry pages, the API and PROM
links keeps a revision (:class:`~careloop.store.models.ResponseRevision`):
what the response held afterwards. The history compares each revision with
the one before. Changes from before revisions were kept, and changes by bulk
imports, come from the audit trail, which names the fields changed but never
their values: those show without their old and new values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from careloop.capture.answers import answer_text
from careloop.capture.entry.views import ResponseView, _patient, _response, _view
from careloop.capture.event_dates import event_date_field
from careloop.capture.forms import Form
from careloop.capture.forms_store import load_form_version
from careloop.core.clock import as_utc, utcnow
from careloop.store.database import Registry
from careloop.store.models import AuditEntry
from careloop.store.models.capture import Response, ResponseRevision
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

EVENT_DATE = "event_date"
"""The name a change of the response's visit (event) date goes by."""
STATUS = "status"
"""The name a change of the response's status goes by."""


@dataclass(frozen=True)
class FieldChange:
    """One answer changed by one save."""

    field: str
    """The field's name (:data:`EVENT_DATE` or :data:`STATUS` for those)."""
    label: str
    """The question as the form asks it."""
    old: str | None
    """The answer before, in words (empty: no answer); None when it was not kept."""
    new: str | None
    """The answer after, in words; None when it was not kept."""


@dataclass(frozen=True)
class Revision:
    """One save of a response and what it changed."""

    saved_at: datetime
    """When it was saved."""
    saved_by: str
    """Who saved it (an e-mail, or the patient through a PROM link)."""
    action: str
    """``created`` or ``changed``."""
    reason: str | None
    """The reason for change given, if any."""
    changes: tuple[FieldChange, ...]
    """The answers it changed, in form order."""
    values_kept: bool
    """Whether old and new values are known (False: from the audit trail, names only)."""


@dataclass(frozen=True)
class ResponseHistory:
    """A response, the form version it was entered on, and its changes, oldest first."""

    view: ResponseView
    form: Form
    revisions: tuple[Revision, ...]


def keep_revision(
    work: Work, row: Response, *, reason: str | None = None, baseline: bool = False
) -> None:
    """Keep what ``row`` holds now as a revision (after a save; or, ``baseline``, before one)."""
    work.session.add(
        ResponseRevision(
            site_id=row.site_id,
            patient_id=row.patient_id,
            response_id=row.id,
            version=row.version,
            event_date=row.event_date,
            status=row.status,
            values=dict(row.values),
            saved_at=utcnow(),
            saved_by=work.principal.email,
            reason=reason,
            baseline=baseline,
        )
    )


def keep_baseline(work: Work, row: Response) -> None:
    """Before a response changes: keep what it holds, unless its history already does."""
    kept = work.session.scalar(
        select(ResponseRevision.id).where(ResponseRevision.response_id == row.id).limit(1)
    )
    if kept is None:
        keep_revision(work, row, baseline=True)


def _who(email: str) -> str:
    return (
        "the patient or their carer (questionnaire link)"
        if email.startswith("prom-link:")
        else email
    )


def _label(form: Form, name: str) -> str:
    if name == EVENT_DATE:
        return "Visit date"
    if name == STATUS:
        return "Status"
    known = {f.name: f for f in form.fields}
    f = known.get(name)
    return (f.label or f.name) if f else name


def _words(form: Form, name: str, state: dict[str, Any]) -> str:
    known = {f.name: f for f in form.fields}
    value = state.get(name)
    if name in known:
        return answer_text(known[name], value)
    return "" if value is None else str(value)


def _state(revision: ResponseRevision) -> dict[str, Any]:
    return {**revision.values, EVENT_DATE: revision.event_date.isoformat(), STATUS: revision.status}


def _diff(form: Form, before: dict[str, Any], after: dict[str, Any]) -> tuple[FieldChange, ...]:
    order = {name: i for i, name in enumerate((EVENT_DATE, *form.field_names, STATUS))}
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    own = event_date_field(form)
    if own is not None and own in changed and after.get(own) == after.get(EVENT_DATE):
        changed.discard(EVENT_DATE)  # the form's visit date field says it already
    names = sorted(changed, key=lambda k: (order.get(k, len(order)), k))
    return tuple(
        FieldChange(k, _label(form, k), _words(form, k, before), _words(form, k, after))
        for k in names
    )


def _from_revisions(form: Form, rows: list[ResponseRevision]) -> list[Revision]:
    out: list[Revision] = []
    before: dict[str, Any] = {}
    for i, row in enumerate(rows):
        after = _state(row)
        if not row.baseline:
            out.append(
                Revision(
                    as_utc(row.saved_at),
                    _who(row.saved_by),
                    "created" if i == 0 else "changed",
                    row.reason,
                    _diff(form, before, after),
                    True,
                )
            )
        before = after
    return out


def _from_audit(work: Work, form: Form, row: Response, until: datetime | None) -> list[Revision]:
    """Saves the audit trail knows of (before ``until``, the first revision kept)."""
    out: list[Revision] = []
    entries = work.session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.patient_id == row.patient_id,
            AuditEntry.category == "clinical",
            AuditEntry.action.in_(("create", "update")),
            AuditEntry.outcome == "success",
        )
        .order_by(AuditEntry.seq)
    )
    for entry in entries:
        details = json.loads(entry.details or "{}")
        if details.get("response_id") != row.id:
            continue
        when = datetime.fromisoformat(entry.occurred_at)
        if until is not None and as_utc(when) >= until:
            break
        names = list(details.get("fields") or [])
        if "event_date" in details:
            names.insert(0, EVENT_DATE)
        if "status" in details and entry.action == "update":
            names.append(STATUS)
        out.append(
            Revision(
                as_utc(when),
                _who(entry.user_email or ""),
                "created" if entry.action == "create" else "changed",
                entry.reason,
                tuple(FieldChange(n, _label(form, n), None, None) for n in names),
                False,
            )
        )
    return out


def response_history(registry: Registry, principal: Principal, response_id: int) -> ResponseHistory:
    """A response with its data history (an audited read of that patient's record).

    Only for those who may read the patient's records (``record.read`` at the
    patient's site, or the patient and their carers); another site's response
    is not found.
    """
    with unit_of_work(registry, principal, "record.read") as work:
        work.expect("read", "clinical", details={"response_id": response_id, "history": True})
        row, definition = _response(work, response_id, None)
        version, form = load_form_version(work.session, row.form_version_id)
        patient = _patient(work, row.patient_id)
        view = _view(work, row, definition.name, version.version)
        kept = list(
            work.session.scalars(
                select(ResponseRevision)
                .where(ResponseRevision.response_id == row.id)
                .order_by(ResponseRevision.version, ResponseRevision.id)
            )
        )
        first_kept = as_utc(kept[0].saved_at) if kept else None
        revisions = _from_audit(work, form, row, first_kept) + _from_revisions(form, kept)
        work.audit(
            "read",
            "clinical",
            patient=patient,
            site_code=view.site,
            details={"form": definition.name, "response_id": row.id, "history": True},
        )
        return ResponseHistory(view, form, tuple(revisions))
