"""Who sees the dashboards, and whose patient lists they may open."""

from __future__ import annotations

from collections.abc import Sequence

from careloop.core.errors import PermissionDenied
from careloop.measures.runner import NO_SITE
from careloop.trust.policy import ROLES, Role, grants
from careloop.trust.principal import Principal

DASHBOARD_ROLES: frozenset[Role] = frozenset(
    role for role in ROLES if grants(role, "measure.read") is not None
)
"""Roles that see the dashboards (``measure.read`` in the policy): every staff role."""


def may_see_dashboards(principal: Principal) -> bool:
    """Whether the principal sees the measure dashboards (any staff role)."""
    return principal.is_operator or any(g.role in DASHBOARD_ROLES for g in principal.grants)


def require_dashboards(principal: Principal) -> None:
    """PermissionDenied unless the principal holds a staff role."""
    if not may_see_dashboards(principal):
        raise PermissionDenied(
            f"Your role ({principal.role_label() or 'none'}) does not see the measure "
            "dashboards; they are for the care teams, site leads and analysts."
        )


def patient_list_sites(principal: Principal, sites: Sequence[str]) -> tuple[str, ...]:
    """Of ``sites``, those whose patient lists the principal may open (``record.read`` there)."""
    allowed: set[str] = set()
    for g in principal.grants:
        if grants(g.role, "record.read") != "site":
            continue
        if g.site_code is None:
            return tuple(s for s in sites if s != NO_SITE)
        allowed.add(g.site_code)
    if principal.is_operator:
        return tuple(s for s in sites if s != NO_SITE)
    return tuple(s for s in sites if s in allowed)
