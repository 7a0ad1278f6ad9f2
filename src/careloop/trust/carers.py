"""Carers of a patient: what each may do (scopes), granted and taken back, and the hand-over.

A carer's link to a patient holds scopes (careloop.trust.policy.CARER_SCOPES):
``fill_forms``, ``see_results`` and ``manage_consent``. Who may change them
(:func:`set_carer_scopes`) or remove a carer (:func:`end_carer_link`):

- the patient themself, on their own record;
- a guardian: a carer holding ``manage_consent`` while the patient is a child
  (under ``CARELOOP_HANDOVER_AGE``);
- the care team of the patient's site (and the operator at the command line).

Anyone else is refused (403, or 404 for a record they cannot reach at all),
audited, and nothing changes. Every change is audited with the old and new
scopes and kept in ``carer_scope_change``, which the portal shows.

:func:`run_handover` is the age job: links of young people past the hand-over
age whose scopes were set while they were children are reduced to none, until
the young person grants them again. The rule itself is applied whenever a
carer signs in (careloop.trust.handover), so the job only writes it down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.core.clock import utcnow
from careloop.core.errors import ErrorDetail, NotFound, PermissionDenied, ValidationFailed
from careloop.store.database import Registry
from careloop.store.models import CarerLink, CarerScopeChange, Patient, Site, User
from careloop.trust.handover import (
    DEFAULT_HANDOVER_AGE,
    effective_scopes,
    format_scopes,
    handover_date,
    is_child,
    parse_scopes,
)
from careloop.trust.identity import site_by_code
from careloop.trust.policy import CARER_SCOPES, CarerScope
from careloop.trust.principal import Principal
from careloop.trust.work import Work, unit_of_work

__all__ = [
    "CarerView",
    "CarersOfPatient",
    "HandoverLapse",
    "HandoverResult",
    "ScopeChange",
    "YoungPerson",
    "check_scopes",
    "end_carer_link",
    "list_carers",
    "run_handover",
    "set_carer_scopes",
]


@dataclass(frozen=True)
class ScopeChange:
    """One change of a carer's scopes, for the history."""

    change: str
    """``changed``, ``ended`` or ``handover``."""
    old_scopes: tuple[str, ...]
    new_scopes: tuple[str, ...]
    changed_by: str
    """An e-mail, ``cli:<login>``, or ``handover`` for the age job."""
    changed_at: datetime


@dataclass(frozen=True)
class CarerView:
    """One carer of a patient and what they may do today."""

    link_id: int
    patient_id: int
    email: str
    name: str
    """The carer's display name (their e-mail when they gave none)."""
    relationship: str
    scopes: tuple[str, ...]
    """What the carer may do today (after the hand-over rule)."""
    lapsed: bool
    """Scopes were set while the patient was a child and lapsed at the hand-over age."""
    set_at: datetime
    set_by: str
    history: tuple[ScopeChange, ...]
    """Changes, oldest first."""


@dataclass(frozen=True)
class CarersOfPatient:
    """A patient's carers as the caller may see them, and what the caller may do."""

    patient_id: int
    carers: tuple[CarerView, ...]
    """Every live link for the patient, the care team and a guardian; a carer's own only."""
    may_manage: bool
    """The caller may change scopes and remove carers (patient, guardian, care team)."""
    is_child: bool
    """The patient is under the hand-over age today."""
    handed_over: bool
    """The patient has reached the hand-over age (their birth date is recorded)."""


@dataclass(frozen=True)
class HandoverLapse:
    """A link whose scopes lapsed at the young person's hand-over age."""

    link_id: int
    patient_id: int
    site: str
    carer_email: str
    old_scopes: tuple[str, ...]


@dataclass(frozen=True)
class YoungPerson:
    """A young person past the hand-over age with carers and no account (for staff only)."""

    patient_id: int
    site: str
    local_id: str
    name: str
    handover_date: date


@dataclass(frozen=True)
class HandoverResult:
    """What the hand-over job did (or, with ``dry_run``, would do)."""

    lapsed: tuple[HandoverLapse, ...]
    without_account: tuple[YoungPerson, ...]
    dry_run: bool


def check_scopes(scopes: Iterable[str], *, field: str = "scopes") -> frozenset[CarerScope]:
    """The scopes given, or ValidationFailed naming each unknown one and the choices."""
    given = [s.strip() for s in scopes if s.strip()]
    unknown = [s for s in given if s not in CARER_SCOPES]
    if unknown:
        raise ValidationFailed(
            f"Not a carer scope: {', '.join(repr(s) for s in unknown)}.",
            details=[
                ErrorDetail(field, f"use one of {', '.join(CARER_SCOPES)}", s) for s in unknown
            ],
        )
    return frozenset(s for s in CARER_SCOPES if s in given)


def _site_code(session: Session, site_id: int) -> str:
    return session.scalars(select(Site.code).where(Site.id == site_id)).one()


def _today(now: datetime | None) -> tuple[datetime, date]:
    moment = now or utcnow()
    return moment, moment.date()


def _is_care_team(work: Work) -> bool:
    # A scope without a patient restriction comes from a site role (or the operator).
    return work.scope.patient_ids is None


def _may_manage(work: Work, patient: Patient, today: date, handover_age: int) -> tuple[bool, str]:
    """Whether the caller may change this patient's carers, and how they do (for the audit)."""
    principal = work.principal
    if _is_care_team(work):
        return True, "care_team"
    if principal.patient_id == patient.id:
        return True, "patient"
    proxy = principal.proxy_for(patient.id)
    if (
        proxy is not None
        and "manage_consent" in proxy.scopes
        and is_child(patient.birth_date, today, handover_age)
    ):
        return True, "guardian"
    return False, "carer"


def _history(session: Session, link_ids: list[int]) -> dict[int, list[ScopeChange]]:
    history: dict[int, list[ScopeChange]] = {i: [] for i in link_ids}
    if not link_ids:
        return history
    rows = session.scalars(
        select(CarerScopeChange)
        .where(CarerScopeChange.carer_link_id.in_(link_ids))
        .order_by(CarerScopeChange.id)
    )
    for row in rows:
        history[row.carer_link_id].append(
            ScopeChange(
                row.change,
                tuple(sorted(parse_scopes(row.old_scopes), key=CARER_SCOPES.index)),
                tuple(sorted(parse_scopes(row.new_scopes), key=CARER_SCOPES.index)),
                row.changed_by,
                row.changed_at,
            )
        )
    return history


def _ordered(scopes: Iterable[str]) -> tuple[str, ...]:
    chosen = set(scopes)
    return tuple(s for s in CARER_SCOPES if s in chosen)


def _views(
    session: Session,
    patient: Patient,
    links: list[tuple[CarerLink, User]],
    today: date,
    handover_age: int,
) -> tuple[CarerView, ...]:
    history = _history(session, [link.id for link, _ in links])
    views = []
    for link, user in links:
        stored = parse_scopes(link.scopes)
        held = effective_scopes(
            stored,
            set_at=link.scopes_set_at,
            birth_date=patient.birth_date,
            today=today,
            handover_age=handover_age,
        )
        views.append(
            CarerView(
                link_id=link.id,
                patient_id=patient.id,
                email=user.email,
                name=user.display_name or user.email,
                relationship=link.relationship_to_patient,
                scopes=_ordered(held),
                lapsed=held != stored,
                set_at=link.scopes_set_at,
                set_by=link.scopes_set_by,
                history=tuple(history[link.id]),
            )
        )
    return tuple(views)


def _live_links(session: Session, patient_id: int) -> list[tuple[CarerLink, User]]:
    rows = session.execute(
        select(CarerLink, User)
        .join(User, User.id == CarerLink.carer_user_id)
        .where(CarerLink.patient_id == patient_id, CarerLink.revoked_at.is_(None))
        .order_by(User.display_name, User.email)
    ).all()
    return [(link, user) for link, user in rows]


def list_carers(
    registry: Registry,
    principal: Principal,
    patient_id: int,
    *,
    handover_age: int = DEFAULT_HANDOVER_AGE,
    now: datetime | None = None,
) -> CarersOfPatient:
    """A patient's carers, what each may do and its history (audited read).

    The patient, a guardian and the care team see every carer; any other
    carer of the patient sees their own link only.
    """
    _, today = _today(now)
    with unit_of_work(registry, principal, "patient.read") as work:
        work.expect("read", "proxy", details={"patient_id": patient_id})
        patient = work.session.get(Patient, patient_id)
        if patient is None:
            raise NotFound(f"There is no patient {patient_id} that you can see.")
        manage, _how = _may_manage(work, patient, today, handover_age)
        links = _live_links(work.session, patient.id)
        if not manage:
            links = [(link, user) for link, user in links if user.id == principal.user_id]
        carers = _views(work.session, patient, links, today, handover_age)
        work.audit(
            "read",
            "proxy",
            patient=patient,
            site_code=_site_code(work.session, patient.site_id),
            details={"carers": len(carers)},
        )
        return CarersOfPatient(
            patient_id=patient.id,
            carers=carers,
            may_manage=manage,
            is_child=is_child(patient.birth_date, today, handover_age),
            handed_over=patient.birth_date is not None
            and handover_date(patient.birth_date, handover_age) <= today,
        )


def _load_link_to_manage(
    work: Work, link_id: int, today: date, handover_age: int, what: str
) -> tuple[CarerLink, Patient, User]:
    work.expect("privilege_change", "proxy", details={"carer_link_id": link_id, "change": what})
    link = work.session.get(CarerLink, link_id)
    patient = work.session.get(Patient, link.patient_id) if link is not None else None
    if link is None or patient is None or link.revoked_at is not None:
        raise NotFound(f"There is no carer link {link_id} that you can change.")
    manage, _how = _may_manage(work, patient, today, handover_age)
    if not manage:
        raise PermissionDenied(
            "Only the patient, a parent or guardian who manages consent for a child, "
            "or the care team may change what a carer can do."
        )
    user = work.session.get(User, link.carer_user_id)
    assert user is not None  # the link's foreign key cascades with the user
    return link, patient, user


def set_carer_scopes(
    registry: Registry,
    principal: Principal,
    link_id: int,
    scopes: Iterable[str],
    *,
    handover_age: int = DEFAULT_HANDOVER_AGE,
    now: datetime | None = None,
) -> CarerView:
    """Set what a carer may do for a patient (exactly ``scopes``); audited with old and new.

    Raises:
        ValidationFailed: a scope is not one of CARER_SCOPES (nothing changes).
        PermissionDenied: the caller is not the patient, a guardian or the care team.
        NotFound: no live link ``link_id`` the caller can reach.
    """
    wanted = check_scopes(scopes)
    moment, today = _today(now)
    # consent.update: the care team at the site, the patient on their own record, a carer
    # holding manage_consent; who among them may manage carers is decided below.
    with unit_of_work(registry, principal, "consent.update") as work:
        link, patient, carer = _load_link_to_manage(work, link_id, today, handover_age, "scopes")
        stored = parse_scopes(link.scopes)
        held = effective_scopes(
            stored,
            set_at=link.scopes_set_at,
            birth_date=patient.birth_date,
            today=today,
            handover_age=handover_age,
        )
        if wanted != held or stored != held:
            _change_scopes(
                work,
                link,
                patient,
                carer,
                format_scopes(wanted),
                change="changed",
                old=format_scopes(held),
                at=moment,
                by=principal.email,
            )
        return _views(work.session, patient, [(link, carer)], today, handover_age)[0]


def end_carer_link(
    registry: Registry,
    principal: Principal,
    link_id: int,
    *,
    handover_age: int = DEFAULT_HANDOVER_AGE,
    now: datetime | None = None,
) -> int:
    """Remove a carer from a patient's record (the history stays); audited.

    Returns the patient's id.

    Raises PermissionDenied or NotFound as :func:`set_carer_scopes` does.
    """
    moment, today = _today(now)
    with unit_of_work(registry, principal, "consent.update") as work:
        link, patient, carer = _load_link_to_manage(work, link_id, today, handover_age, "end")
        link.revoked_at = moment
        _change_scopes(
            work,
            link,
            patient,
            carer,
            "",
            change="ended",
            old=link.scopes,
            at=moment,
            by=principal.email,
        )
        return patient.id


def _change_scopes(
    work: Work,
    link: CarerLink,
    patient: Patient,
    carer: User,
    scopes: str,
    *,
    change: str,
    old: str,
    at: datetime,
    by: str,
) -> None:
    """Store the link's new scopes with who set them and when; keep the change and audit it."""
    link.scopes, link.scopes_set_at, link.scopes_set_by = scopes, at, by
    work.session.add(
        CarerScopeChange(
            site_id=link.site_id,
            patient_id=link.patient_id,
            carer_link_id=link.id,
            change=change,
            old_scopes=old,
            new_scopes=scopes,
            changed_by=by,
            changed_at=at,
        )
    )
    work.session.flush()
    work.audit(
        "privilege_change",
        "proxy",
        patient=patient,
        site_code=_site_code(work.session, patient.site_id),
        details={
            "carer": carer.email,
            "carer_link_id": link.id,
            "change": change,
            "from": list(_ordered(parse_scopes(old))),
            "to": list(_ordered(parse_scopes(scopes))),
        },
    )


def _lapse(work: Work, link: CarerLink, patient: Patient, carer: User, moment: datetime) -> None:
    _change_scopes(
        work, link, patient, carer, "", change="handover", old=link.scopes, at=moment, by="handover"
    )


def _without_account(
    work: Work, handed_over: dict[int, Patient], handover_age: int
) -> list[YoungPerson]:
    """Of the young people handed over, those with no login of their own (audited reads)."""
    with_account = set(
        work.session.scalars(select(User.patient_id).where(User.patient_id.in_(handed_over)))
    )
    without = []
    for patient in handed_over.values():
        if patient.id in with_account or patient.birth_date is None:
            continue
        person = YoungPerson(
            patient_id=patient.id,
            site=_site_code(work.session, patient.site_id),
            local_id=patient.local_id,
            name=" ".join(p for p in (patient.given_name, patient.family_name) if p),
            handover_date=handover_date(patient.birth_date, handover_age),
        )
        without.append(person)
        work.audit(
            "read",
            "demographics",
            patient=patient,
            site_code=person.site,
            details={"why": "handover: young person without an account"},
        )
    return without


def run_handover(
    registry: Registry,
    principal: Principal,
    *,
    site: str | None = None,
    handover_age: int = DEFAULT_HANDOVER_AGE,
    now: datetime | None = None,
    dry_run: bool = False,
) -> HandoverResult:
    """Write down the hand-over of young people past ``handover_age`` (idempotent).

    Each live link of such a patient whose scopes were set before the patient's
    hand-over day is reduced to no scopes (audited, kept in the history). The
    young people handed over (now or by an earlier run) who still have carers
    but no account of their own are listed, so the care team can invite them.
    With ``dry_run`` nothing changes.
    """
    moment, today = _today(now)
    # A dry run only reads: its unit of work refuses writes, and audits what it listed.
    with unit_of_work(registry, principal, "patient.update", read_only=dry_run) as work:
        query = (
            select(CarerLink, Patient, User)
            .join(Patient, Patient.id == CarerLink.patient_id)
            .join(User, User.id == CarerLink.carer_user_id)
            .where(CarerLink.revoked_at.is_(None), Patient.birth_date.is_not(None))
            .order_by(Patient.site_id, Patient.local_id, User.email)
        )
        if site:
            found = site_by_code(work.session, site)
            if not work.scope.allows_site(found.id):
                raise NotFound(f"There is no site with code {site!r} whose patients you can see.")
            query = query.where(Patient.site_id == found.id)
        rows = work.session.execute(query).all()
        earlier = set(
            work.session.scalars(
                select(CarerScopeChange.patient_id).where(CarerScopeChange.change == "handover")
            )
        )
        lapsed: list[HandoverLapse] = []
        handed_over: dict[int, Patient] = {}
        for link, patient, carer in rows:
            if (
                patient.birth_date is None
                or handover_date(patient.birth_date, handover_age) > today
            ):
                continue
            if patient.id in earlier:
                handed_over[patient.id] = patient
            stored = parse_scopes(link.scopes)
            held = effective_scopes(
                stored,
                set_at=link.scopes_set_at,
                birth_date=patient.birth_date,
                today=today,
                handover_age=handover_age,
            )
            if held == stored:
                continue  # granted on or after the birthday (or nothing left to lapse)
            handed_over[patient.id] = patient
            code = _site_code(work.session, patient.site_id)
            lapsed.append(HandoverLapse(link.id, patient.id, code, carer.email, _ordered(stored)))
            if not dry_run:
                _lapse(work, link, patient, carer, moment)
        without = _without_account(work, handed_over, handover_age)
        return HandoverResult(tuple(lapsed), tuple(without), dry_run)
