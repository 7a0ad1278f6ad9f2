"""What a member records of a learning cycle, and what makes it valid.

:class:`CycleInput` holds a cycle's aim, predictions and questions, its Plan
and Do, its purpose with the determination that covers it, and the measures
it watches. :func:`cycle_problems` lists every problem with one, each naming its
field, so that one refusal says everything and nothing is changed:
measure ids the installation does not have; a Do that ends before it
starts or a Plan dated after the Do began; a nested cycle starting before
its parent; two sibling cycles testing at a shared site on a shared
outcome measure at overlapping times (the Study could not tell their
effects apart); sites outside the community; a randomised test, or
research, without its determination.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.community._access import loads
from careloop.core.clock import utcnow
from careloop.core.errors import ErrorDetail
from careloop.store.models import Community, Cycle, CycleMeasure, KnowledgeObjectVersion

CYCLE_KINDS: tuple[str, ...] = (
    "process",
    "change_package",
    "policy",
    "training",
    "knowledge_deployment",
)
MEASURE_ROLES: tuple[str, ...] = ("outcome", "process", "balancing")
PURPOSES: tuple[str, ...] = ("qi", "research")
DETERMINATIONS: tuple[str, ...] = ("qi_determination", "ethics_approval")
ACT_DECISIONS: tuple[str, ...] = ("adopt", "adapt", "abandon")


@dataclass(frozen=True)
class CycleMeasureInput:
    """A measure the cycle watches, and its role."""

    measure_id: str
    role: str = "outcome"


@dataclass(frozen=True)
class CycleInput:
    """What a member records of a cycle (everything but Act, which :func:`record_act` sets)."""

    title: str
    kind: str
    aim: str = ""
    predictions: str = ""
    questions: str = ""
    parent_id: int | None = None
    knowledge_ref: str | None = None
    """identifier@version, for a knowledge_deployment cycle."""
    plan_who: str = ""
    plan_where: str = ""
    plan_when: date | None = None
    plan_sites: tuple[str, ...] = ()
    do_start: date | None = None
    """The change date."""
    do_end: date | None = None
    """Empty while the change is in place."""
    do_sites: tuple[str, ...] = ()
    """Where the change was made (empty: every site of the community)."""
    do_what: str = ""
    purpose: str = "qi"
    randomised: bool = False
    """A randomised test (of care processes or card variants)."""
    determination_kind: str | None = None
    determination_ref: str | None = None
    measures: tuple[CycleMeasureInput, ...] = ()


def measures_of(session: Session, cycle_id: int) -> list[CycleMeasure]:
    return list(
        session.scalars(
            select(CycleMeasure).where(CycleMeasure.cycle_id == cycle_id).order_by(CycleMeasure.id)
        )
    )


def _overlap(a: tuple[date, date | None], b: tuple[date, date | None]) -> bool:
    end_a = a[1] or date.max
    end_b = b[1] or date.max
    return a[0] <= end_b and b[0] <= end_a


def cycle_problems(
    session: Session,
    community: Community,
    data: CycleInput,
    known_measures: Collection[str],
    cycle_id: int | None,
) -> list[ErrorDetail]:
    """Every problem with a cycle's input, each naming its field.

    Long because it checks each field of the cycle in turn (title, kind, purpose,
    measures, dates, sites, determination), so that one refusal lists every problem at
    once.
    """
    out: list[ErrorDetail] = []
    if not data.title.strip():
        out.append(ErrorDetail("title", "Give the cycle a title: the change it tests."))
    if data.kind not in CYCLE_KINDS:
        out.append(ErrorDetail("kind", f"Use one of {', '.join(CYCLE_KINDS)}.", data.kind))
    if data.purpose not in PURPOSES:
        out.append(ErrorDetail("purpose", "qi (quality improvement) or research.", data.purpose))
    ids = [m.measure_id for m in data.measures]
    for i, m in enumerate(data.measures):
        if m.measure_id not in known_measures:
            out.append(
                ErrorDetail(
                    f"measures[{i}]",
                    "No such measure in this installation: `careloop measures list` shows ids.",
                    m.measure_id,
                )
            )
        if m.role not in MEASURE_ROLES:
            out.append(
                ErrorDetail(
                    f"measures[{i}].role", f"Use one of {', '.join(MEASURE_ROLES)}.", m.role
                )
            )
        if ids.index(m.measure_id) != i:
            out.append(ErrorDetail(f"measures[{i}]", "This measure is named twice.", m.measure_id))
    scope = set(loads(community.sites, []))
    for name, sites in (("plan_sites", data.plan_sites), ("do_sites", data.do_sites)):
        for i, s in enumerate(sites):
            if scope and s not in scope:
                out.append(
                    ErrorDetail(
                        f"{name}[{i}]",
                        f"Not a site of this community ({', '.join(sorted(scope))}).",
                        s,
                    )
                )
    if data.do_start and data.do_end and data.do_end < data.do_start:
        out.append(
            ErrorDetail(
                "do_end",
                f"The Do ends ({data.do_end}) before it starts ({data.do_start}): "
                "swap them or correct one.",
                str(data.do_end),
            )
        )
    if data.do_end and not data.do_start:
        out.append(ErrorDetail("do_start", "A Do that ended has a start date (the change date)."))
    if data.plan_when and data.do_start and data.plan_when > data.do_start:
        out.append(
            ErrorDetail(
                "plan_when",
                f"The Plan ({data.plan_when}) is dated after the change began "
                f"({data.do_start}); plan first, or correct the dates.",
                str(data.plan_when),
            )
        )
    if data.do_start and data.do_start > utcnow().date():
        out.append(
            ErrorDetail(
                "do_start",
                "The change date is in the future: record the Plan now and the Do on the day.",
                str(data.do_start),
            )
        )
    if data.randomised and not (data.determination_kind and data.determination_ref):
        out.append(
            ErrorDetail(
                "determination",
                "A randomised test needs its determination on record first: a QI "
                "determination or an ethics approval, with its reference.",
            )
        )
    if data.purpose == "research" and not (
        data.determination_kind == "ethics_approval" and data.determination_ref
    ):
        out.append(
            ErrorDetail(
                "determination",
                "Research needs an ethics approval on record (determination_kind "
                "ethics_approval and its reference).",
            )
        )
    if data.determination_kind is not None and data.determination_kind not in DETERMINATIONS:
        out.append(
            ErrorDetail(
                "determination_kind",
                f"Use one of {', '.join(DETERMINATIONS)}.",
                data.determination_kind,
            )
        )
    if data.kind == "knowledge_deployment":
        out += _knowledge_problems(session, data.knowledge_ref)
    out += _family_problems(session, community, data, cycle_id)
    return out


def _knowledge_problems(session: Session, ref: str | None) -> list[ErrorDetail]:
    identifier, _, version = (ref or "").partition("@")
    if not identifier:
        return [
            ErrorDetail("knowledge_ref", "Name the knowledge object deployed (identifier@version).")
        ]
    query = select(KnowledgeObjectVersion.id).where(KnowledgeObjectVersion.identifier == identifier)
    if version:
        query = query.where(KnowledgeObjectVersion.version == version)
    if session.scalar(query) is None:
        return [ErrorDetail("knowledge_ref", "No such knowledge object in the library.", ref)]
    return []


def _family_problems(
    session: Session, community: Community, data: CycleInput, cycle_id: int | None
) -> list[ErrorDetail]:
    out: list[ErrorDetail] = []
    if data.parent_id is not None:
        parent = session.get(Cycle, data.parent_id)
        if parent is None or parent.community_id != community.id:
            return [
                ErrorDetail("parent_id", "No cycle of this community has this id.", data.parent_id)
            ]
        ancestor: Cycle | None = parent
        while ancestor is not None:
            if cycle_id is not None and ancestor.id == cycle_id:
                return [ErrorDetail("parent_id", "A cycle cannot nest inside itself.")]
            ancestor = session.get(Cycle, ancestor.parent_id) if ancestor.parent_id else None
        if data.do_start and parent.do_start and data.do_start < parent.do_start:
            out.append(
                ErrorDetail(
                    "do_start",
                    f"This cycle nests in {parent.title!r}, which began on {parent.do_start}; "
                    "it cannot begin earlier.",
                    str(data.do_start),
                )
            )
    if not data.do_start:
        return out
    community_sites = set(loads(community.sites, []))
    mine_sites = set(data.do_sites) or community_sites or {"*"}
    # Only outcome measures: a shared balancing or process measure does not stop the Study
    # telling two changes' effects apart.
    mine_measures = {m.measure_id for m in data.measures if m.role == "outcome"}
    siblings = session.scalars(
        select(Cycle).where(
            Cycle.community_id == community.id,
            Cycle.parent_id.is_(None)
            if data.parent_id is None
            else Cycle.parent_id == data.parent_id,
            Cycle.do_start.is_not(None),
        )
    )
    for other in siblings:
        if other.id == cycle_id or other.do_start is None:
            continue
        other_sites = set(loads(other.do_sites, [])) or community_sites or {"*"}
        shared_sites = mine_sites & other_sites
        shared_measures = mine_measures & {
            m.measure_id for m in measures_of(session, other.id) if m.role == "outcome"
        }
        if (
            shared_sites
            and shared_measures
            and _overlap((data.do_start, data.do_end), (other.do_start, other.do_end))
        ):
            out.append(
                ErrorDetail(
                    "do_start",
                    f"The Do overlaps cycle {other.id} ({other.title!r}, from {other.do_start}) "
                    f"at {', '.join(sorted(shared_sites))} on the outcome "
                    f"{', '.join(sorted(shared_measures))}: the Study could not tell the two "
                    "changes apart. Change the dates or sites, or nest one cycle in the other.",
                    str(data.do_start),
                )
            )
    return out
