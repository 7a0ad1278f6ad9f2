"""What the home page shows each role: the part of the work that waits for them.

- a clinician (anyone who enters records): their unfinished drafts and the
  patients they worked on last (:func:`careloop.capture.my_work.my_work`);
- a site lead: each of their sites' measures that need attention in the
  latest measure run (:mod:`careloop.practice.feedback.attention`) and the
  PROM invitations still open (:func:`careloop.capture.prom_log.completion_by_month`);
- a member of a learning community: the open proposals they have not voted on
  and their unanswered invitations (:mod:`careloop.community.waiting`);
- an auditor: whether the audit trail is intact, from the last check of the
  chain (the one the audit page shows; the home page never waits for a walk);
- the admin: the admin pages.

Each part reads stored results or one indexed query; none recomputes a measure.
A part that cannot be shown (no measure run yet) says why instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from careloop.capture.my_work import my_work
from careloop.capture.prom_log import completion_by_month
from careloop.community.waiting import waiting_for_me
from careloop.core.errors import NotFound
from careloop.core.settings import Settings
from careloop.practice.feedback import dashboards
from careloop.practice.feedback.attention import SiteAttention, site_attention
from careloop.store.database import Registry
from careloop.trust.auditing import ChainStatusCache
from careloop.trust.principal import Principal
from careloop.warehouse.connection import WarehouseOpener
from careloop.web.pages.admin import ADMIN_ACTION, SECTIONS
from careloop.web.pages.dashboards import _catalog as measure_catalog

CHAIN_WAIT_SECONDS = 0.2
"""The home page waits at most this long for a first check of the audit chain."""


@dataclass(frozen=True)
class LeadSite:
    """One site of a site lead: what needs attention and the PROMs still open."""

    site: str
    """The site's code."""
    attention: SiteAttention | None
    """Its measures needing attention (None: no measure results for it yet)."""
    why_none: str
    """Why there are no measure results, when there are none."""
    proms_open: int
    """PROM invitations sent and not yet filled in nor expired."""


def _lead_site(
    request: Request, registry: Registry, settings: Settings, principal: Principal, code: str
) -> LeadSite:
    pending = sum(m.pending for m in completion_by_month(registry, principal, site=code))
    opener: WarehouseOpener = request.app.state.warehouse
    try:
        stored = dashboards.stored_results(opener)
        attention = site_attention(stored, measure_catalog(settings), code, principal)
    except NotFound as exc:
        return LeadSite(code, None, exc.message, pending)
    return LeadSite(code, attention, "", pending)


def role_context(
    request: Request, registry: Registry, settings: Settings, principal: Principal
) -> dict[str, Any]:
    """The home page's parts for this principal's roles (absent parts are None)."""
    lead_sites = sorted(
        {g.site_code for g in principal.grants if g.role == "site_lead" and g.site_code}
    )
    chain = None
    if principal.may("audit.read"):
        cache: ChainStatusCache = request.app.state.audit_chain
        chain = cache.status(registry, wait_at_most=CHAIN_WAIT_SECONDS)
    return {
        "work": my_work(registry, principal) if principal.may("record.write") else None,
        "leads": [_lead_site(request, registry, settings, principal, c) for c in lead_sites],
        "waiting": waiting_for_me(registry, principal),
        "auditor": principal.may("audit.read"),
        "chain": chain,
        "admin_sections": SECTIONS if principal.may(ADMIN_ACTION) else (),
    }
