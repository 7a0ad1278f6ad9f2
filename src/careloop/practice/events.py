"""CDS activity as tables the warehouse and measures can read.

One row per card the service produced (shown, or logged in silent mode),
with its invocation (when, site, hook, knowledge object version, variant)
and the latest feedback on it (accepted / overridden and why). Acceptance
and override rates by site, clinician, version or variant are group-bys of
this table. The EHR's patient reference is identifiable and left out unless
asked for; linking it to registry patients is the ETL's decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ibis
import pandas as pd
from sqlalchemy import select

from careloop.core.clock import as_utc
from careloop.store.database import Registry
from careloop.store.models.knowledge import CdsCard, CdsFeedback, CdsInvocation

CARD_COLUMNS = (
    "card_uuid",
    "received_at",
    "site_code",
    "service_id",
    "hook",
    "ko_identifier",
    "ko_version",
    "mode",
    "shown",
    "rule_id",
    "variant",
    "indicator",
    "user_ref",
    "outcome",
    "override_code",
    "override_display",
    "accepted_suggestions",
)


def card_events(
    registry: Registry,
    *,
    since: datetime | None = None,
    include_patient_ref: bool = False,
) -> pd.DataFrame:
    """Cards with their invocation and latest feedback, oldest first.

    Args:
        registry: The registry.
        since: Only invocations received at or after this time (UTC).
        include_patient_ref: Add the EHR's patient reference (identifiable).
    """
    with registry.transaction() as session:
        query = (
            select(CdsCard, CdsInvocation)
            .join(CdsInvocation, CdsInvocation.id == CdsCard.invocation_id)
            .order_by(CdsInvocation.received_at, CdsCard.id)
        )
        if since is not None:
            query = query.where(CdsInvocation.received_at >= since)
        pairs = session.execute(query).all()
        card_ids = [card.id for card, _ in pairs]
        latest: dict[int, CdsFeedback] = {}
        for chunk in range(0, len(card_ids), 500):
            ids = card_ids[chunk : chunk + 500]
            for item in session.scalars(
                select(CdsFeedback).where(CdsFeedback.card_id.in_(ids)).order_by(CdsFeedback.id)
            ):
                latest[item.card_id] = item  # later feedback on the same card wins
        rows: list[dict[str, Any]] = []
        for card, invocation in pairs:
            fb = latest.get(card.id)
            row = {
                "card_uuid": card.uuid,
                "received_at": as_utc(invocation.received_at),
                "site_code": invocation.site_code,
                "service_id": card.service_id,
                "hook": invocation.hook,
                "ko_identifier": card.ko_identifier,
                "ko_version": card.ko_version,
                "mode": invocation.mode,
                "shown": card.shown,
                "rule_id": card.rule_id,
                "variant": card.variant,
                "indicator": card.indicator,
                "user_ref": invocation.user_ref,
                "outcome": fb.outcome if fb else None,
                "override_code": fb.override_code if fb else None,
                "override_display": fb.override_display if fb else None,
                "accepted_suggestions": fb.accepted_suggestions if fb else None,
            }
            if include_patient_ref:
                row["patient_ref"] = invocation.patient_ref
            rows.append(row)
    columns = [*CARD_COLUMNS, *(["patient_ref"] if include_patient_ref else [])]
    return pd.DataFrame(rows, columns=columns)


CARD_TABLE = "careloop_cds_card"
"""The warehouse table of card events (no patient references)."""
CARD_SCHEMA = ibis.schema(
    {
        "card_uuid": "string",
        "received_at": "timestamp('UTC')",
        "site_code": "string",
        "service_id": "string",
        "hook": "string",
        "ko_identifier": "string",
        "ko_version": "string",
        "mode": "string",
        "shown": "boolean",
        "rule_id": "string",
        "variant": "string",
        "indicator": "string",
        "user_ref": "string",
        "outcome": "string",
        "override_code": "string",
        "override_display": "string",
        "accepted_suggestions": "string",
    }
)


@dataclass(frozen=True)
class CardEventTables:
    """The card events as a table a warehouse refresh copies from the registry."""

    name: str = "cds_cards"
    schemas: Mapping[str, ibis.Schema] = field(default_factory=lambda: {CARD_TABLE: CARD_SCHEMA})

    def read(self, registry: Registry) -> Mapping[str, pd.DataFrame]:
        """Every card event, without the EHR's patient reference."""
        return {CARD_TABLE: card_events(registry)}
