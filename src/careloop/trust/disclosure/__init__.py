"""Small-cell disclosure control for tables of counts that leave the installation.

Primary suppression hides every count from 1 to ``threshold`` (10 by default;
zero is not hidden, and ``threshold=0`` turns suppression off). Complementary
suppression then hides further cells so that no hidden cell can be worked out
from the row and column totals.

How: a table with its margins is an (r+1) × (c+1) matrix whose lines (rows
and columns, the totals row and column included) each say "the cells add up
to the total". Think of every line as a vertex and every hidden entry as an
edge between its row and its column. A hidden entry can be solved from the
published ones exactly when its edge lies on no cycle (it is a *bridge*);
on a cycle its value can shift by any amount around the cycle without
changing a total. So the algorithm adds, while any hidden entry is a bridge,
the cheapest rectangle of entries that closes a cycle through it (the
two-way form of the "hypercube" method). This
is the graph form of the usual "at least two hidden cells in every row and
column" rule, which alone misses bridges between two cycles.

Written here rather than taken from a library: the established tools
(sdcTable, tau-Argus) are R and Java programs; for the two-way tables a
measure produces the rule above is short and exact about what it protects.
It does not use the non-negativity of counts to bound a hidden cell to an
interval; the interval an intruder gets is at least the two smallest hidden
values apart.
"""

from __future__ import annotations

from careloop.trust.disclosure.linked_blocks import (
    FIXED,
    HIDDEN,
    OPEN,
    UNSEEN,
    Change,
    Key,
    LinkedBlock,
    Move,
    State,
)
from careloop.trust.disclosure.policy import (
    DisclosurePolicy,
    blur,
)
from careloop.trust.disclosure.protection import (
    Protection,
    protect_block,
)
from careloop.trust.disclosure.tables import (
    DEFAULT_THRESHOLD,
    Position,
    SuppressedTable,
    suppress_table,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "FIXED",
    "HIDDEN",
    "OPEN",
    "UNSEEN",
    "Change",
    "DisclosurePolicy",
    "Key",
    "LinkedBlock",
    "Move",
    "Position",
    "Protection",
    "State",
    "SuppressedTable",
    "blur",
    "protect_block",
    "suppress_table",
]
