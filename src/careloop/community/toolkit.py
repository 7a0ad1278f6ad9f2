"""The toolkit: tools and case studies for each stage of the cycle, rated and linked to cycles.

A starter set ships with careloop as package data (``toolkit_starter/``:
a PDSA template, a driver diagram guide, a run-chart rules card, a NASSS
guide, a behaviour change wheel / COM-B summary, a focus-group guide, and
the MQ Health and ImproveCareNow stories, all in careloop's own words). It
is copied into a community's toolkit when the community is created
(:func:`load_starter`, idempotent: an item the toolkit already has is left
as it is); a steward loads it into an older community, or adds items a new
careloop release brings, with :func:`load_starter_toolkit`. A community
adds its own items beside them. Each item is tagged with the stages it
supports, either of the PDSA cycle (plan, do, study, act) or of the
learning cycle (capture, store, knowledge, practice). Members rate items
(1–5, one rating per member, which they may change) and record which
cycles used them.

A cycle may also record its behaviour-change design: the behaviour it
targets, the COM-B components (Michie S, van Stralen MM, West R 2011, "The
behaviour change wheel", Implement Sci 6:42), and the intervention
functions and policy categories chosen.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.community import _access as access
from careloop.community._access import CATEGORY, loads
from careloop.core.clock import as_utc, utcnow
from careloop.core.errors import ErrorDetail, NotFound, ValidationFailed
from careloop.store.database import Registry
from careloop.store.models import Cycle, CycleDesign, ToolkitItem, ToolkitRating, ToolkitUse
from careloop.trust.principal import Principal

STAGES: tuple[str, ...] = (
    "plan",
    "do",
    "study",
    "act",
    "capture",
    "store",
    "knowledge",
    "practice",
)
KINDS: tuple[str, ...] = ("tool", "case_study")
COM_B: tuple[str, ...] = (
    "capability_physical",
    "capability_psychological",
    "opportunity_physical",
    "opportunity_social",
    "motivation_reflective",
    "motivation_automatic",
)
FUNCTIONS: tuple[str, ...] = (
    "education",
    "persuasion",
    "incentivisation",
    "coercion",
    "training",
    "restriction",
    "environmental_restructuring",
    "modelling",
    "enablement",
)
POLICIES: tuple[str, ...] = (
    "communication_marketing",
    "guidelines",
    "fiscal_measures",
    "regulation",
    "legislation",
    "environmental_social_planning",
    "service_provision",
)
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{1,79}$")
STARTER_BY = "careloop starter set"
"""The ``created_by`` of the items copied from the starter set."""


@dataclass(frozen=True)
class ToolView:
    """A toolkit item with its members' ratings and the cycles that used it."""

    key: str
    kind: str
    title: str
    stages: list[str]
    summary: str
    body: str
    source: str
    """``starter`` (ships with careloop) or ``community``."""
    ratings: int
    mean_rating: float | None
    used_by: list[int]
    """Cycles of this community that used it."""


@dataclass(frozen=True)
class DesignView:
    """A cycle's behaviour-change design (COM-B and behaviour change wheel)."""

    cycle_id: int
    behaviour: str
    com_b: list[str]
    functions: list[str]
    policies: list[str]
    notes: str
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class _Item:
    key: str
    kind: str
    title: str
    stages: tuple[str, ...]
    summary: str
    body: str


def _parse(key: str, text: str) -> _Item:
    head, _, body = text.partition("\n---\n")
    fields = {}
    for line in head.splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip().strip('"')
    return _Item(
        key=key,
        kind=fields["kind"],
        title=fields["title"],
        stages=tuple(s.strip() for s in fields["stages"].split(",")),
        summary=fields["summary"],
        body=body.strip(),
    )


@cache
def starter_items() -> tuple[_Item, ...]:
    """The starter toolkit shipped with careloop, in a stable order."""
    folder = resources.files("careloop.community") / "toolkit_starter"
    return tuple(
        _parse(entry.name.removesuffix(".md"), entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".md")
    )


def load_starter(session: Session, community_id: int) -> list[str]:
    """Copy the starter items a community's toolkit lacks into it; the keys added.

    Idempotent: an item already there (perhaps edited) is left as it is.
    """
    have = _keys(session, community_id)
    added = [i for i in starter_items() if i.key not in have]
    for i in added:
        session.add(
            ToolkitItem(
                community_id=community_id,
                key=i.key,
                kind=i.kind,
                title=i.title,
                stages=json.dumps(list(i.stages)),
                summary=i.summary,
                body=i.body,
                created_by=STARTER_BY,
            )
        )
    session.flush()
    return [i.key for i in added]


def load_starter_toolkit(registry: Registry, principal: Principal, community_id: int) -> list[str]:
    """Load the starter set into an existing community's toolkit (stewards); the keys added."""
    action = "community.toolkit_starter"
    with access.community_work(registry, principal, "community.participate") as work:
        access.audit_refusals(work, action, community_id)
        community = access.community_row(work.session, community_id)
        access.require_steward(work, community)
        added = load_starter(work.session, community.id)
        work.audit(action, CATEGORY, details={"community": community.id, "added": added})
        return added


def _community_items(session: Session, community_id: int) -> list[tuple[str, _Item]]:
    return [
        (
            "starter" if r.created_by == STARTER_BY else "community",
            _Item(r.key, r.kind, r.title, tuple(loads(r.stages, [])), r.summary, r.body),
        )
        for r in session.scalars(
            select(ToolkitItem)
            .where(ToolkitItem.community_id == community_id)
            .order_by(ToolkitItem.id)
        )
    ]


def _keys(session: Session, community_id: int) -> set[str]:
    return set(
        session.scalars(select(ToolkitItem.key).where(ToolkitItem.community_id == community_id))
    )


def _tools(session: Session, community_id: int, stage: str | None) -> list[ToolView]:
    ratings: dict[str, list[int]] = {}
    for r in session.scalars(
        select(ToolkitRating).where(ToolkitRating.community_id == community_id)
    ):
        ratings.setdefault(r.tool, []).append(r.stars)
    uses: dict[str, list[int]] = {}
    for tool, cycle_id in session.execute(
        select(ToolkitUse.tool, ToolkitUse.cycle_id)
        .join(Cycle, Cycle.id == ToolkitUse.cycle_id)
        .where(Cycle.community_id == community_id)
        .order_by(ToolkitUse.cycle_id)
    ):
        uses.setdefault(tool, []).append(cycle_id)
    out = []
    for source, i in _community_items(session, community_id):
        if stage is not None and stage not in i.stages:
            continue
        stars = ratings.get(i.key, [])
        out.append(
            ToolView(
                key=i.key,
                kind=i.kind,
                title=i.title,
                stages=list(i.stages),
                summary=i.summary,
                body=i.body,
                source=source,
                ratings=len(stars),
                mean_rating=round(statistics.fmean(stars), 2) if stars else None,
                used_by=uses.get(i.key, []),
            )
        )
    return out


def list_toolkit(
    registry: Registry, principal: Principal, community_id: int, *, stage: str | None = None
) -> list[ToolView]:
    """The community's toolkit (starter set and its own items), optionally for one stage."""
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, "community.toolkit", community_id, stage=stage)
        community = access.community_row(work.session, community_id)
        access.require_seeing(work, community)
        if stage is not None and stage not in STAGES:
            raise ValidationFailed(
                "Unknown stage.", [ErrorDetail("stage", f"Use one of {', '.join(STAGES)}.", stage)]
            )
        tools = _tools(work.session, community.id, stage)
        work.audit("community.toolkit", CATEGORY, details={"community": community.id})
        return tools


def add_tool(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    key: str,
    kind: str,
    title: str,
    stages: Sequence[str],
    summary: str,
    body: str = "",
) -> ToolView:
    """Add a tool or case study to the community's toolkit (members)."""
    action = "community.toolkit_add"
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, action, community_id, tool=key)
        community = access.community_row(session, community_id)
        access.require_member(work, community)
        problems = []
        if not _KEY.match(key):
            problems.append(ErrorDetail("key", "2–80 lower-case letters, digits and hyphens.", key))
        elif key in _keys(session, community.id):
            problems.append(
                ErrorDetail("key", "The toolkit already has an item with this key.", key)
            )
        if kind not in KINDS:
            problems.append(ErrorDetail("kind", "tool or case_study.", kind))
        if not title.strip():
            problems.append(ErrorDetail("title", "Give the item a title."))
        if not summary.strip():
            problems.append(ErrorDetail("summary", "Say in a sentence what it is for."))
        if not stages:
            problems.append(ErrorDetail("stages", f"Tag one or more of {', '.join(STAGES)}."))
        problems += [
            ErrorDetail(f"stages[{i}]", f"Use one of {', '.join(STAGES)}.", s)
            for i, s in enumerate(stages)
            if s not in STAGES
        ]
        if problems:
            raise ValidationFailed("The toolkit item is not valid; nothing was added.", problems)
        session.add(
            ToolkitItem(
                community_id=community.id,
                key=key,
                kind=kind,
                title=title.strip(),
                stages=json.dumps(list(dict.fromkeys(stages))),
                summary=summary.strip(),
                body=body.strip(),
                created_by=principal.email,
            )
        )
        session.flush()
        work.audit(action, CATEGORY, details={"community": community.id, "tool": key})
        return next(t for t in _tools(session, community.id, None) if t.key == key)


def _require_tool(session: Session, community_id: int, tool: str, location: str = "tool") -> None:
    if tool not in _keys(session, community_id):
        raise NotFound(
            f"The toolkit has no item {tool!r} (`careloop community toolkit list ID` lists them).",
            [ErrorDetail(location, "unknown toolkit item", tool)],
        )


def rate_tool(
    registry: Registry,
    principal: Principal,
    community_id: int,
    tool: str,
    *,
    stars: int,
    comment: str = "",
    on_behalf_of: str | None = None,
) -> ToolView:
    """A member rates a toolkit item from 1 to 5 (rating again replaces their rating).

    ``on_behalf_of`` (a facilitator or the operator) records a member's rating
    from a meeting; the audit trail keeps both names.
    """
    action = "community.toolkit_rate"
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, action, community_id, tool=tool, stars=stars)
        community = access.community_row(session, community_id)
        user_id, by = access.rater(work, community, on_behalf_of)
        _require_tool(session, community.id, tool)
        if isinstance(stars, bool) or stars not in range(1, 6):
            raise ValidationFailed(
                "A rating is a whole number from 1 to 5; nothing was changed.",
                [ErrorDetail("stars", "1 to 5", stars)],
            )
        row = session.scalar(
            select(ToolkitRating).where(
                ToolkitRating.community_id == community.id,
                ToolkitRating.tool == tool,
                ToolkitRating.rated_by == by,
            )
        )
        if row is None:
            row = ToolkitRating(
                community_id=community.id, tool=tool, user_id=user_id, rated_by=by, stars=stars
            )
            session.add(row)
        row.stars = stars
        row.comment = comment.strip()
        row.rated_at = utcnow()
        session.flush()
        work.audit(
            action, CATEGORY, details={"community": community.id, "tool": tool, "rated_by": by}
        )
        return next(t for t in _tools(session, community.id, None) if t.key == tool)


def _cycle(session: Session, cycle_id: int, community_id: int | None) -> Cycle:
    row = session.get(Cycle, cycle_id)
    if row is None or (community_id is not None and row.community_id != community_id):
        raise NotFound(f"There is no learning cycle {cycle_id} (`careloop cycle list`).")
    return row


def use_tool(
    registry: Registry,
    principal: Principal,
    cycle_id: int,
    tool: str,
    *,
    community_id: int | None = None,
) -> list[str]:
    """Record that a cycle used a toolkit item (members); the cycle's tools after it."""
    action = "cycle.tool"
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, action, community_id, cycle=cycle_id, tool=tool)
        row = _cycle(session, cycle_id, community_id)
        community = access.community_row(session, row.community_id)
        access.require_member(work, community)
        _require_tool(session, community.id, tool)
        exists = session.scalar(
            select(ToolkitUse).where(ToolkitUse.cycle_id == row.id, ToolkitUse.tool == tool)
        )
        if exists is None:
            session.add(ToolkitUse(cycle_id=row.id, tool=tool, recorded_by=principal.email))
            session.flush()
        work.audit(
            action, CATEGORY, details={"community": community.id, "cycle": row.id, "tool": tool}
        )
        return cycle_tools_in(session, row.id)


def cycle_tools_in(session: Session, cycle_id: int) -> list[str]:
    return list(
        session.scalars(
            select(ToolkitUse.tool).where(ToolkitUse.cycle_id == cycle_id).order_by(ToolkitUse.id)
        )
    )


def _design_view(row: CycleDesign) -> DesignView:
    return DesignView(
        cycle_id=row.cycle_id,
        behaviour=row.behaviour,
        com_b=loads(row.com_b, []),
        functions=loads(row.functions, []),
        policies=loads(row.policies, []),
        notes=row.notes,
        recorded_by=row.recorded_by,
        recorded_at=as_utc(row.recorded_at),
    )


def record_design(
    registry: Registry,
    principal: Principal,
    cycle_id: int,
    *,
    behaviour: str,
    com_b: Sequence[str],
    functions: Sequence[str] = (),
    policies: Sequence[str] = (),
    notes: str = "",
    community_id: int | None = None,
) -> DesignView:
    """Record (or replace) a cycle's behaviour-change design (members)."""
    action = "cycle.design"
    with access.community_work(registry, principal, "community.participate") as work:
        session = work.session
        access.audit_refusals(work, action, community_id, cycle=cycle_id)
        row = _cycle(session, cycle_id, community_id)
        community = access.community_row(session, row.community_id)
        access.require_member(work, community)
        problems = []
        if not behaviour.strip():
            problems.append(
                ErrorDetail("behaviour", "Say who should do what differently, when and where.")
            )
        if not com_b:
            problems.append(ErrorDetail("com_b", f"Name one or more of {', '.join(COM_B)}."))
        for name, given, allowed in (
            ("com_b", com_b, COM_B),
            ("functions", functions, FUNCTIONS),
            ("policies", policies, POLICIES),
        ):
            problems += [
                ErrorDetail(f"{name}[{i}]", f"Use one of {', '.join(allowed)}.", v)
                for i, v in enumerate(given)
                if v not in allowed
            ]
        if problems:
            raise ValidationFailed("The design is not valid; nothing was changed.", problems)
        design = session.scalar(select(CycleDesign).where(CycleDesign.cycle_id == row.id))
        if design is None:
            design = CycleDesign(cycle_id=row.id, recorded_by=principal.email)
            session.add(design)
        design.behaviour = behaviour.strip()
        design.com_b = json.dumps(list(dict.fromkeys(com_b)))
        design.functions = json.dumps(list(dict.fromkeys(functions)))
        design.policies = json.dumps(list(dict.fromkeys(policies)))
        design.notes = notes.strip()
        design.recorded_by = principal.email
        design.recorded_at = utcnow()
        session.flush()
        work.audit(action, CATEGORY, details={"community": community.id, "cycle": row.id})
        return _design_view(design)


def cycle_design_in(session: Session, cycle_id: int) -> DesignView | None:
    row = session.scalar(select(CycleDesign).where(CycleDesign.cycle_id == cycle_id))
    return _design_view(row) if row else None


def cycle_design(
    registry: Registry, principal: Principal, cycle_id: int, *, community_id: int | None = None
) -> DesignView | None:
    """A cycle's behaviour-change design, if one is recorded (whoever sees the cycle)."""
    action = "cycle.design_read"
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, action, community_id, cycle=cycle_id)
        row = _cycle(work.session, cycle_id, community_id)
        community = access.community_row(work.session, row.community_id)
        access.require_seeing(work, community)
        found = cycle_design_in(work.session, row.id)
        work.audit(action, CATEGORY, details={"community": community.id, "cycle": row.id})
        return found
