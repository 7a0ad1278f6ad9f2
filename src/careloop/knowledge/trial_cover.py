"""The ethics cover of a randomised test: a knowledge object with card variants needs a cycle.

A knowledge object whose rules carry card ``variants`` randomises
clinicians or patients between wordings (careloop.analysis.trials). Before
it is put into practice it must name the learning cycle that tests it, and
that cycle must record whether the test is quality improvement or research
and the determination covering it — a QI determination, or an ethics
approval for research — with its reference. The purpose under which the
test's data are used (its consent purpose) follows from the cycle, never
from the person deploying.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from careloop.core.errors import ErrorDetail, ValidationFailed
from careloop.knowledge.package import KnowledgePackage
from careloop.store.models import Cycle

__all__ = ["CONSENT_PURPOSES", "TrialCover", "trial_cover"]

CONSENT_PURPOSES: tuple[str, ...] = ("quality_improvement", "research")
"""The consent purposes a test can run under (:mod:`careloop.trust.consent`): a
quality-improvement test needs the patient's consent to quality improvement, a
research test their consent to research, each a choice of its own."""


@dataclass(frozen=True)
class TrialCover:
    """The cycle a randomised test of card variants runs under, and the purpose it gives."""

    cycle_id: int
    trials: tuple[str, ...]
    """The trial names of the package's variant tests."""
    purpose: str
    """The cycle's ``qi`` or ``research``."""
    determination_kind: str
    determination_ref: str
    consent_purpose: str
    """``quality_improvement`` or ``research``: the purpose the test's data are used for."""


def _fix(cycle: str) -> str:
    return (
        f"record it on the cycle first: `careloop cycle determine {cycle} --purpose qi "
        "--determination qi_determination:REFERENCE` (or --purpose research with "
        "ethics_approval:REFERENCE), then activate again with --cycle."
    )


def trial_cover(
    session: Session, package: KnowledgePackage, cycle_id: int | None
) -> TrialCover | None:
    """The cover of the package's variant tests (None when it carries none).

    Raises:
        ValidationFailed: The package randomises and no cycle is named, the
            cycle does not exist, or it records no determination (or research
            without an ethics approval). Nothing has changed.
    """
    trials = tuple(sorted(package.trials()))
    if not trials:
        return None
    ref = f"{package.identifier}@{package.version}"
    if cycle_id is None:
        raise ValidationFailed(
            f"{ref} randomises card variants ({', '.join(trials)}): a randomised test runs "
            "under a learning cycle that records its QI determination or ethics approval. "
            "Name that cycle (--cycle ID); nothing was deployed.",
            [ErrorDetail("cycle", "A randomised test needs its cycle; " + _fix("CYCLE_ID"))],
        )
    cycle = session.get(Cycle, cycle_id)
    if cycle is None:
        raise ValidationFailed(
            f"There is no learning cycle {cycle_id} (`careloop cycle list`); nothing was deployed.",
            [ErrorDetail("cycle", "No such cycle.", cycle_id)],
        )
    missing = not (cycle.determination_kind and cycle.determination_ref)
    research_unapproved = cycle.purpose == "research" and (
        cycle.determination_kind != "ethics_approval"
    )
    if missing or research_unapproved:
        what = (
            "no determination on record"
            if missing
            else "research with no ethics approval on record"
        )
        raise ValidationFailed(
            f"{ref} randomises card variants, and cycle {cycle_id} ({cycle.title!r}) has "
            f"{what}; nothing was deployed.",
            [ErrorDetail("cycle", _fix(str(cycle_id)), cycle_id)],
        )
    assert cycle.determination_kind is not None and cycle.determination_ref is not None
    return TrialCover(
        cycle_id=cycle.id,
        trials=trials,
        purpose=cycle.purpose,
        determination_kind=cycle.determination_kind,
        determination_ref=cycle.determination_ref,
        consent_purpose="research" if cycle.purpose == "research" else "quality_improvement",
    )
