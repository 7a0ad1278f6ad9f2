"""The active services the CDS Hooks service answers with, cached and refreshed on change."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from careloop.knowledge.library.views import (
    Mode,
)
from careloop.knowledge.package import (
    KnowledgePackage,
    package_from_dict,
)
from careloop.store.database import Registry
from careloop.store.models.knowledge import (
    KnowledgeDeployment,
    KnowledgeObjectVersion,
)


@dataclass(frozen=True)
class ActiveService:
    """An active version as the CDS Hooks service needs it."""

    package: KnowledgePackage
    """The package."""
    mode: Mode
    """silent or live."""
    sites: tuple[str, ...]
    """Sites of the current deployment (empty: all)."""
    consent_purpose: str | None = None
    """For a randomised test of card variants, the purpose its data are used for
    (``quality_improvement`` or ``research``, from its learning cycle): a patient is
    allocated only when their consent covers it."""

    def serves_site(self, site_code: str | None) -> bool:
        """Whether the deployment covers the calling client's site."""
        return not self.sites or (site_code is not None and site_code in self.sites)


_PACKAGE_CACHE: dict[str, KnowledgePackage] = {}
ACTIVE_TTL_SECONDS = 2.0
"""How long a process reuses the list of active services (each call needs it).

Changes made in the same process (activate, retire) take effect at once;
changes made by another process (the command line, another worker) within
this many seconds."""
_ACTIVE_CACHE: dict[int, tuple[int, float, dict[str, ActiveService]]] = {}
_GENERATION = [0]


def services_changed() -> None:
    """Make this process reload the active services on the next call."""
    _GENERATION[0] += 1


def active_services(registry: Registry) -> dict[str, ActiveService]:
    """Active versions by service id (packages parsed once per content hash)."""
    cached = _ACTIVE_CACHE.get(id(registry))
    now = time.monotonic()
    if cached and cached[0] == _GENERATION[0] and now - cached[1] < ACTIVE_TTL_SECONDS:
        return cached[2]
    generation = _GENERATION[0]
    out = _load_active(registry)
    _ACTIVE_CACHE[id(registry)] = (generation, now, out)
    return out


def _load_active(registry: Registry) -> dict[str, ActiveService]:
    out: dict[str, ActiveService] = {}
    with registry.transaction() as session:
        rows = session.execute(
            select(
                KnowledgeObjectVersion.id,
                KnowledgeObjectVersion.service_id,
                KnowledgeObjectVersion.package_sha256,
                KnowledgeObjectVersion.mode,
            ).where(KnowledgeObjectVersion.status == "active")
        ).all()
        current: dict[int, tuple[Any, str | None]] = {
            version_id: (sites, purpose)
            for version_id, sites, purpose in session.execute(
                select(
                    KnowledgeDeployment.ko_version_id,
                    KnowledgeDeployment.sites,
                    KnowledgeDeployment.consent_purpose,
                ).where(KnowledgeDeployment.ended_at.is_(None))
            ).all()
        }
        for version_id, service_id, sha, mode in rows:
            package = _PACKAGE_CACHE.get(sha)
            if package is None:
                text = session.scalar(
                    select(KnowledgeObjectVersion.package).where(
                        KnowledgeObjectVersion.id == version_id
                    )
                )
                package = package_from_dict(json.loads(text or "{}"))
                _PACKAGE_CACHE[sha] = package
            out[service_id] = ActiveService(
                package=package,
                mode="silent" if mode == "silent" else "live",
                sites=tuple(json.loads(current.get(version_id, (None, None))[0] or "[]")),
                consent_purpose=current.get(version_id, (None, None))[1],
            )
    return out
