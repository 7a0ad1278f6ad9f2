"""Impact and audit-and-feedback reports as one call each: permission, data, report.

Both read the latest stored measure run from the warehouse and the CDS card
events from the registry; the pages and the CLI render what these return.
"""

from __future__ import annotations

import pandas as pd

from careloop.core.errors import InputError, NotFound
from careloop.core.settings import Settings
from careloop.knowledge.library import show
from careloop.measures import load_results
from careloop.practice.events import card_events
from careloop.practice.feedback.audit_feedback import AuditFeedbackReport, audit_feedback_report
from careloop.practice.feedback.impact import ImpactReport, impact_report
from careloop.store.database import Registry
from careloop.trust.identity import list_sites
from careloop.trust.principal import Principal
from careloop.warehouse.connection import Warehouse


def _results(settings: Settings) -> pd.DataFrame:
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        return load_results(warehouse).fillna({"site": "", "stratum": ""})


def impact_for(
    settings: Settings,
    registry: Registry,
    principal: Principal,
    ref: str,
    *,
    measure_id: str | None = None,
    site: str = "",
) -> ImpactReport:
    """The impact report of a knowledge object's latest deployment on one of its measures."""
    detail = show(registry, principal, ref)
    if not detail.deployments:
        raise InputError(f"{detail.version.ref} has never been deployed, so it has no impact yet.")
    deployment = detail.deployments[-1]
    measure = measure_id or (deployment.measures[0] if deployment.measures else None)
    if measure is None:
        raise InputError(f"{detail.version.ref} names no measure it should move; give one.")
    arms = next(iter(detail.package.trials().values()), None)
    return impact_report(
        deployment,
        _results(settings),
        measure_id=measure,
        site=site,
        card_events=card_events(registry),
        variant_arms=arms.arms[:2] if arms else None,
    )


def feedback_for(
    settings: Settings, registry: Registry, principal: Principal, *, site: str, measure_id: str
) -> AuditFeedbackReport:
    """A site's audit-and-feedback report on one measure (for people who work at that site)."""
    if not principal.scope_for("patient.read_pseudonymised").allows_site(
        next((s.id for s in list_sites(registry, principal) if s.code == site), -1)
    ):
        raise NotFound(f"There is no site {site!r} whose feedback report you can see.")
    events = card_events(registry)
    return audit_feedback_report(
        _results(settings),
        measure_id=measure_id,
        site=site,
        card_events=events[events.site_code == site] if not events.empty else events,
    )
