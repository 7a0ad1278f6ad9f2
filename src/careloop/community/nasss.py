"""The NASSS-CAT profile: members' NASSS ratings aggregated per domain, disagreement shown.

Greenhalgh et al. built the NASSS framework (2017, "Beyond adoption", J Med
Internet Res 19(11):e367) and its complexity assessment tool, NASSS-CAT
(Greenhalgh et al. 2020, "The NASSS-CAT tools for understanding, guiding,
monitoring, and researching technology implementation projects", JMIR Res
Protoc 9(5):e16861), to be used by several people and repeated over time:
where people see a domain differently is itself worth discussing. So the
profile keeps the spread, not only a summary.

A **round** is one subject's assessments in one calendar month (a
workshop); a member who rated twice in a round counts once, with their
latest ratings. For each domain the profile gives how many rated it simple,
complicated and complex, the median (the upper median when the count is
even: the cautious reading of a tie), the spread (how many steps lie
between the lowest and the highest rating: 0, 1 or 2) and the share of
raters at the most common rating (its agreement).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from careloop.community.log import NASSS_DOMAINS, NASSS_RATINGS, NassView, nasss_assessments
from careloop.store.database import Registry
from careloop.trust.principal import Principal


@dataclass(frozen=True)
class DomainProfile:
    """One NASSS domain in one round."""

    domain: str
    raters: int
    counts: dict[str, int]
    """simple, complicated, complex → how many members rated it so."""
    median: str
    spread: int
    """Steps between the lowest and highest rating (0 all agree, 2 simple to complex)."""
    agreement: float
    """Share of raters at the most common rating."""
    disagreement: bool
    """True when members are more than one step apart or no rating has a majority."""
    notes: list[str]


@dataclass(frozen=True)
class NasssRound:
    """One subject's NASSS profile in one round (a calendar month)."""

    subject: str
    round: str
    """YYYY-MM."""
    raters: list[str]
    domains: list[DomainProfile]
    complex_domains: int
    """Domains whose median is complex: the more, the likelier trouble spreading."""


def _domain(domain: str, ratings: Sequence[tuple[str, str]]) -> DomainProfile:
    steps = sorted(NASSS_RATINGS.index(r) for r, _ in ratings)
    counts = {r: sum(1 for s in steps if s == NASSS_RATINGS.index(r)) for r in NASSS_RATINGS}
    top = max(counts.values())
    agreement = top / len(steps)
    spread = steps[-1] - steps[0]
    return DomainProfile(
        domain=domain,
        raters=len(steps),
        counts=counts,
        median=NASSS_RATINGS[steps[len(steps) // 2]],
        spread=spread,
        agreement=round(agreement, 4),
        disagreement=spread >= 2 or (agreement <= 0.5 and len(steps) > 1),
        notes=[n for _, n in ratings if n],
    )


def nasss_profile(assessments: Sequence[NassView]) -> list[NasssRound]:
    """The profile of every subject and round, oldest round first (a pure function)."""
    rounds: dict[tuple[str, str], dict[str, NassView]] = {}
    for a in sorted(assessments, key=lambda a: (a.assessed_at, a.id)):
        key = (a.subject, a.assessed_at.strftime("%Y-%m"))
        rounds.setdefault(key, {})[a.assessed_by] = a  # a later rating replaces an earlier one
    out = []
    for (subject, month), by_member in sorted(rounds.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        members = list(by_member.values())
        domains = [
            _domain(
                d,
                [(m.ratings[d]["rating"], m.ratings[d].get("note", "")) for m in members],
            )
            for d in NASSS_DOMAINS
        ]
        out.append(
            NasssRound(
                subject=subject,
                round=month,
                raters=sorted(by_member),
                domains=domains,
                complex_domains=sum(1 for d in domains if d.median == "complex"),
            )
        )
    return out


def nasss_profile_of(
    registry: Registry, principal: Principal, community_id: int, *, subject: str | None = None
) -> list[NasssRound]:
    """The community's NASSS profile (members and the installation admin; audited)."""
    return nasss_profile(nasss_assessments(registry, principal, community_id, subject=subject))
