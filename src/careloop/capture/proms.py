"""PROMs through personal links: expiring, single-use, token-authenticated.

A member of the care team (or the patient or carer themselves) creates a link
for one patient and one patient-reported form. The link's secret is shown
once; only its SHA-256 is stored. Whoever opens the link sees the form (and
nothing about the patient); submitting it validates the answers like any
entry, saves them as a complete, *patient-entered* response of that patient
(dated today at the patient's site unless a date is given) and marks the link
used, in one transaction. A used, expired or unknown link is refused with a
plain message and changes nothing.

Patients and carers who log in fill PROMs through the ordinary entry
functions (:func:`careloop.capture.entry.create_response`), which mark their
responses as patient-entered too.

Audit: creating a link is one entry (``create``/``prom_link``); submitting
through it is one entry (``create``/``clinical``, ``details.via =
"prom_link"``) or, when refused, one entry with the outcome ``not_found``.
Opening a link reads no patient data and is not audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update

from careloop.capture.entry import ResponseView, check_values
from careloop.capture.entry.saving import _insert_response
from careloop.capture.entry.views import (
    _as_date,
    _check_contributor,
    _patient,
    _site_code,
    _view,
)
from careloop.capture.forms_store import load_form, other_form_values
from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import Conflict, InputError, NotFound
from careloop.core.i18n import N_
from careloop.core.ids import secret_token, sha256_hex
from careloop.store.database import Registry
from careloop.store.models import Site
from careloop.store.models.capture import FormDefinition, PromLink
from careloop.trust.audit import AuditEvent
from careloop.trust.principal import Grant, Principal, RequestContext
from careloop.trust.work import record_events, unit_of_work

__all__ = [
    "PromInvitation",
    "PromLinkCreated",
    "create_prom_link",
    "open_prom_link",
    "open_prom_link_by_key",
    "prom_link_key",
    "submit_prom_link",
    "submit_prom_link_by_key",
]

PROM_TOKEN_PREFIX = "prom"  # noqa: S105 - a prefix, not a secret
DEFAULT_LINK_HOURS = 7 * 24
MAX_LINK_HOURS = 90 * 24


@dataclass(frozen=True)
class PromLinkCreated:
    """A new PROM link. :attr:`token` is shown this once and never stored."""

    id: int
    """The link's id."""
    token: str
    """The secret; the patient's link is ``/prom/<token>``."""
    form: str
    """The patient-reported form it opens."""
    patient_id: int
    """The patient whose record it writes to."""
    expires_at: datetime
    """When it stops working (UTC)."""

    @property
    def path(self) -> str:
        """The link's path on the careloop server."""
        return f"/prom/{self.token}"


@dataclass(frozen=True)
class PromInvitation:
    """What a link holder sees: the form, never the patient's details."""

    form: str
    """The form's name."""
    title: str
    """The form's title."""
    form_version: str
    """The version the answers will be validated against."""
    definition: dict[str, Any]
    """The form's native definition (fields, choices, branching logic)."""
    expires_at: datetime
    """When the link stops working (UTC)."""


def create_prom_link(
    registry: Registry,
    principal: Principal,
    form: str,
    *,
    patient_id: int,
    expires_in_hours: int = DEFAULT_LINK_HOURS,
    note: str | None = None,
) -> PromLinkCreated:
    """Create a personal, single-use link for ``patient_id`` to fill ``form``.

    Raises:
        InputError: The form is not patient-reported, or the lifetime is out of range.
        NotFound: No such form, or no such patient that the principal can see.
    """
    if not 1 <= expires_in_hours <= MAX_LINK_HOURS:
        raise InputError(f"A PROM link lasts 1 to {MAX_LINK_HOURS} hours; got {expires_in_hours}.")
    with unit_of_work(registry, principal, "record.write") as work:
        work.expect("create", "prom_link", details={"patient_id": patient_id, "form": form})
        patient = _patient(work, patient_id)
        definition, _, _ = load_form(work.session, form)
        if not definition.patient_reported:
            raise InputError(
                f"Form {form!r} is not patient-reported; PROM links open patient-reported "
                "forms only (mark the form patient_reported in its dictionary)."
            )
        secret = secret_token(PROM_TOKEN_PREFIX)
        expires = utcnow() + timedelta(hours=expires_in_hours)
        link = PromLink(
            site_id=patient.site_id,
            patient_id=patient.id,
            token_hash=sha256_hex(secret),
            form_id=definition.id,
            expires_at=expires,
            created_by=principal.email,
            note=note,
        )
        work.session.add(link)
        work.session.flush()
        work.audit(
            "create",
            "prom_link",
            patient=patient,
            site_code=_site_code(work, patient.site_id),
            details={"form": definition.name, "link_id": link.id, "hours": expires_in_hours},
        )
        return PromLinkCreated(link.id, secret, definition.name, patient.id, expires)


@dataclass(frozen=True)
class _LinkFacts:
    id: int
    site_id: int
    site_code: str
    time_zone: str
    patient_id: int
    form: str

    def today(self) -> date:
        """Today at the patient's site (a PROM is dated as the patient lives it)."""
        try:
            return datetime.now(ZoneInfo(self.time_zone)).date()
        except (ZoneInfoNotFoundError, ValueError):
            return utcnow().date()


def _refused(why: str) -> NotFound:
    messages = {
        "unknown": N_(
            "This link is not valid. Check that you copied all of it, or ask "
            "your care team for a new one."
        ),
        "used": N_(
            "This link was already used. Each link works once. Ask your care "
            "team for a new one if you need to answer again."
        ),
        "expired": N_("This link has expired. Ask your care team for a new one."),
    }
    return NotFound(messages[why])


def prom_link_key(token: str) -> str:
    """The key a link is stored under: the SHA-256 of its secret, never the secret.

    The browser page swaps the secret for a short session that carries this key,
    so that the secret does not stay in the address bar or the browser history.
    """
    return sha256_hex(token.strip())


def _find_link(registry: Registry, key: str) -> tuple[_LinkFacts | None, str]:
    """The link stored under ``key`` and ``ok``, or None and why it is refused."""
    with registry.transaction() as session:
        # The link holder has no login: the token is what authenticates, so this
        # one lookup by hash runs unscoped; everything after runs in the link's scope.
        row = session.execute(
            select(PromLink, FormDefinition.name, Site.code, Site.time_zone)
            .join(FormDefinition, FormDefinition.id == PromLink.form_id)
            .join(Site, Site.id == PromLink.site_id)
            .where(PromLink.token_hash == key)
            .execution_options(careloop_unscoped=True)
        ).first()
        if row is None:
            return None, "unknown"
        link, form, site_code, time_zone = row
        facts = _LinkFacts(link.id, link.site_id, site_code, time_zone, link.patient_id, form)
        if link.used_at is not None:
            return facts, "used"
        if as_utc(link.expires_at) <= utcnow():
            return facts, "expired"
        return facts, "ok"


def _link_principal(facts: _LinkFacts, context: RequestContext | None) -> Principal:
    """The link holder acts as the patient, for this patient's record only."""
    return Principal(
        user_id=None,
        email=f"prom-link:{facts.id}",
        grants=(Grant("patient", facts.site_id, facts.site_code),),
        patient_id=facts.patient_id,
        context=context or RequestContext(),
    )


def open_prom_link(registry: Registry, token: str) -> PromInvitation:
    """The form a valid link opens (no patient data; not audited).

    Raises:
        NotFound: The link is unknown, used or expired (the message says which).
    """
    return open_prom_link_by_key(registry, prom_link_key(token))


def open_prom_link_by_key(registry: Registry, key: str) -> PromInvitation:
    """:func:`open_prom_link` for the link stored under ``key`` (:func:`prom_link_key`)."""
    facts, state = _find_link(registry, key)
    if facts is None or state != "ok":
        raise _refused(state)
    with registry.transaction() as session:
        definition, version, form = load_form(session, facts.form)
        link = session.scalar(
            select(PromLink)
            .where(PromLink.id == facts.id)
            .execution_options(careloop_unscoped=True)
        )
        assert link is not None
        return PromInvitation(
            definition.name,
            definition.title,
            version.version,
            form.to_dict(),
            as_utc(link.expires_at),
        )


def submit_prom_link(
    registry: Registry,
    token: str,
    *,
    values: Mapping[str, object],
    event_date: date | str | None = None,
    context: RequestContext | None = None,
) -> ResponseView:
    """Save the answers given through a link as a complete, patient-entered response.

    The link is marked used in the same transaction; a second submission (or
    a concurrent one) is refused and changes nothing.

    Raises:
        NotFound: The link is unknown, used or expired (audited as ``not_found``).
        ValidationFailed: The answers break the form's rules (the link stays usable).
        Conflict: The patient already has this form on that date.
    """
    return submit_prom_link_by_key(
        registry, prom_link_key(token), values=values, event_date=event_date, context=context
    )


def submit_prom_link_by_key(
    registry: Registry,
    key: str,
    *,
    values: Mapping[str, object],
    event_date: date | str | None = None,
    context: RequestContext | None = None,
) -> ResponseView:
    """:func:`submit_prom_link` for the link stored under ``key`` (:func:`prom_link_key`)."""
    facts, state = _find_link(registry, key)
    if facts is None or state != "ok":
        _audit_refused(registry, facts, state, context)
        raise _refused(state)
    day = _as_date(event_date) if event_date is not None else facts.today()
    principal = _link_principal(facts, context)
    with unit_of_work(registry, principal, "record.write") as work:
        work.expect("create", "clinical", details={"via": "prom_link", "link_id": facts.id})
        patient = _patient(work, facts.patient_id)
        definition, version, form_obj = load_form(work.session, facts.form)
        _check_contributor(work, definition)
        answers = other_form_values(work.session, form_obj, patient_id=patient.id, event_date=day)
        clean = check_values(form_obj, values, status="complete", context=answers)
        row = _insert_response(
            work,
            definition=definition,
            version=version,
            patient=patient,
            event_date=day,
            status="complete",
            values=clean,
            patient_entered=True,
        )
        claimed = work.session.execute(
            update(PromLink)
            .where(PromLink.id == facts.id, PromLink.used_at.is_(None))
            .values(used_at=utcnow(), response_id=row.id)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            raise Conflict(N_("This link was used a moment ago. Each link works once."))
        work.audit(
            "create",
            "clinical",
            patient=patient,
            site_code=facts.site_code,
            details={
                "form": definition.name,
                "form_version": version.version[:12],
                "response_id": row.id,
                "via": "prom_link",
                "link_id": facts.id,
                "fields": sorted(clean),
                "patient_entered": True,
            },
        )
        return _view(work, row, definition.name, version.version)


def _audit_refused(
    registry: Registry, facts: _LinkFacts | None, state: str, context: RequestContext | None
) -> None:
    """Audit a refused submission as ``not_found``, naming the link when it is known."""
    ctx = context or RequestContext()
    record_events(
        registry,
        [
            AuditEvent(
                action="create",
                category="clinical",
                outcome="not_found",
                user_email=f"prom-link:{facts.id}" if facts else "prom-link:unknown",
                site_code=facts.site_code if facts else None,
                patient_id=facts.patient_id if facts else None,
                request_id=ctx.request_id,
                client_addr=ctx.client_addr,
                details={"via": "prom_link", "refused": state},
            )
        ],
    )
