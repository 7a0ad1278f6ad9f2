"""Decision rules: what a charter's rule makes of a proposal's votes (pure functions).

A charter decides by one of three rules, optionally with a patient or
carer reviewer:

- ``consensus``: nobody votes no, at least one member votes yes, and at
  least the quorum share of the active members has voted (abstaining
  counts as taking part);
- ``majority``: at least the quorum share of the active members has voted,
  and more members vote yes than no (a tie fails);
- ``named_approvers``: every named approver who is still a member votes
  yes; only they (and, where the charter requires one, patient and carer
  members as reviewers) vote.

``requires_patient_reviewer`` adds: at least one member with the community
role patient or carer votes yes. Patients' and carers' votes are always
also counted as a group, so their voice is visible in every tally.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Rule = Literal["consensus", "majority", "named_approvers"]
Choice = Literal["yes", "no", "abstain"]

RULES: tuple[Rule, ...] = ("consensus", "majority", "named_approvers")
CHOICES: tuple[Choice, ...] = ("yes", "no", "abstain")
LIVED_EXPERIENCE_ROLES = frozenset({"patient", "carer"})
"""Community roles whose votes are reported as one group."""


@dataclass(frozen=True)
class RuleSpec:
    """The decision rule of a charter version."""

    rule: Rule
    """consensus, majority or named_approvers."""
    quorum: float
    """Share (0–1) of active members who must vote (consensus and majority)."""
    approvers: tuple[int, ...]
    """User ids of the named approvers."""
    requires_patient_reviewer: bool
    """Whether a patient or carer member must vote yes."""


@dataclass(frozen=True)
class Ballot:
    """One vote as the rule sees it."""

    user_id: int
    choice: Choice
    roles: tuple[str, ...]
    """The voter's community roles."""


@dataclass(frozen=True)
class Outcome:
    """What the rule makes of the votes."""

    passed: bool
    """Whether the proposal passes."""
    reason: str
    """Why, in words a member reads."""
    tally: dict[str, int]
    """yes, no, abstain over every vote."""
    patients_and_carers: dict[str, int]
    """yes, no, abstain of members who are patients or carers."""
    others: dict[str, int]
    """yes, no, abstain of the other members."""
    eligible: int
    """Active members when the outcome was computed."""
    needed_to_vote: int
    """How many had to vote for the quorum (0 for named approvers)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "tally": self.tally,
            "patients_and_carers": self.patients_and_carers,
            "others": self.others,
            "eligible": self.eligible,
            "needed_to_vote": self.needed_to_vote,
        }


def _count(ballots: Sequence[Ballot]) -> dict[str, int]:
    return {c: sum(1 for b in ballots if b.choice == c) for c in CHOICES}


def is_lived_experience(roles: Collection[str]) -> bool:
    """Whether a member votes as a patient or carer."""
    return bool(LIVED_EXPERIENCE_ROLES.intersection(roles))


def may_vote(spec: RuleSpec, user_id: int, roles: Collection[str]) -> bool:
    """Whether the rule gives this member a vote (everyone but under named approvers)."""
    if spec.rule != "named_approvers":
        return True
    return user_id in spec.approvers or (
        spec.requires_patient_reviewer and is_lived_experience(roles)
    )


def decide(spec: RuleSpec, ballots: Sequence[Ballot], active_members: Collection[int]) -> Outcome:
    """The outcome of ``ballots`` under ``spec``, with ``active_members`` (user ids) eligible.

    Votes of people who are no longer members do not count.
    """
    members = set(active_members)
    counted = [b for b in ballots if b.user_id in members and may_vote(spec, b.user_id, b.roles)]
    tally = _count(counted)
    lived = _count([b for b in counted if is_lived_experience(b.roles)])
    others = _count([b for b in counted if not is_lived_experience(b.roles)])
    eligible = len(members)
    needed = 0 if spec.rule == "named_approvers" else max(1, math.ceil(spec.quorum * eligible))
    voted = len(counted)

    def result(passed: bool, reason: str) -> Outcome:
        return Outcome(passed, reason, tally, lived, others, eligible, needed)

    if spec.rule == "named_approvers":
        approvers = [a for a in spec.approvers if a in members]
        if not approvers:
            return result(False, "The charter names no approver who is still a member.")
        yes = {b.user_id for b in counted if b.choice == "yes"}
        missing = [a for a in approvers if a not in yes]
        if missing:
            return result(
                False, f"{len(missing)} of {len(approvers)} named approvers have not voted yes."
            )
        reason = f"All {len(approvers)} named approvers voted yes."
    elif voted < needed:
        return result(
            False,
            f"Only {voted} of {eligible} members voted; the quorum needs {needed}.",
        )
    elif spec.rule == "consensus":
        if tally["no"]:
            return result(False, f"No consensus: {tally['no']} member(s) voted no.")
        if not tally["yes"]:
            return result(False, "No consensus: nobody voted yes.")
        reason = f"Consensus: {tally['yes']} yes, nobody against, quorum met."
    else:
        if tally["yes"] <= tally["no"]:
            return result(False, f"No majority: {tally['yes']} yes against {tally['no']} no.")
        reason = f"Majority: {tally['yes']} yes against {tally['no']} no, quorum met."
    if spec.requires_patient_reviewer and not lived["yes"]:
        return result(
            False,
            "The charter needs a patient or carer reviewer to vote yes, and none has.",
        )
    if spec.requires_patient_reviewer:
        reason += " A patient or carer reviewer voted yes."
    return result(True, reason)
