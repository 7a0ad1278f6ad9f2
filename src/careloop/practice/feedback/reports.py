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

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from careloop.core.errors import InputError, NotFound
from careloop.knowledge.library import Deployment, VersionDetail, show
from careloop.measures import load_results
from careloop.measures.catalog import load_catalog
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

_SITE_ACTION = "patient.read_pseudonymised"
"""The action whose site scope decides whose reports a person sees."""


def stored_results(warehouse: WarehouseOpener) -> pd.DataFrame:
    """The latest stored measure results, an unstratified or network-wide row's
    ``stratum`` and ``site`` as ``""``; NotFound (saying how to make them) when there are none.
    """
    opened = warehouse()
    if opened is None:
        raise NotFound(
            "No measure results yet: they come from `careloop warehouse refresh` and "
            "`careloop measures run --by site`."
        )
    with opened:
        return load_results(opened).fillna({"site": "", "stratum": ""})


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
    results = stored_results(warehouse)
    catalog = {m.id: m for m in load_catalog(measures_dir=measures_dir).measures}
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
    return audit_feedback_report(
        stored_results(warehouse),
        measure_id=measure_id,
        site=site,
        card_events=events[events.site_code == site] if not events.empty else events,
    )
