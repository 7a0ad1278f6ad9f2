"""A learning community's charter (terms of reference), co-designed and versioned.

The charter says why the community exists, its goals, its decision rule
(consensus, majority with a quorum, named approvers, with or without a
required patient or carer reviewer), how often it meets and what members
agree about the data they see. The founding charter is version 1; each
charter change a community adopts by its own rule
(:mod:`careloop.community.proposals`) adds the next version, and the
history is kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from careloop.community._access import loads
from careloop.community.rules import RULES
from careloop.core.clock import as_utc
from careloop.core.errors import ErrorDetail, ValidationFailed
from careloop.store.models import CharterVersion, User


@dataclass(frozen=True)
class CharterTerms:
    """What a charter says: the input of a new community or of a charter change."""

    purpose: str
    """Why the community exists."""
    decision_rule: str
    """consensus, majority or named_approvers."""
    goals: tuple[str, ...] = ()
    """Its goals, in words."""
    quorum: float = 0.5
    """Share of active members who must vote (consensus and majority)."""
    approvers: tuple[str, ...] = ()
    """E-mail addresses of the named approvers (named_approvers)."""
    requires_patient_reviewer: bool = False
    """A patient or carer member must vote yes for anything to pass."""
    meeting_cadence: str = ""
    """How often it meets, e.g. "monthly, first Tuesday"."""
    data_access_agreement: str = ""
    """What members agree about the data they see (aggregates only, no patient data)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "decision_rule": self.decision_rule,
            "goals": list(self.goals),
            "quorum": self.quorum,
            "approvers": list(self.approvers),
            "requires_patient_reviewer": self.requires_patient_reviewer,
            "meeting_cadence": self.meeting_cadence,
            "data_access_agreement": self.data_access_agreement,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharterTerms:
        return cls(
            purpose=str(data.get("purpose", "")),
            decision_rule=str(data.get("decision_rule", "")),
            goals=tuple(str(g) for g in data.get("goals", [])),
            quorum=float(data.get("quorum", 0.5)),
            approvers=tuple(str(a) for a in data.get("approvers", [])),
            requires_patient_reviewer=bool(data.get("requires_patient_reviewer", False)),
            meeting_cadence=str(data.get("meeting_cadence", "")),
            data_access_agreement=str(data.get("data_access_agreement", "")),
        )


@dataclass(frozen=True)
class CharterView:
    """One version of a community's charter."""

    number: int
    """1 for the founding charter, then one more per adopted change."""
    purpose: str
    goals: list[str]
    decision_rule: str
    quorum: float
    approvers: list[str]
    """E-mail addresses of the named approvers."""
    requires_patient_reviewer: bool
    meeting_cadence: str
    data_access_agreement: str
    adopted_at: datetime
    adopted_by: str
    adopted_by_proposal: int | None
    """The charter_change proposal that adopted it (None: the founding charter)."""


def charter_view(session: Session, row: CharterVersion) -> CharterView:
    ids = loads(row.approvers, [])
    emails = dict(session.execute(select(User.id, User.email).where(User.id.in_(ids))).all())
    return CharterView(
        number=row.number,
        purpose=row.purpose,
        goals=loads(row.goals, []),
        decision_rule=row.decision_rule,
        quorum=row.quorum,
        approvers=[emails.get(i, f"user {i}") for i in ids],
        requires_patient_reviewer=row.requires_patient_reviewer,
        meeting_cadence=row.meeting_cadence,
        data_access_agreement=row.data_access_agreement,
        adopted_at=as_utc(row.adopted_at),
        adopted_by=row.adopted_by,
        adopted_by_proposal=row.adopted_by_proposal_id,
    )


def check_terms(session: Session, terms: CharterTerms, *, prefix: str = "charter") -> list[int]:
    """Validate charter terms; returns the approvers' user ids.

    Raises ValidationFailed naming each bad field; nothing is written.
    """
    problems: list[ErrorDetail] = []
    if not terms.purpose.strip():
        problems.append(ErrorDetail(f"{prefix}.purpose", "Say why the community exists."))
    if terms.decision_rule not in RULES:
        problems.append(
            ErrorDetail(
                f"{prefix}.decision_rule",
                f"The decision rule is one of {', '.join(RULES)}.",
                terms.decision_rule,
            )
        )
    if not 0 < terms.quorum <= 1:
        problems.append(
            ErrorDetail(
                f"{prefix}.quorum",
                "The quorum is the share of members who must vote: more than 0, at most 1 "
                "(0.5 is half).",
                terms.quorum,
            )
        )
    approver_ids: list[int] = []
    for i, email in enumerate(terms.approvers):
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            problems.append(
                ErrorDetail(f"{prefix}.approvers[{i}]", "There is no careloop user by that e-mail.")
            )
        else:
            approver_ids.append(user.id)
    if terms.decision_rule == "named_approvers" and not terms.approvers:
        problems.append(
            ErrorDetail(
                f"{prefix}.approvers", "A named_approvers rule names at least one approver."
            )
        )
    if problems:
        raise ValidationFailed("The charter is not valid; nothing was changed.", problems)
    return sorted(set(approver_ids))


def add_charter_version(
    session: Session,
    community_id: int,
    terms: CharterTerms,
    approver_ids: Sequence[int],
    *,
    adopted_by: str,
    proposal_id: int | None,
) -> CharterVersion:
    number = (
        session.scalar(
            select(func.max(CharterVersion.number)).where(
                CharterVersion.community_id == community_id
            )
        )
        or 0
    ) + 1
    row = CharterVersion(
        community_id=community_id,
        number=number,
        purpose=terms.purpose.strip(),
        goals=json.dumps([g.strip() for g in terms.goals if g.strip()]),
        decision_rule=terms.decision_rule,
        quorum=terms.quorum,
        approvers=json.dumps(list(approver_ids)),
        requires_patient_reviewer=terms.requires_patient_reviewer,
        meeting_cadence=terms.meeting_cadence.strip(),
        data_access_agreement=terms.data_access_agreement.strip(),
        adopted_by=adopted_by,
        adopted_by_proposal_id=proposal_id,
    )
    session.add(row)
    session.flush()
    return row
