"""Suppression of one two-way table: the small cells, then the cells that would give them away."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from careloop.core.errors import InputError

DEFAULT_THRESHOLD = 10
"""Counts from 1 to this are suppressed unless configured otherwise."""

Position = tuple[int, int]


@dataclass(frozen=True)
class SuppressedTable:
    """A table of counts with its margins, after disclosure control.

    Positions index the table *with margins*: row ``r`` (the number of rows)
    is the column totals, column ``c`` is the row totals.
    """

    values: tuple[tuple[int, ...], ...]
    """The full table with margins (the unsuppressed values; do not publish)."""
    primary: frozenset[Position]
    """Entries hidden because they are small (1 to the threshold)."""
    complementary: frozenset[Position]
    """Entries hidden so that the primary ones cannot be recovered."""

    @property
    def hidden(self) -> frozenset[Position]:
        """Every hidden entry."""
        return self.primary | self.complementary

    def published(self) -> list[list[int | None]]:
        """The table with margins as it may be shown: hidden entries are ``None``."""
        return [
            [None if (i, j) in self.hidden else v for j, v in enumerate(row)]
            for i, row in enumerate(self.values)
        ]


def _with_margins(counts: Sequence[Sequence[int]]) -> list[list[int]]:
    if not counts or not counts[0]:
        raise InputError("A table for disclosure control needs at least one cell.")
    width = len(counts[0])
    rows: list[list[int]] = []
    for i, row in enumerate(counts):
        if len(row) != width:
            raise InputError(f"Row {i} of the table has {len(row)} cells, not {width}.")
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InputError(f"Cell ({i}, {j}) is {v!r}; counts are whole numbers ≥ 0.")
        rows.append([*row, sum(row)])
    totals = [sum(r[j] for r in rows) for j in range(width + 1)]
    return [*rows, totals]


def _bridges(hidden: set[Position]) -> list[Position]:
    """Hidden entries on no cycle of the line graph (each solvable from the totals).

    Tarjan's bridge-finding in one depth-first pass (iterative, so large tables
    do not hit the recursion limit): an edge to a child is a bridge when no
    vertex below the child reaches back above it.
    """
    adj: dict[tuple[str, int], list[tuple[tuple[str, int], Position]]] = {}
    for i, j in hidden:
        adj.setdefault(("r", i), []).append((("c", j), (i, j)))
        adj.setdefault(("c", j), []).append((("r", i), (i, j)))
    order: dict[tuple[str, int], int] = {}
    low: dict[tuple[str, int], int] = {}
    out: list[Position] = []
    for root in sorted(adj):
        if root in order:
            continue
        order[root] = low[root] = len(order)
        stack: list[tuple[tuple[str, int], Position | None, int]] = [(root, None, 0)]
        while stack:
            node, via, index = stack[-1]
            if index < len(adj[node]):
                stack[-1] = (node, via, index + 1)
                nxt, edge = adj[node][index]
                if edge == via:
                    continue
                if nxt in order:
                    low[node] = min(low[node], order[nxt])
                else:
                    order[nxt] = low[nxt] = len(order)
                    stack.append((nxt, edge, 0))
                continue
            stack.pop()
            if stack and via is not None:
                parent = stack[-1][0]
                low[parent] = min(low[parent], low[node])
                if low[node] > order[parent]:
                    out.append(via)
    return sorted(out)


def _rectangle(table: list[list[int]], hidden: set[Position], bridge: Position) -> list[Position]:
    """The cheapest rectangle of entries that puts ``bridge`` on a cycle.

    A rectangle (i, j), (i, k), (m, k), (m, j) is a cycle of four lines; its
    cost is the sum of the entries it newly hides, and zero entries cost extra
    (hiding a zero protects less: counts cannot go below it).
    """
    i, j = bridge
    best: tuple[tuple[int, int], list[Position]] | None = None
    for m in range(len(table)):
        for k in range(len(table[0])):
            if m == i or k == j:
                continue
            new = [p for p in ((i, k), (m, k), (m, j)) if p not in hidden]
            zeros = sum(1 for a, b in new if table[a][b] == 0)
            cost = (zeros, sum(table[a][b] for a, b in new))
            if best is None or cost < best[0]:
                best = (cost, new)
    assert best is not None  # a table with margins is at least 2 × 2
    return best[1]


def suppress_table(
    counts: Sequence[Sequence[int]],
    *,
    threshold: int = DEFAULT_THRESHOLD,
    hidden: Iterable[Position] = (),
) -> SuppressedTable:
    """Apply primary and complementary suppression to a two-way table of counts.

    Args:
        counts: The table without margins (rows of non-negative integers).
        threshold: Counts from 1 to this are hidden (0 disables suppression).
        hidden: Entries (positions with margins) already hidden elsewhere, e.g.
            a total that another table had to suppress.

    Returns:
        The table with margins and the hidden positions.
    """
    if threshold < 0:
        raise InputError(f"The suppression threshold must be 0 or more, not {threshold}.")
    table = _with_margins(counts)
    primary = {
        (i, j) for i, row in enumerate(table) for j, v in enumerate(row) if 1 <= v <= threshold
    }
    forced = {(int(i), int(j)) for i, j in hidden}
    current = primary | forced
    while True:
        bridges = _bridges(current)
        if not bridges:
            break
        current.update(_rectangle(table, current, bridges[0]))
    return SuppressedTable(
        values=tuple(tuple(r) for r in table),
        primary=frozenset(primary),
        complementary=frozenset(current - primary),
    )
