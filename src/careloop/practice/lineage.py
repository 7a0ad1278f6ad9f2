"""Where a decision-support card came from: the card, then its provenance chain to the source files.

A card is produced by a deployed version of a knowledge object. The version
names its evidence (``evidence: - ref: provenance:<id>``: a measure run, an
analysis), each of those names what it read (the warehouse's last refresh
and the loads since), and each load names its input files with their SHA-256.
:func:`card_lineage` walks that chain from one card: the deployment that was
live when the card was made, the version, its evidence, and so on back to the
files. Nothing is copied into a card: the chain is the registry's one
provenance record, followed by its parents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from careloop.core.clock import as_utc
from careloop.core.errors import NotFound
from careloop.store.database import Registry
from careloop.store.models import Site
from careloop.store.models.knowledge import CdsCard, CdsInvocation
from careloop.trust.principal import Principal
from careloop.trust.provenance import Provenance, find_provenance, lineage
from careloop.trust.work import unit_of_work
from careloop.warehouse.refresh import LOAD_ACTIVITIES

__all__ = ["CardLineage", "card_lineage"]


@dataclass(frozen=True)
class CardLineage:
    """One card and the provenance chain behind it, nearest first."""

    card: dict[str, Any]
    """The card: uuid, knowledge object and version, site, when, shown, indicator, summary."""
    chain: tuple[Provenance, ...]
    """The deployment live when the card was made (if recorded), the version, its evidence,
    and their parents back to the loads of source files."""

    @property
    def files(self) -> tuple[tuple[str, str | None], ...]:
        """The source files and registry snapshots the chain ends in, with their SHA-256."""
        sources = {*LOAD_ACTIVITIES.values(), "warehouse.refresh"}
        return tuple(
            dict.fromkeys(
                (i.name, i.sha256)
                for e in self.chain
                if e.activity in sources
                for i in e.inputs
                if i.sha256
            )
        )


def _starting_point(registry: Registry, ref: str, at: datetime) -> Provenance | None:
    deployments = [
        e
        for e in find_provenance(registry, activities=["knowledge.deploy"], target=ref)
        if e.started_at <= at
    ]
    if deployments:
        return deployments[-1]
    versions = find_provenance(registry, activities=["knowledge.version"], target=ref)
    return versions[-1] if versions else None


def card_lineage(registry: Registry, principal: Principal, card_uuid: str) -> CardLineage:
    """The card ``card_uuid`` and its provenance chain.

    Needs ``knowledge.read`` at the card's site (a card made outside any site
    is visible to whoever may read knowledge anywhere). A card the caller may
    not see is reported as not found, like one that does not exist.
    """
    with unit_of_work(registry, principal, "knowledge.read") as work:
        # Declared first so that a refusal (not found, another site's card) is audited.
        work.expect("provenance.read", "knowledge", details={"card": card_uuid[:64]})
        found = work.session.execute(
            select(CdsCard, CdsInvocation)
            .join(CdsInvocation, CdsInvocation.id == CdsCard.invocation_id)
            .where(CdsCard.uuid == card_uuid)
        ).first()
        site_id = None
        if found is not None and found[1].site_code is not None:
            site_id = work.session.scalar(select(Site.id).where(Site.code == found[1].site_code))
        visible = found is not None and (site_id is None or work.scope.allows_site(site_id))
        if not visible or found is None:
            raise NotFound(f"There is no card {card_uuid!r} that you can see.")
        card, invocation = found
        at = as_utc(invocation.received_at)
        summary = {
            "uuid": card.uuid,
            "knowledge_object": card.ko_identifier,
            "version": card.ko_version,
            "rule": card.rule_id,
            "site": invocation.site_code,
            "at": at.isoformat(),
            "mode": invocation.mode,
            "shown": card.shown,
            "indicator": card.indicator,
            "summary": card.summary,
        }
    start = _starting_point(registry, f"{card.ko_identifier}@{card.ko_version}", at)
    chain = tuple(lineage(registry, start.id)) if start is not None else ()
    return CardLineage(summary, chain)
