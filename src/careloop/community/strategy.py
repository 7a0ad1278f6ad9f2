"""A community's strategy: aims, their driver diagrams and families of measures.

An **aim** says what the community will improve, how much, and by when. Its
**driver diagram** breaks the aim into primary drivers (what must be true to
reach it), secondary drivers (what moves each primary driver) and change
ideas (what the community will try), and a change idea links to the cycles
that test it. Its **family of measures** names real measure ids of this
installation, each an outcome, process or balancing measure, with a baseline
and a target.

A target must lie in the measure's direction of improvement (higher for a
measure that improves up, lower for one that improves down). A balancing
measure watches for harm elsewhere, so its "target" is the limit it must not
cross: it lies on the worse side of the baseline (or at it). Only members
set or change aims; reads, changes and refusals are audited.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from careloop.community import _access as access
from careloop.community._access import CATEGORY, loads
from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import ErrorDetail, InputError, NotFound, ValidationFailed
from careloop.store.database import Registry
from careloop.store.models import Aim, Cycle
from careloop.trust.principal import Principal

MEASURE_ROLES: tuple[str, ...] = ("outcome", "process", "balancing")
MAX_YEARS_AHEAD = 10


@dataclass(frozen=True)
class ChangeIdea:
    """Something the community will try, and the cycles that test it."""

    title: str
    cycles: tuple[int, ...] = ()


@dataclass(frozen=True)
class SecondaryDriver:
    title: str
    change_ideas: tuple[ChangeIdea, ...] = ()


@dataclass(frozen=True)
class PrimaryDriver:
    title: str
    secondary: tuple[SecondaryDriver, ...] = ()


@dataclass(frozen=True)
class AimMeasure:
    """A measure of the aim's family: its role, baseline and target."""

    measure_id: str
    role: str
    baseline: float
    target: float


@dataclass(frozen=True)
class AimInput:
    """What a member records of an aim."""

    what: str
    how_much: str
    by_when: date
    drivers: tuple[PrimaryDriver, ...] = ()
    measures: tuple[AimMeasure, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AimInput:
        """An aim from its JSON shape (the CLI's file, the API's body).

        Raises:
            InputError: A part has the wrong shape (the JSON path says where).
        """
        try:
            by_when = data["by_when"]
            return cls(
                what=str(data["what"]),
                how_much=str(data.get("how_much", "")),
                by_when=by_when if isinstance(by_when, date) else date.fromisoformat(by_when),
                drivers=tuple(
                    PrimaryDriver(
                        str(p["title"]),
                        tuple(
                            SecondaryDriver(
                                str(s["title"]),
                                tuple(
                                    ChangeIdea(
                                        str(c["title"]), tuple(int(x) for x in c.get("cycles", ()))
                                    )
                                    for c in s.get("change_ideas", ())
                                ),
                            )
                            for s in p.get("secondary", ())
                        ),
                    )
                    for p in data.get("drivers", ())
                ),
                measures=tuple(
                    AimMeasure(
                        str(m["measure_id"]),
                        str(m.get("role", "outcome")),
                        float(m["baseline"]),
                        float(m["target"]),
                    )
                    for m in data.get("measures", ())
                ),
            )
        except KeyError as exc:
            raise InputError(
                f"The aim lacks {exc.args[0]!r}: an aim has what, how_much and by_when; a "
                "driver and a change idea a title; a measure measure_id, baseline and target.",
                [ErrorDetail(str(exc.args[0]), "missing")],
            ) from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise InputError(
                f"The aim does not have the expected shape ({exc}); by_when is YYYY-MM-DD, "
                "baselines and targets are numbers, cycles are ids.",
            ) from None


@dataclass(frozen=True)
class AimView:
    """An aim as the CLI, the API and reports show it."""

    id: int
    community_id: int
    what: str
    how_much: str
    by_when: date
    drivers: list[dict[str, Any]]
    """Primary drivers, each with its secondary drivers and their change ideas (with cycles)."""
    measures: list[dict[str, Any]]
    """Each measure's id, role, baseline, target and direction of improvement."""
    cycles: list[int]
    """Every cycle a change idea links to."""
    created_by: str
    created_at: datetime
    updated_at: datetime


def _drivers_json(drivers: Sequence[PrimaryDriver]) -> list[dict[str, Any]]:
    return [
        {
            "title": p.title.strip(),
            "secondary": [
                {
                    "title": s.title.strip(),
                    "change_ideas": [
                        {"title": c.title.strip(), "cycles": list(c.cycles)} for c in s.change_ideas
                    ],
                }
                for s in p.secondary
            ],
        }
        for p in drivers
    ]


def _linked_cycles(drivers: list[dict[str, Any]]) -> list[int]:
    return sorted(
        {
            c
            for p in drivers
            for s in p["secondary"]
            for idea in s["change_ideas"]
            for c in idea["cycles"]
        }
    )


def _problems(
    data: AimInput, improvements: Mapping[str, str], known_cycles: set[int], today: date
) -> list[ErrorDetail]:
    """Every problem with an aim's input, each naming its field.

    Long because it checks each part of the aim in turn (what, how much, by when, the
    driver diagram, the family of measures), so that one refusal lists every problem at
    once.
    """
    out: list[ErrorDetail] = []
    if not data.what.strip():
        out.append(ErrorDetail("what", "Say what the community will improve."))
    if not data.how_much.strip():
        out.append(ErrorDetail("how_much", "Say how much (for example 'from 60% to 75%')."))
    latest = date(today.year + MAX_YEARS_AHEAD, today.month, min(today.day, 28))
    if data.by_when > latest:
        out.append(
            ErrorDetail(
                "by_when",
                f"An aim is reached within {MAX_YEARS_AHEAD} years; give a nearer date.",
                str(data.by_when),
            )
        )
    for i, p in enumerate(data.drivers):
        where = f"drivers[{i}]"
        if not p.title.strip():
            out.append(ErrorDetail(f"{where}.title", "Give the primary driver a title."))
        for j, s in enumerate(p.secondary):
            if not s.title.strip():
                out.append(ErrorDetail(f"{where}.secondary[{j}].title", "Give the driver a title."))
            for k, c in enumerate(s.change_ideas):
                at = f"{where}.secondary[{j}].change_ideas[{k}]"
                if not c.title.strip():
                    out.append(ErrorDetail(f"{at}.title", "Give the change idea a title."))
                out += [
                    ErrorDetail(f"{at}.cycles[{n}]", "No cycle of this community has this id.", x)
                    for n, x in enumerate(c.cycles)
                    if x not in known_cycles
                ]
    seen: set[str] = set()
    for i, m in enumerate(data.measures):
        at = f"measures[{i}]"
        if m.measure_id in seen:
            out.append(ErrorDetail(at, "This measure is named twice.", m.measure_id))
        seen.add(m.measure_id)
        if m.role not in MEASURE_ROLES:
            out.append(ErrorDetail(f"{at}.role", f"Use one of {', '.join(MEASURE_ROLES)}.", m.role))
        if not (math.isfinite(m.baseline) and math.isfinite(m.target)):
            out.append(ErrorDetail(at, "The baseline and the target are numbers."))
            continue
        direction = improvements.get(m.measure_id)
        if direction is None:
            out.append(
                ErrorDetail(
                    f"{at}.measure_id",
                    "No such measure in this installation: `careloop measures list` shows ids.",
                    m.measure_id,
                )
            )
            continue
        better = m.target > m.baseline if direction == "up" else m.target < m.baseline
        worse_or_same = m.target <= m.baseline if direction == "up" else m.target >= m.baseline
        word = "higher" if direction == "up" else "lower"
        if m.role == "balancing" and not worse_or_same:
            out.append(
                ErrorDetail(
                    f"{at}.target",
                    f"{m.measure_id} improves when it is {word}; as a balancing measure its "
                    "target is the limit it must not cross, so it lies on the worse side of "
                    f"the baseline {m.baseline:g} (or at it).",
                    m.target,
                )
            )
        elif m.role != "balancing" and not better:
            out.append(
                ErrorDetail(
                    f"{at}.target",
                    f"{m.measure_id} improves when it is {word}: a target of {m.target:g} "
                    f"against a baseline of {m.baseline:g} is in the wrong direction.",
                    m.target,
                )
            )
    if data.measures and not any(m.role == "outcome" for m in data.measures):
        out.append(
            ErrorDetail("measures", "A family of measures has at least one outcome measure.")
        )
    return out


def _view(row: Aim, improvements: Mapping[str, str] | None = None) -> AimView:
    drivers = loads(row.drivers, [])
    measures = loads(row.measures, [])
    if improvements is not None:
        measures = [{**m, "improvement": improvements.get(m["measure_id"])} for m in measures]
    return AimView(
        id=row.id,
        community_id=row.community_id,
        what=row.what,
        how_much=row.how_much,
        by_when=row.by_when,
        drivers=drivers,
        measures=measures,
        cycles=_linked_cycles(drivers),
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _write(row: Aim, data: AimInput) -> None:
    row.what = data.what.strip()
    row.how_much = data.how_much.strip()
    row.by_when = data.by_when
    row.drivers = json.dumps(_drivers_json(data.drivers))
    row.measures = json.dumps(
        [
            {"measure_id": m.measure_id, "role": m.role, "baseline": m.baseline, "target": m.target}
            for m in data.measures
        ]
    )


def set_aim(
    registry: Registry,
    principal: Principal,
    community_id: int,
    data: AimInput,
    *,
    improvements: Mapping[str, str],
    aim_id: int | None = None,
) -> AimView:
    """Record a new aim, or replace aim ``aim_id`` (members only); validated whole.

    ``improvements`` maps each measure id the installation knows to its
    direction of improvement (``up`` or ``down``).
    """
    action = "community.aim"
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, action, community_id, aim=aim_id)
        community = access.community_row(session, community_id)
        access.require_member(work, community)
        row: Aim | None = None
        if aim_id is not None:
            row = session.get(Aim, aim_id)
            if row is None or row.community_id != community.id:
                raise NotFound(f"The community has no aim {aim_id}.")
        known = set(session.scalars(select(Cycle.id).where(Cycle.community_id == community.id)))
        problems = _problems(data, improvements, known, utcnow().date())
        if problems:
            raise ValidationFailed("The aim is not valid; nothing was changed.", problems)
        if row is None:
            row = Aim(community_id=community.id, created_by=principal.email)
            session.add(row)
        _write(row, data)
        session.flush()
        work.audit(
            action,
            CATEGORY,
            details={"community": community.id, "aim": row.id, "new": aim_id is None},
        )
        return _view(row, improvements)


def list_aims(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    improvements: Mapping[str, str] | None = None,
) -> list[AimView]:
    """The community's aims, oldest first (members and the installation admin)."""
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, "community.aims", community_id)
        community = access.community_row(work.session, community_id)
        access.require_seeing(work, community)
        rows = list(
            work.session.scalars(
                select(Aim).where(Aim.community_id == community.id).order_by(Aim.id)
            )
        )
        work.audit("community.aims", CATEGORY, details={"community": community.id})
        return [_view(r, improvements) for r in rows]
