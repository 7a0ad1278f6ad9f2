"""The person (or operator) on whose behalf careloop acts, and what they may touch."""

from __future__ import annotations

from dataclasses import dataclass, field

from careloop.core.errors import PermissionDenied
from careloop.store.scoping import Scope
from careloop.trust.policy import ACTIONS, CarerScope, Role, carer_scope_for, grants


@dataclass(frozen=True)
class Grant:
    """One membership: a role at a site (``site_id`` None: installation-wide)."""

    role: Role
    site_id: int | None
    site_code: str | None


@dataclass(frozen=True)
class RequestContext:
    """Where a request came from, for the audit trail."""

    request_id: str | None = None
    client_addr: str | None = None


@dataclass(frozen=True)
class Proxy:
    """A carer's link to one patient, as it holds today (see careloop.trust.handover)."""

    patient_id: int
    scopes: frozenset[CarerScope]
    """What the carer may do for the patient; empty once lapsed at the hand-over age."""
    guardian: bool = False
    """The carer holds ``manage_consent`` and the patient is a child (under the hand-over age):
    they may also decide what the patient's other carers may do."""


@dataclass(frozen=True)
class Principal:
    """An authenticated user with their grants, or the local operator.

    ``patient_id`` is set for a patient's own login; ``proxies`` for a carer.
    """

    user_id: int | None
    email: str
    grants: tuple[Grant, ...]
    patient_id: int | None = None
    proxies: tuple[Proxy, ...] = ()
    is_operator: bool = False
    context: RequestContext = field(default_factory=RequestContext)

    @classmethod
    def operator(cls, name: str = "operator", context: RequestContext | None = None) -> Principal:
        """The person at the server's command line, who owns the data directory."""
        return cls(
            user_id=None,
            email=f"cli:{name}",
            grants=(Grant("admin", None, None),),
            is_operator=True,
            context=context or RequestContext(),
        )

    @property
    def proxied_patient_ids(self) -> tuple[int, ...]:
        """The patients this carer is linked to (whatever their scopes)."""
        return tuple(p.patient_id for p in self.proxies)

    def proxy_for(self, patient_id: int) -> Proxy | None:
        """This carer's link to ``patient_id``, or None."""
        return next((p for p in self.proxies if p.patient_id == patient_id), None)

    def _proxied_for(self, action: str) -> set[int]:
        needed = carer_scope_for(action)
        return {p.patient_id for p in self.proxies if needed is None or needed in p.scopes}

    @property
    def roles(self) -> tuple[Role, ...]:
        return tuple(dict.fromkeys(g.role for g in self.grants))

    def role_label(self) -> str:
        """Roles as recorded in the audit trail, e.g. ``clinician@RCH,analyst``."""
        return ",".join(f"{g.role}@{g.site_code}" if g.site_code else g.role for g in self.grants)

    def may(self, action: str) -> bool:
        """Whether any of the user's grants allows ``action`` somewhere."""
        return any(grants(g.role, action) is not None for g in self.grants)

    def scope_for(self, action: str) -> Scope:
        """The rows this principal may touch for ``action`` (empty when none)."""
        if action not in ACTIONS:
            raise KeyError(f"unknown action {action!r}")
        if self.is_operator:
            return Scope.everything()
        site_ids: set[int] = set()
        everywhere = False
        patient_ids: set[int] = set()
        for grant in self.grants:
            kind = grants(grant.role, action)
            if kind is None:
                continue
            if kind == "installation" or (kind == "site" and grant.site_id is None):
                everywhere = True
            elif kind == "site" and grant.site_id is not None:
                site_ids.add(grant.site_id)
            elif kind == "own_record" and self.patient_id is not None:
                patient_ids.add(self.patient_id)
            elif kind == "proxied_records":
                patient_ids.update(self._proxied_for(action))
        if everywhere:
            return Scope.everything()
        if site_ids:
            # A staff member who is also a patient elsewhere keeps the site scope only:
            # the narrower reading, never a mix that widens either.
            return Scope(site_ids=tuple(sorted(site_ids)))
        if patient_ids:
            return Scope(site_ids=None, patient_ids=tuple(sorted(patient_ids)))
        return Scope.nothing()

    def require(self, action: str) -> Scope:
        """The scope for ``action``; PermissionDenied when the principal has none."""
        scope = self.scope_for(action)
        if scope == Scope.nothing():
            raise PermissionDenied(
                f"Your role ({self.role_label() or 'none'}) does not allow "
                f"{ACTIONS[action].description[0].lower()}{ACTIONS[action].description[1:]}"
            )
        return scope
