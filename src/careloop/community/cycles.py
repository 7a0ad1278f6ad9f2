"""Learning (PDSA) cycles: a change tested by a community, stored with Plan, Do and Act.

Any change can be a cycle: a process change, a change package, a policy, a
training, a knowledge object's deployment. A cycle records its aim,
predictions and questions; Plan (who, where, when, which sites); Do (the
change date, the end, the sites, what was done); its purpose (quality
improvement or research) with the determination that covers it (a QI
determination or an ethics approval, with its reference); the measures it
watches, each as outcome, process or balancing; and Act (adopt, adapt or
abandon, with the rationale). Cycles nest (``parent_id``): a network's
change package holds its sites' own cycles. The Study is computed from
the data by ``careloop.community.study``, never typed in.

What a member records, and what makes it valid, is
:mod:`careloop.community.cycle_input`; an Act before the Do began is
refused here. Only members record and edit a community's cycles.

A cycle's change date annotates the charts of its measures, as a
knowledge deployment does (:func:`cycle_changes`): a title and a date are
no patient data.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.community import _access as access
from careloop.community._access import CATEGORY, loads
from careloop.community.cycle_input import (
    ACT_DECISIONS,
    CycleInput,
    CycleMeasureInput,
    cycle_problems,
    measures_of,
)
from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import ErrorDetail, InputError, NotFound, ValidationFailed
from careloop.measures import load_catalog
from careloop.store.database import Registry
from careloop.store.models import Community, Cycle, CycleMeasure
from careloop.trust.principal import Principal


@dataclass(frozen=True)
class ChartPhase:
    """The phase a cycle's change starts on one chart of its measures."""

    measure_id: str
    role: str
    starts: date
    """The change date: the first day of the new phase."""
    ends: date | None
    sites: list[str]
    """Sites whose charts get the phase (empty: every site and the network's)."""
    label: str


@dataclass(frozen=True)
class CycleView:
    """A cycle as the CLI, the API and reports show it."""

    id: int
    community_id: int
    community: str
    parent_id: int | None
    children: list[int]
    kind: str
    title: str
    aim: str
    predictions: str
    questions: str
    knowledge_ref: str | None
    plan: dict[str, Any]
    do: dict[str, Any]
    purpose: str
    randomised: bool
    determination: dict[str, str | None]
    act: dict[str, Any] | None
    measures: list[dict[str, str]]
    phases: list[ChartPhase]
    earlier: list[date]
    """Change dates of the cycles it nests in that began before it (earlier phases)."""
    cycles_recorded: int
    """Cycles its community has recorded, planned ones included."""
    cycles_tested: int
    """Cycles of its community that tested a change for the same aim: their Do is
    recorded (a change date, so each has a Study) and they watch one of this cycle's
    outcome measures as an outcome (any of its measures when it has no outcome
    measure); this cycle counts once its Do is recorded. The progress score's
    "cycles" step counts these, not cycles only planned."""
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CycleChange:
    """A cycle's change as a chart annotation of one measure."""

    cycle_id: int
    community: str
    title: str
    kind: str
    starts: date
    sites: tuple[str, ...]
    role: str
    act: str | None = None
    children: tuple[int, ...] = field(default_factory=tuple)


def _input_of(row: Cycle, measures: Sequence[CycleMeasure]) -> CycleInput:
    return CycleInput(
        title=row.title,
        kind=row.kind,
        aim=row.aim,
        predictions=row.predictions,
        questions=row.questions,
        parent_id=row.parent_id,
        knowledge_ref=row.knowledge_ref,
        plan_who=row.plan_who,
        plan_where=row.plan_where,
        plan_when=row.plan_when,
        plan_sites=tuple(loads(row.plan_sites, [])),
        do_start=row.do_start,
        do_end=row.do_end,
        do_sites=tuple(loads(row.do_sites, [])),
        do_what=row.do_what,
        purpose=row.purpose,
        randomised=row.randomised,
        determination_kind=row.determination_kind,
        determination_ref=row.determination_ref,
        measures=tuple(CycleMeasureInput(m.measure_id, m.role) for m in measures),
    )


def _write(row: Cycle, data: CycleInput) -> None:
    row.title = data.title.strip()[:300]
    row.kind = data.kind
    row.aim = data.aim.strip()
    row.predictions = data.predictions.strip()
    row.questions = data.questions.strip()
    row.parent_id = data.parent_id
    row.knowledge_ref = data.knowledge_ref
    row.plan_who = data.plan_who.strip()
    row.plan_where = data.plan_where.strip()
    row.plan_when = data.plan_when
    row.plan_sites = json.dumps(sorted(set(data.plan_sites)))
    row.do_start = data.do_start
    row.do_end = data.do_end
    row.do_sites = json.dumps(sorted(set(data.do_sites)))
    row.do_what = data.do_what.strip()
    row.purpose = data.purpose
    row.randomised = data.randomised
    row.determination_kind = data.determination_kind
    row.determination_ref = data.determination_ref


def _phases(row: Cycle, measures: Sequence[CycleMeasure]) -> list[ChartPhase]:
    if row.do_start is None:
        return []
    return [
        ChartPhase(
            measure_id=m.measure_id,
            role=m.role,
            starts=row.do_start,
            ends=row.do_end,
            sites=loads(row.do_sites, []),
            label=row.title,
        )
        for m in measures
    ]


def _earlier(session: Session, row: Cycle) -> list[date]:
    out: list[date] = []
    parent = session.get(Cycle, row.parent_id) if row.parent_id else None
    while parent is not None:
        if parent.do_start and row.do_start and parent.do_start < row.do_start:
            out.append(parent.do_start)
        parent = session.get(Cycle, parent.parent_id) if parent.parent_id else None
    return sorted(set(out))


def _tested_for_aim(session: Session, row: Cycle, measures: Sequence[CycleMeasure]) -> int:
    """Cycles of the community with a Do that watch this cycle's outcome measures."""
    outcomes = {m.measure_id for m in measures if m.role == "outcome"}
    wanted = outcomes or {m.measure_id for m in measures}
    if not wanted:
        return 0
    query = (
        select(Cycle.id)
        .join(CycleMeasure, CycleMeasure.cycle_id == Cycle.id)
        .where(
            Cycle.community_id == row.community_id,
            Cycle.do_start.is_not(None),
            CycleMeasure.measure_id.in_(sorted(wanted)),
        )
    )
    if outcomes:  # an outcome of theirs too: a shared balancing measure is another aim's
        query = query.where(CycleMeasure.role == "outcome")
    return len(set(session.scalars(query)))


def _view(session: Session, row: Cycle) -> CycleView:
    community = access.community_row(session, row.community_id)
    measures = measures_of(session, row.id)
    children = list(session.scalars(select(Cycle.id).where(Cycle.parent_id == row.id)))
    return CycleView(
        id=row.id,
        community_id=community.id,
        community=community.name,
        parent_id=row.parent_id,
        children=children,
        kind=row.kind,
        title=row.title,
        aim=row.aim,
        predictions=row.predictions,
        questions=row.questions,
        knowledge_ref=row.knowledge_ref,
        plan={
            "who": row.plan_who,
            "where": row.plan_where,
            "when": row.plan_when,
            "sites": loads(row.plan_sites, []),
        },
        do={
            "start": row.do_start,
            "end": row.do_end,
            "sites": loads(row.do_sites, []),
            "what": row.do_what,
        },
        purpose=row.purpose,
        randomised=row.randomised,
        determination={"kind": row.determination_kind, "reference": row.determination_ref},
        act=(
            {
                "decision": row.act_decision,
                "rationale": row.act_rationale,
                "at": as_utc(row.act_at) if row.act_at else None,
            }
            if row.act_decision
            else None
        ),
        measures=[{"measure_id": m.measure_id, "role": m.role} for m in measures],
        phases=_phases(row, measures),
        earlier=_earlier(session, row),
        cycles_recorded=len(
            list(session.scalars(select(Cycle.id).where(Cycle.community_id == community.id)))
        ),
        cycles_tested=_tested_for_aim(session, row, measures),
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _cycle_row(session: Session, cycle_id: int, community_id: int | None = None) -> Cycle:
    row = session.get(Cycle, cycle_id)
    if row is None or (community_id is not None and row.community_id != community_id):
        raise NotFound(f"There is no learning cycle {cycle_id} (`careloop cycle list`).")
    return row


def _replace_measures(session: Session, cycle_id: int, data: CycleInput) -> None:
    for old in measures_of(session, cycle_id):
        session.delete(old)
    session.flush()
    for m in data.measures:
        session.add(CycleMeasure(cycle_id=cycle_id, measure_id=m.measure_id, role=m.role))


def add_cycle(
    registry: Registry,
    principal: Principal,
    community_id: int,
    data: CycleInput,
    *,
    known_measures: Collection[str],
) -> CycleView:
    """Record a new cycle in a community (members only)."""
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "cycle.add", community_id, title=data.title)
        community = access.community_row(session, community_id)
        access.require_member(work, community)
        problems = cycle_problems(session, community, data, known_measures, None)
        if problems:
            raise ValidationFailed("The cycle is not valid; nothing was recorded.", problems)
        row = Cycle(community_id=community.id, created_by=principal.email)
        _write(row, data)
        session.add(row)
        session.flush()
        _replace_measures(session, row.id, data)
        session.flush()
        work.audit(
            "cycle.add",
            CATEGORY,
            details={"community": community.id, "cycle": row.id, "kind": row.kind},
        )
        return _view(session, row)


EDITABLE = frozenset(f.name for f in fields(CycleInput))


def update_cycle(
    registry: Registry,
    principal: Principal,
    cycle_id: int,
    changes: Mapping[str, Any],
    *,
    known_measures: Collection[str],
    community_id: int | None = None,
) -> CycleView:
    """Change fields of a cycle (members only); the whole cycle is validated again."""
    unknown = sorted(set(changes) - EDITABLE)
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "cycle.update", None, cycle=cycle_id, fields=sorted(changes))
        row = _cycle_row(session, cycle_id, community_id)
        community = access.community_row(session, row.community_id)
        access.require_member(work, community)
        if unknown:
            raise ValidationFailed(
                "Some fields cannot be changed; nothing was changed.",
                [
                    ErrorDetail(k, f"Not a cycle field: use {', '.join(sorted(EDITABLE))}.")
                    for k in unknown
                ],
            )
        current = _input_of(row, measures_of(session, row.id))
        try:
            data = replace(current, **dict(changes))
        except TypeError as exc:  # a wrong shape from a front door
            raise InputError(f"The changes do not fit a cycle: {exc}.") from exc
        problems = cycle_problems(session, community, data, known_measures, row.id)
        if problems:
            raise ValidationFailed("The cycle is not valid; nothing was changed.", problems)
        before = asdict(current)
        _write(row, data)
        if "measures" in changes:
            _replace_measures(session, row.id, data)
        session.flush()
        work.audit(
            "cycle.update",
            CATEGORY,
            details={
                "community": community.id,
                "cycle": row.id,
                "fields": sorted(k for k in changes if before.get(k) != asdict(data).get(k)),
            },
        )
        return _view(session, row)


def record_act(
    registry: Registry,
    principal: Principal,
    cycle_id: int,
    *,
    decision: str,
    rationale: str,
    community_id: int | None = None,
) -> CycleView:
    """Record Act: adopt, adapt or abandon the change, and why (members only)."""
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, "cycle.act", None, cycle=cycle_id, decision=decision)
        row = _cycle_row(session, cycle_id, community_id)
        community = access.community_row(session, row.community_id)
        access.require_member(work, community)
        problems = []
        if decision not in ACT_DECISIONS:
            problems.append(
                ErrorDetail("decision", f"Use one of {', '.join(ACT_DECISIONS)}.", decision)
            )
        if not rationale.strip():
            problems.append(ErrorDetail("rationale", "Say why: the next cycle learns from it."))
        if row.do_start is None:
            problems.append(
                ErrorDetail("do_start", "Act follows Do: record when the change began first.")
            )
        if problems:
            raise ValidationFailed("Act cannot be recorded; nothing was changed.", problems)
        row.act_decision = decision
        row.act_rationale = rationale.strip()
        row.act_at = utcnow()
        work.audit(
            "cycle.act",
            CATEGORY,
            details={"community": community.id, "cycle": row.id, "decision": decision},
        )
        return _view(session, row)


def list_cycles(
    registry: Registry, principal: Principal, *, community_id: int | None = None
) -> list[CycleView]:
    """Cycles of the caller's communities (of one community when given)."""
    with access.community_work(registry, principal, "community.read") as work:
        session = work.session
        access.audit_refusals(work, "cycle.list", community_id)
        query = select(Cycle).order_by(Cycle.id)
        if community_id is not None:
            community = access.community_row(session, community_id)
            access.require_seeing(work, community)
            query = query.where(Cycle.community_id == community.id)
        rows = [r for r in session.scalars(query) if access.may_see(work, r.community_id)]
        work.audit(
            "cycle.list",
            CATEGORY,
            details={"community": community_id, "cycles": [r.id for r in rows]},
        )
        return [_view(session, r) for r in rows]


def show_cycle(
    registry: Registry, principal: Principal, cycle_id: int, *, community_id: int | None = None
) -> CycleView:
    """One cycle (members of its community and the installation admin)."""
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, "cycle.show", None, cycle=cycle_id)
        row = _cycle_row(work.session, cycle_id, community_id)
        community = access.community_row(work.session, row.community_id)
        access.require_seeing(work, community)
        work.audit("cycle.show", CATEGORY, details={"community": community.id, "cycle": row.id})
        return _view(work.session, row)


def cycle_changes(registry: Registry, measure_id: str | None = None) -> list[CycleChange]:
    """Every cycle's change date as an annotation of the charts of its measures.

    Like knowledge deployments, these are titles and dates, no patient data:
    any chart of the measure may show them.
    """
    with registry.transaction() as session:
        query = (
            select(Cycle, CycleMeasure, Community)
            .join(CycleMeasure, CycleMeasure.cycle_id == Cycle.id)
            .join(Community, Community.id == Cycle.community_id)
            .where(Cycle.do_start.is_not(None))
        )
        if measure_id is not None:
            query = query.where(CycleMeasure.measure_id == measure_id)
        found = []
        for cycle, measure, community in session.execute(query.order_by(Cycle.do_start, Cycle.id)):
            assert cycle.do_start is not None
            found.append(
                CycleChange(
                    cycle_id=cycle.id,
                    community=community.name,
                    title=cycle.title,
                    kind=cycle.kind,
                    starts=cycle.do_start,
                    sites=tuple(loads(cycle.do_sites, [])),
                    role=measure.role,
                    act=cycle.act_decision,
                )
            )
        return found


def measure_ids(measures_dir: Path | str | None = None) -> list[str]:
    """The measure ids this installation knows (built-ins, the measures folder, plugins),
    which cycles and communities may name."""
    return load_catalog(measures_dir=measures_dir).ids


def measure_improvements(measures_dir: Path | str | None = None) -> dict[str, str]:
    """Each known measure's better direction (``up`` or ``down``), for a cycle's Study."""
    return {m.id: m.improvement for m in load_catalog(measures_dir=measures_dir).measures}
