"""Impact and audit-and-feedback reports as one call each: permission, data, report.

Both read the latest stored measure run from the warehouse and the CDS card
events from the registry; the pages and the CLI render what these return.

Both are scoped the same way, on the server: a site's report (its series, its
clinicians' card feedback) is for people who may read that site's
pseudonymised records; anyone else is told there is no such report (404, as
for a record of another site, so the answer does not confirm the site) and
the refusal is audited. A network-wide impact report shows the network's
series (measure results are aggregates every staff role sees) and card
acceptance of the sites the reader works at only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd

from careloop.core.errors import InputError, NotFound
from careloop.knowledge.library import Deployment, VersionDetail, show
from careloop.measures import latest_runs, load_results
from careloop.measures.catalog import load_catalog
from careloop.measures.definition import MeasureDefinition
from careloop.practice.events import card_events
from careloop.practice.feedback.audit_feedback import AuditFeedbackReport, audit_feedback_report
from careloop.practice.feedback.impact import ImpactReport, impact_report
from careloop.store.database import Registry
from careloop.store.scoping import Scope
from careloop.trust.audit import AuditEvent
from careloop.trust.identity import list_sites
from careloop.trust.principal import Principal
from careloop.trust.work import record_events
from careloop.warehouse.connection import WarehouseOpener

T = TypeVar("T")

_SITE_ACTION = "patient.read_pseudonymised"
"""The action whose site scope decides whose reports a person sees."""


_RESULTS: dict[tuple[str, str], pd.DataFrame] = {}
_RESULTS_LOCK = threading.Lock()


def stored_results(warehouse: WarehouseOpener) -> pd.DataFrame:
    """The latest stored measure results, an unstratified or network-wide row's
    ``stratum`` and ``site`` as ``""``; NotFound (saying how to make them) when there are none.

    Read once per measure run: a report page asks only which run is the latest (a new run
    is read afresh). Callers must not change the frame.
    """
    return _stored(warehouse)[1]


def _stored(warehouse: WarehouseOpener) -> tuple[tuple[str, str], pd.DataFrame]:
    """The latest run's key (warehouse, runs) and its results."""
    opened = warehouse()
    if opened is None:
        raise NotFound(
            "No measure results yet: they come from `careloop warehouse refresh` and "
            "`careloop measures run --by site`."
        )
    with opened:
        latest = latest_runs(opened)
        key = (opened.url, latest.key)
        with _RESULTS_LOCK:
            cached = _RESULTS.get(key)
        if cached is not None:
            return key, cached
        frame = load_results(opened, latest=latest).fillna({"site": "", "stratum": ""})
    with _RESULTS_LOCK:
        _RESULTS.clear()  # the latest run only
        _RESULTS[key] = frame
    return key, frame


_REPORTS: dict[Hashable, Any] = {}
_REPORTS_LOCK = threading.Lock()
REPORTS_KEPT = 256
"""Computed reports kept in memory (each is a few kilobytes)."""


def _fingerprint(events: pd.DataFrame) -> Hashable:
    """What identifies the decision-support events a report is made from."""
    if events.empty:
        return 0
    return (len(events), int(pd.util.hash_pandas_object(events.astype(str), index=False).sum()))


def _remembered(key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, kept for ``key``: the key holds everything the report is made from
    (the measure run, the events the reader may see, what was asked), so a reader only
    gets a report made from what they may see, and a new run or event makes a new one."""
    with _REPORTS_LOCK:
        if key in _REPORTS:
            return cast("T", _REPORTS[key])
    value = compute()
    with _REPORTS_LOCK:
        if len(_REPORTS) >= REPORTS_KEPT:
            _REPORTS.clear()
        _REPORTS[key] = value
    return value


_CATALOGS: dict[str, dict[str, MeasureDefinition]] = {}


def measure_catalog(measures_dir: Path | str | None) -> dict[str, MeasureDefinition]:
    """The measures by id (built-ins and ``measures_dir``'s), parsed once per folder as the
    dashboards do."""
    key = str(measures_dir or "")
    if key not in _CATALOGS:
        folder = Path(measures_dir) if measures_dir else None
        _CATALOGS[key] = {m.id: m for m in load_catalog(measures_dir=folder).measures}
    return _CATALOGS[key]


def _visible_sites(registry: Registry, principal: Principal) -> set[str]:
    """Codes of the sites whose reports ``principal`` may see."""
    scope = principal.scope_for(_SITE_ACTION)
    return {s.code for s in list_sites(registry, principal) if scope.allows_site(s.id)}


def may_see_site_report(registry: Registry, principal: Principal, site: str) -> bool:
    """Whether ``principal`` may open ``site``'s audit-and-feedback report, so that a page
    links it only for those it opens for (asking reads nothing, so it is not audited)."""
    return site in _visible_sites(registry, principal)


def _require_site(
    registry: Registry, principal: Principal, site: str, report: str, **details: str
) -> None:
    """Refuse (NotFound, audited) a site report the principal may not see."""
    if site in _visible_sites(registry, principal):
        return
    context = principal.context
    record_events(
        registry,
        [
            AuditEvent(
                action="read",
                category="report",
                outcome="not_found",
                user_id=principal.user_id,
                user_email=principal.email,
                role=principal.role_label() or None,
                # Only a real site's code: the trail must not hold whatever was typed.
                site_code=site
                if site in {s.code for s in list_sites(registry, principal)}
                else None,
                request_id=context.request_id,
                client_addr=context.client_addr,
                details={"report": report, **details},
            )
        ],
    )
    raise NotFound(f"There is no site {site!r} whose {report} report you can see.")


@dataclass(frozen=True)
class MeasureImpact:
    """A deployment's impact on one of the measures it targets."""

    measure_id: str
    """The measure."""
    title: str
    """Its title (the id when the catalogue does not know it)."""
    report: ImpactReport | None
    """The before-and-after analysis; None when it could not be made (see ``reading``)."""
    reading: str
    """What changed, in plain words, or why there is nothing to show."""


@dataclass(frozen=True)
class KnowledgeImpact:
    """A knowledge object's latest deployment and its impact on every measure it targets."""

    ref: str
    """identifier@version."""
    title: str
    """The knowledge object's title."""
    deployment: Deployment
    """The latest deployment."""
    site: str
    """The site the reader narrowed to (``""``: the deployment's sites, or the network)."""
    measures: tuple[MeasureImpact, ...]
    """One entry per target measure, in the order the knowledge object names them."""


def _deployment_of(
    registry: Registry, principal: Principal, ref: str, site: str
) -> tuple[VersionDetail, Deployment]:
    """The knowledge object's detail and latest deployment, the site checked first."""
    detail = show(registry, principal, ref)
    if site:
        _require_site(registry, principal, site, "impact", knowledge_object=detail.version.ref)
    if not detail.deployments:
        raise InputError(f"{detail.version.ref} has never been deployed, so it has no impact yet.")
    return detail, detail.deployments[-1]


def _readers_events(registry: Registry, principal: Principal, site: str) -> pd.DataFrame:
    """Card events of ``site``, or of the sites the reader may see."""
    events = card_events(registry)
    if not events.empty and (site or principal.scope_for(_SITE_ACTION) != Scope.everything()):
        allowed = {site} if site else _visible_sites(registry, principal)
        events = events[events.site_code.isin(allowed)]
    return events


def _one_impact(
    detail: VersionDetail,
    deployment: Deployment,
    results: pd.DataFrame,
    events: pd.DataFrame,
    measure: str,
    site: str,
) -> ImpactReport:
    arms = next(iter(detail.package.trials().values()), None)
    return impact_report(
        deployment,
        results,
        measure_id=measure,
        site=site,
        card_events=events,
        variant_arms=arms.arms[:2] if arms else None,
        pool_sites=deployment.sites,
    )


def impact_for(
    registry: Registry,
    warehouse: WarehouseOpener,
    principal: Principal,
    ref: str,
    *,
    measure_id: str | None = None,
    site: str = "",
) -> ImpactReport:
    """The impact report of a knowledge object's latest deployment on one of its measures.

    ``site`` (a site code) narrows the series and the cards to that site, for
    people who work there; ``""`` is the series of the sites the deployment went
    live at, added up (the network's, when it went live everywhere), with the
    cards of the reader's own sites.
    """
    detail, deployment = _deployment_of(registry, principal, ref, site)
    measure = measure_id or (deployment.measures[0] if deployment.measures else None)
    if measure is None:
        raise InputError(f"{detail.version.ref} names no measure it should move; give one.")
    events = _readers_events(registry, principal, site)
    return _one_impact(detail, deployment, stored_results(warehouse), events, measure, site)


def impacts_for(
    registry: Registry,
    warehouse: WarehouseOpener,
    principal: Principal,
    ref: str,
    *,
    site: str = "",
    measures_dir: Path | str | None = None,
) -> KnowledgeImpact:
    """A knowledge object's latest deployment on every measure it targets, each read in
    plain words with the measure's better direction (from the measure catalogue in
    ``measures_dir``). A measure without results says so instead of failing the page."""
    detail, deployment = _deployment_of(registry, principal, ref, site)
    events = _readers_events(registry, principal, site)
    run, results = _stored(warehouse)
    key = ("impact", run, detail.version.ref, repr(deployment), site, str(measures_dir or ""))
    return _remembered(
        (*key, _fingerprint(events)),
        lambda: _impacts(detail, deployment, results, events, site, measures_dir),
    )


def _impacts(
    detail: VersionDetail,
    deployment: Deployment,
    results: pd.DataFrame,
    events: pd.DataFrame,
    site: str,
    measures_dir: Path | str | None,
) -> KnowledgeImpact:
    catalog = measure_catalog(measures_dir)
    shown = []
    for measure in deployment.measures:
        known = catalog.get(measure)
        title = known.title if known is not None else measure
        try:
            report = _one_impact(detail, deployment, results, events, measure, site)
        except InputError as exc:
            shown.append(MeasureImpact(measure, title, None, f"Nothing to show yet: {exc.message}"))
            continue
        improvement = known.improvement if known is not None else "up"
        shown.append(MeasureImpact(measure, title, report, report.reading(improvement)))
    return KnowledgeImpact(
        ref=detail.version.ref,
        title=detail.version.title,
        deployment=deployment,
        site=site,
        measures=tuple(shown),
    )


def feedback_for(
    registry: Registry,
    warehouse: WarehouseOpener,
    principal: Principal,
    *,
    site: str,
    measure_id: str,
) -> AuditFeedbackReport:
    """A site's audit-and-feedback report on one measure (for people who work at that site)."""
    _require_site(registry, principal, site, "feedback", measure=measure_id)
    events = card_events(registry)
    mine = events[events.site_code == site] if not events.empty else events
    run, results = _stored(warehouse)
    return _remembered(
        ("feedback", run, site, measure_id, _fingerprint(mine)),
        lambda: audit_feedback_report(results, measure_id=measure_id, site=site, card_events=mine),
    )
