"""Linked tables: one measure's counts in one period over a network, its sites and strata.

A :class:`LinkedBlock` holds the counts as every release so far has shown them.
"""

from __future__ import annotations

from dataclasses import dataclass

Key = tuple[str, str]
"""An entry of a :class:`LinkedBlock`: (site, stratum); ``""`` is the network or all strata."""

OPEN, HIDDEN, FIXED, UNSEEN = 0, 1, 2, 3
"""States of an entry's counts: to decide now; hidden (now or earlier); published earlier;
never released (known to the installation only, e.g. sites × sex when only the sites and
the network's sexes were released)."""

State = tuple[int, int, int]
"""States of an entry's numerator, denominator and exclusions."""
Move = list[tuple[int, int]]
"""Entries with their change in the extended matrix (margins negated), every line summing to 0."""
Change = list[tuple[int, int]]
"""Entries with the actual change of their count."""


@dataclass
class LinkedBlock:
    """The counts of one measure in one period, as every release so far has shown them.

    Entries are (site, stratum) keys: ``("", "")`` the network total, ``(s, "")``
    a site, ``("", "sex=female")`` the network in one stratum, ``(s, "sex=female")``
    a site in one stratum. For each stratifier the entries form a table whose
    rows are the sites and the network (``full``) or the network alone, whose
    columns are the stratifier's values, and whose row totals are the
    unstratified entries, which every stratifier's table shares.

    Each entry has a numerator, a denominator and exclusions. ``subset``: the
    numerator is part of the denominator (proportions, counts, continuous
    measures), so denominator − numerator is a count of people too, and the
    numerator and denominator are hidden together; otherwise (ratios) the
    two are independent counts, hidden independently. Exclusions are
    independent of both.
    """

    sites: tuple[str, ...]
    """Site labels; empty when no release of the block had a site level."""
    strata: dict[str, tuple[tuple[str, ...], bool]]
    """Stratifier → (its values, whether its table has site rows)."""
    counts: dict[Key, tuple[int, int, int]]
    """True (numerator, denominator, excluded) of each entry; absent entries are zero."""
    state: dict[Key, State]
    """States of the numerator, denominator and exclusions; absent entries are :data:`FIXED`."""
    subset: bool = True
