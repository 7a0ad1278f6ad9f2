"""A community's or a cycle's report as one self-contained HTML page.

Charts are inline SVG drawn by vl-convert; the page has no script and loads
nothing (no fonts, no images from elsewhere), so it can be read offline,
mailed, archived and printed to PDF (:mod:`careloop.practice.community_reports.printing`).
Each effect is given with a reading in plain words, for members who do not
read odds ratios.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import markupsafe

from careloop.analysis import Effect
from careloop.community import DomainProfile, DomainScore
from careloop.community.study import MeasureStudy
from careloop.core.html import render
from careloop.practice.community_reports.gathering import CommunityReport

__all__ = [
    "change_words",
    "effect_reading",
    "maturity_reading",
    "nasss_reading",
    "render_html",
    "write_html",
]

_ROLE_NAMES = {
    "clinician": "Clinicians",
    "patient": "Patients",
    "carer": "Carers",
    "researcher": "Researchers",
    "analyst": "Analysts and data experts",
    "manager": "Managers",
    "policy_maker": "Policy makers",
    "facilitator": "Facilitators",
    "embedded_researcher": "Embedded researchers",
}
_RULE_NAMES = {
    "consensus": "consensus: every member who votes agrees",
    "majority": "a majority of the votes cast, with a quorum",
    "named_approvers": "approval by the named approvers",
}
_ACT_NAMES = {"adopt": "Adopt", "adapt": "Adapt", "abandon": "Abandon"}
_KIND_NAMES = {
    "process": "A process change",
    "change_package": "A change package",
    "policy": "A policy",
    "training": "A training",
    "knowledge_deployment": "A knowledge object put into practice",
}
_DETERMINATION_NAMES = {
    "qi_determination": "quality improvement determination",
    "ethics_approval": "ethics approval",
}


_NASSS_NAMES = {
    "condition": "The condition",
    "technology": "The technology",
    "value_proposition": "The value proposition",
    "adopter_system": "The adopter system (staff, patients, carers)",
    "organisation": "The organisation",
    "wider_system": "The wider system",
    "embedding_and_adaptation": "Embedding and adaptation over time",
}


def _ratio(value: float) -> str:
    return f"{value:.2f}"


def effect_reading(m: MeasureStudy) -> str:
    """What the effect estimate says, in plain words (with the direction that is better)."""
    return odds_reading(m.effect, improvement=m.measure.improvement, notes=m.notes)


def odds_reading(
    e: Effect | None, *, improvement: str, notes: Sequence[str] = (), after: str = "the change"
) -> str:
    """An odds ratio of after against before ``after``, in plain words: which way it moved,
    whether its 95% interval rules out no change, and whether that way is better
    (``improvement`` is the measure's ``up`` or ``down``)."""
    better = "higher" if improvement == "up" else "lower"
    if e is None or not all(math.isfinite(v) for v in (e.estimate, e.ci_low, e.ci_high)):
        return "No effect could be estimated from these data" + (
            f" ({'; '.join(notes)})." if notes else "."
        )
    interval = f"95% confidence interval {_ratio(e.ci_low)} to {_ratio(e.ci_high)}"
    if e.ci_low <= 1 <= e.ci_high:
        return (
            f"The data fit no change as well as a change: the odds after {after} were "
            f"{_ratio(e.estimate)} times those before ({interval}, which includes 1, "
            f"meaning no difference). Here {better} is better."
        )
    up = e.ci_low > 1
    size = f"{_ratio(e.estimate)} times" if up else f"{_ratio(e.estimate)} times (lower)"
    good = (up and improvement == "up") or (not up and improvement == "down")
    verdict = "an improvement" if good else "a change in the wrong direction"
    return (
        f"After {after} the odds were {size} those before ({interval}): "
        f"{'higher' if up else 'lower'}, and since {better} is better, {verdict}."
    )


def nasss_reading(d: DomainProfile) -> str:
    """How members rated one NASSS domain, in plain words, disagreement first."""
    counts = ", ".join(f"{n} {rating}" for rating, n in d.counts.items() if n)
    if d.raters == 1:
        return f"{d.median.capitalize()}, by the one member who rated it."
    if d.disagreement:
        span = "; from simple to complex" if d.spread >= 2 else ""
        return (
            f"Members disagree ({counts}{span}): worth talking through before spreading. "
            f"The middle rating is {d.median}."
        )
    if d.spread == 0:
        who = "Both members" if d.raters == 2 else f"All {d.raters} members"
        return f"{who} rated it {d.median}."
    return (
        f"Mostly {d.median} ({counts}; {round(d.agreement * 100)}% of members at the most "
        "common rating)."
    )


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def change_words(change: float | None) -> str:
    """A domain's change in score from the first round to the latest (— with one round, or
    when either round has no score)."""
    if change is None:
        return "—"
    if change == 0:
        return "no change"
    return f"{change:+.2f}".replace("-", "−")


def maturity_reading(s: DomainScore) -> str:
    """One maturity domain in one round, in plain words: members, careloop, the score."""
    parts = []
    if s.raters and s.mean is not None:
        if s.raters == 1:
            parts.append(f"One member rated it {s.low}")
        elif s.low == s.high:
            who = "Both members" if s.raters == 2 else f"All {s.raters} members"
            parts.append(f"{who} rated it {s.low}")
        else:
            parts.append(
                f"{s.raters} members rated it from {s.low} to {s.high} (mean {_score(s.mean)})"
            )
    if s.evidence is not None:
        parts.append(
            f"careloop's records put it at level {s.evidence.level} "
            f"({'; '.join(r.rstrip('.') for r in s.evidence.reasons)})"
        )
    if not parts:
        return "Not rated in this round."
    return f"{'; '.join(parts)}. Score {_score(s.score)} of 5."


def _members_by_role(report: CommunityReport) -> list[tuple[str, int, list[str]]]:
    """(role, how many, display names) in the charter's order of roles."""
    counts: Counter[str] = Counter()
    names: dict[str, list[str]] = {}
    for m in report.community.members:
        for role in m.roles:
            counts[role] += 1
            names.setdefault(role, []).append(m.display_name)
    return [
        (_ROLE_NAMES.get(role, role), counts[role], sorted(names[role]))
        for role in _ROLE_NAMES
        if counts[role]
    ] + [(role, n, sorted(names[role])) for role, n in counts.items() if role not in _ROLE_NAMES]


def render_html(report: CommunityReport) -> str:
    """The report as one HTML page (no script, nothing loaded from elsewhere)."""
    detail = report.community
    title = (
        f"Learning community report: {detail.community.name}"
        if report.subject == "community"
        else f"Learning cycle report: {report.cycles[0].cycle.title}"
    )
    return render(
        "careloop.practice.community_reports",
        "community_report.html",
        title=title,
        report=report,
        detail=detail,
        charter=detail.charter,
        rule=_RULE_NAMES.get(detail.charter.decision_rule, detail.charter.decision_rule),
        roles=_members_by_role(report),
        act_names=_ACT_NAMES,
        kind_names=_KIND_NAMES,
        determination_names=_DETERMINATION_NAMES,
        reading=effect_reading,
        ratio=_ratio,
        nasss_names=_NASSS_NAMES,
        nasss_reading=nasss_reading,
        maturity_reading=maturity_reading,
        change_words=change_words,
        score=_score,
        # vl-convert draws the SVG from numbers and escapes its text itself.
        svg=lambda text: markupsafe.Markup(text),  # noqa: S704
        name_of=report.name_of,
    )


def write_html(report: CommunityReport, out: Path) -> Path:
    """Write the page to ``out`` (its folder must exist); return ``out``."""
    out.write_text(render_html(report), encoding="utf-8")
    return out
