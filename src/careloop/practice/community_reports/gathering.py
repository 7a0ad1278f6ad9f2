"""What a community's or a cycle's report holds, gathered for the person who asks for it.

The community parts come from :mod:`careloop.community`, whose services check
membership (members, the installation admin and the local operator see a
community) and audit each read and each refusal. Each cycle's Study is the
one :func:`careloop.community.study_of` reads for the CLI, the pages and the
API, shown only to people whose role lets them read measure results (staff:
the policy's ``measure.read``); a patient or carer member gets the
community's story without the charts, told why. A role scoped to some
sites sees the Study of cycles at those sites only.

The report shows no counts of patients: charts plot proportions and the
effect is an odds ratio, so the disclosure rules on small counts
(careloop.trust.disclosure) have nothing to hide. Members are named by
their display name, never by e-mail address.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from careloop import charts
from careloop.analysis.caveats import StatisticalWarning
from careloop.community import (
    CommunityDetail,
    CycleView,
    DecisionView,
    FindingsView,
    MaturityProfile,
    NasssRound,
    PriorityView,
    decisions,
    list_cycles,
    list_findings,
    list_priorities,
    maturity_profile,
    nasss_profile_of,
    show_community,
    show_cycle,
    study_of,
)
from careloop.community.study import CycleStudy, MeasureStudy
from careloop.core.errors import CareloopError
from careloop.measures import load_catalog
from careloop.store.database import Registry
from careloop.store.scoping import Scope
from careloop.trust.audit import AuditEvent
from careloop.trust.identity import list_sites
from careloop.trust.principal import Principal
from careloop.trust.work import record_events
from careloop.warehouse.connection import WarehouseOpener

__all__ = [
    "CommunityReport",
    "CycleSection",
    "MeasureSection",
    "community_report",
    "cycle_report",
]

_MEASURES_ACTION = "measure.read"
"""The action whose scope decides whose measure results a report may show."""


@dataclass(frozen=True)
class MeasureSection:
    """One measure of a cycle's Study, with its chart drawn."""

    measure_id: str
    title: str
    """The measure's title in the catalogue (its id when the catalogue lacks it)."""
    study: MeasureStudy
    """The Study of this measure, as :func:`careloop.community.study_cycle` returns it."""
    chart_svg: str
    """The SPC chart with the new phase and the change's line, as inline SVG ('' without
    results)."""


@dataclass(frozen=True)
class CycleSection:
    """One learning cycle with its Study (or why the report has none)."""

    cycle: CycleView
    study: CycleStudy | None
    measures: tuple[MeasureSection, ...] = ()
    withheld: str = ""
    """Why the Study is not shown ('' when it is)."""
    findings: tuple[FindingsView, ...] = ()
    """Its qualitative findings (themes, coders' agreement; never the transcripts)."""


@dataclass(frozen=True)
class CommunityReport:
    """Everything a community's (or one cycle's) report shows."""

    subject: Literal["community", "cycle"]
    community: CommunityDetail
    cycles: tuple[CycleSection, ...]
    decisions: tuple[DecisionView, ...]
    """The decision and reflection log, failures included (the cycle's entries only in
    a cycle report)."""
    priorities: tuple[PriorityView, ...] = ()
    """Ranked priorities (a community report only)."""
    nasss: tuple[NasssRound, ...] = ()
    """The latest NASSS round of each subject assessed (a cycle report: of the cycle,
    ``cycle:ID``, and of the knowledge object it deploys)."""
    maturity: MaturityProfile | None = None
    """Members' maturity ratings round by round, with careloop's evidence (a community
    report only)."""
    written_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    written_by: str = ""
    """The display name of the person who asked for it."""

    def name_of(self, email: str) -> str:
        """A member's display name; people outside the community are not named."""
        for m in self.community.members:
            if m.email == email:
                return m.display_name
        return "someone outside the community"


def community_report(
    registry: Registry,
    warehouse: WarehouseOpener,
    principal: Principal,
    community_id: int,
    *,
    measures_dir: Path | str | None = None,
) -> CommunityReport:
    """The report of a learning community: purpose, members, charter, priorities, cycles
    (with their qualitative findings), the latest NASSS profiles, maturity, the log.

    Raises:
        NotFound: There is no such community.
        PermissionDenied: The caller is not a member (nor the installation admin).
    """
    with _audited(registry, principal, {"report": "community", "community": community_id}):
        detail = show_community(registry, principal, community_id)
        cycles = list_cycles(registry, principal, community_id=community_id)
        studied = _studied(registry, warehouse, principal, cycles, measures_dir)
        studied = _with_findings(registry, principal, studied)
        return CommunityReport(
            subject="community",
            community=detail,
            cycles=studied,
            decisions=tuple(decisions(registry, principal, community_id)),
            priorities=tuple(list_priorities(registry, principal, community_id)),
            nasss=_latest_nasss(registry, principal, community_id),
            maturity=maturity_profile(registry, principal, community_id),
            written_by=_display_name(detail, principal),
        )


def cycle_report(
    registry: Registry,
    warehouse: WarehouseOpener,
    principal: Principal,
    cycle_id: int,
    *,
    measures_dir: Path | str | None = None,
) -> CommunityReport:
    """The report of one learning cycle: its community, Plan, Do, Study, Act and log entries.

    Raises:
        NotFound: There is no such cycle.
        PermissionDenied: The caller is not a member of its community (nor the admin).
    """
    with _audited(registry, principal, {"report": "cycle", "cycle": cycle_id}):
        view = show_cycle(registry, principal, cycle_id)
        detail = show_community(registry, principal, view.community_id)
        studied = _with_findings(
            registry, principal, _studied(registry, warehouse, principal, [view], measures_dir)
        )
        logged = decisions(registry, principal, view.community_id, cycle_id=cycle_id)
        return CommunityReport(
            subject="cycle",
            community=detail,
            cycles=studied,
            decisions=tuple(logged),
            nasss=_latest_nasss(registry, principal, view.community_id, about=view),
            written_by=_display_name(detail, principal),
        )


class _audited:
    """Audit the report: a success once gathered, a refusal or an error with its outcome.

    The community services audit their own reads and refusals; this entry says
    that a report was asked for (and by whom), so the trail shows reports too.
    """

    def __init__(self, registry: Registry, principal: Principal, details: dict[str, object]):
        self.registry, self.principal, self.details = registry, principal, details

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if kind is not None and not isinstance(exc, CareloopError):
            return
        outcome = "success"
        if isinstance(exc, CareloopError):
            outcome = {"permission_denied": "denied", "not_found": "not_found"}.get(
                exc.code, "failure"
            )
        p = self.principal
        event = AuditEvent(
            action="community.report",
            category="community",
            outcome=outcome,  # type: ignore[arg-type]
            user_id=p.user_id,
            user_email=p.email,
            role=p.role_label() or None,
            request_id=p.context.request_id,
            client_addr=p.context.client_addr,
            details=dict(self.details),
        )
        record_events(self.registry, [event])


def _display_name(detail: CommunityDetail, principal: Principal) -> str:
    for m in detail.members:
        if m.user_id == principal.user_id:
            return m.display_name
    return "the installation's administrator" if principal.user_id else "the local operator"


def _studied(
    registry: Registry,
    warehouse: WarehouseOpener,
    principal: Principal,
    cycles: list[CycleView],
    measures_dir: Path | str | None,
) -> tuple[CycleSection, ...]:
    """Each cycle with its Study, as far as the caller may see measure results."""
    scope = principal.scope_for(_MEASURES_ACTION)
    if scope == Scope.nothing():
        why = (
            "Measure results are shown to staff only; ask a clinician or the facilitator "
            "of the community for the report with its charts."
        )
        return tuple(CycleSection(c, None, withheld=why) for c in cycles)
    visible = _visible_sites(registry, principal, scope)
    titles = {m.id: m.title for m in load_catalog(measures_dir=measures_dir).measures}
    sections = []
    for cycle in cycles:
        hidden = _hidden_sites(cycle, visible)
        if hidden:
            sections.append(CycleSection(cycle, None, withheld=hidden))
            continue
        # The Study the CLI, the pages and the API show for this cycle.
        stored = study_of(cycle, warehouse, measures_dir=measures_dir)
        if stored.study is None:
            sections.append(CycleSection(cycle, None, withheld=stored.unavailable or ""))
        else:
            sections.append(_section(cycle, stored.study, titles))
    return tuple(sections)


def _with_findings(
    registry: Registry, principal: Principal, sections: tuple[CycleSection, ...]
) -> tuple[CycleSection, ...]:
    """Each cycle with its qualitative findings, which every member sees (no transcripts)."""
    return tuple(
        replace(s, findings=tuple(list_findings(registry, principal, s.cycle.id))) for s in sections
    )


def _latest_nasss(
    registry: Registry,
    principal: Principal,
    community_id: int,
    *,
    about: CycleView | None = None,
) -> tuple[NasssRound, ...]:
    """The latest round of each subject assessed, by subject; ``about`` a cycle keeps the
    assessments of that cycle (``cycle:ID``) and of the knowledge object it deploys."""

    def wanted(subject: str) -> bool:
        if about is None:
            return True
        ko = (about.knowledge_ref or "").partition("@")[0]
        return subject == f"cycle:{about.id}" or bool(ko and subject.partition("@")[0] == ko)

    latest: dict[str, NasssRound] = {}
    for r in nasss_profile_of(registry, principal, community_id):  # oldest round first
        if wanted(r.subject):
            latest[r.subject] = r
    return tuple(latest[k] for k in sorted(latest))


def _visible_sites(registry: Registry, principal: Principal, scope: Scope) -> set[str] | None:
    """Codes of the sites whose results the caller may see (None: every site and the
    network's)."""
    if scope == Scope.everything():
        return None
    return {s.code for s in list_sites(registry, principal) if scope.allows_site(s.id)}


def _hidden_sites(cycle: CycleView, visible: set[str] | None) -> str:
    if visible is None:
        return ""
    sites = list(cycle.do["sites"])
    if not sites:
        return "The network's results are shown to people who may see every site's."
    outside = [s for s in sites if s not in visible]
    if outside:
        return f"Results of site(s) {', '.join(outside)} are shown to the people who work there."
    return ""


def _section(cycle: CycleView, study: CycleStudy, titles: Mapping[str, str]) -> CycleSection:
    sites = list(cycle.do["sites"])
    where = (
        f"{'Site' if len(sites) == 1 else 'Sites'} {', '.join(sites)}" if sites else "The network"
    )
    measures = []
    for m in study.measures:
        svg = ""
        if m.chart is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", StatisticalWarning)
                svg = charts.spc.svg(
                    replace(m.chart, title=f"{where}: each month, with the change's new phase"),
                    annotations=[m.annotation],
                    width=620,
                    height=240,
                )
        measures.append(
            MeasureSection(
                m.measure.measure_id, titles.get(m.measure.measure_id, m.measure.measure_id), m, svg
            )
        )
    return CycleSection(cycle, study, tuple(measures))
