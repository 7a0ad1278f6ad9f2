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

import pandas as pd

from careloop.core.errors import InputError, NotFound
from careloop.knowledge.library import show
from careloop.measures import load_results
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
    people who work there; ``""`` is the network's series with the cards of the
    reader's own sites.
    """
    detail = show(registry, principal, ref)
    if site:
        _require_site(registry, principal, site, "impact", knowledge_object=detail.version.ref)
    if not detail.deployments:
        raise InputError(f"{detail.version.ref} has never been deployed, so it has no impact yet.")
    deployment = detail.deployments[-1]
    measure = measure_id or (deployment.measures[0] if deployment.measures else None)
    if measure is None:
        raise InputError(f"{detail.version.ref} names no measure it should move; give one.")
    arms = next(iter(detail.package.trials().values()), None)
    events = card_events(registry)
    if not events.empty and (site or principal.scope_for(_SITE_ACTION) != Scope.everything()):
        allowed = {site} if site else _visible_sites(registry, principal)
        events = events[events.site_code.isin(allowed)]
    return impact_report(
        deployment,
        stored_results(warehouse),
        measure_id=measure,
        site=site,
        card_events=events,
        variant_arms=arms.arms[:2] if arms else None,
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
