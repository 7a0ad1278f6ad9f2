"""Hand-over from carer to young person: which of a carer's scopes still hold.

Children grow up. What a parent may do for a child (fill in questionnaires,
see results, manage consent) was granted for the child; on the day the young
person reaches the hand-over age (``CARELOOP_HANDOVER_AGE``, 16 by default)
those grants lapse, and the young person decides again who helps them.

:func:`effective_scopes` is the one rule, applied every time a carer's
principal is built (careloop.trust.identity.principals): a scope set before
the patient's hand-over day no longer counts once that day has come. The
``careloop patient handover`` job (careloop.trust.carers) then writes the
lapse down and audits it; it is bookkeeping, not the guard.

A patient whose birth date is not recorded is treated as an adult: their
carers' scopes never lapse by age, and no carer is their guardian.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from careloop.core.clock import as_utc
from careloop.trust.policy import CARER_SCOPES, CarerScope

DEFAULT_HANDOVER_AGE = 16


def handover_date(birth_date: date, handover_age: int) -> date:
    """The day a patient born on ``birth_date`` reaches ``handover_age`` (29 February: 1 March)."""
    year = birth_date.year + handover_age
    try:
        return birth_date.replace(year=year)
    except ValueError:  # born on 29 February, and the hand-over year is no leap year
        return date(year, 3, 1)


def is_child(birth_date: date | None, today: date, handover_age: int) -> bool:
    """Whether the patient is under the hand-over age on ``today`` (unknown birth date: no)."""
    return birth_date is not None and today < handover_date(birth_date, handover_age)


def parse_scopes(stored: str) -> frozenset[CarerScope]:
    """The scopes of a link as stored (comma-separated), ignoring anything unknown."""
    return frozenset(s for s in CARER_SCOPES if s in stored.split(","))


def format_scopes(scopes: Iterable[str]) -> str:
    """Scopes as stored: comma-separated, in the order of CARER_SCOPES."""
    chosen = set(scopes)
    return ",".join(s for s in CARER_SCOPES if s in chosen)


def effective_scopes(
    scopes: frozenset[CarerScope],
    *,
    set_at: datetime,
    birth_date: date | None,
    today: date,
    handover_age: int,
) -> frozenset[CarerScope]:
    """The scopes a carer holds today: none when they were set before the hand-over day.

    Args:
        scopes: The scopes stored on the link.
        set_at: When they were last set (granted or changed).
        birth_date: The patient's birth date, if recorded.
        today: The day of the check (the site's or UTC's; a day either way is tolerated).
        handover_age: ``CARELOOP_HANDOVER_AGE``.
    """
    if birth_date is None:
        return scopes
    handover = handover_date(birth_date, handover_age)
    if as_utc(set_at).date() < handover <= today:
        return frozenset()
    return scopes
