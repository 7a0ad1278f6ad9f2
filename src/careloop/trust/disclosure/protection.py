"""Complementary suppression of a linked block: which counts to hide so each hidden one can move."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from careloop.core.errors import InputError
from careloop.trust.disclosure.linked_blocks import (
    FIXED,
    HIDDEN,
    OPEN,
    UNSEEN,
    Change,
    Key,
    LinkedBlock,
    Move,
)
from careloop.trust.disclosure.tables import DEFAULT_THRESHOLD


class _Protector:
    """Complementary suppression over one :class:`LinkedBlock`, by explicit moves.

    The published numbers are linear constraints. A *move* changes hidden
    entries by whole numbers so that every constraint still holds (each
    stratifier table's rows and columns, and the totals that the tables
    share) and every count stays ≥ 0. A hidden count that one move can raise
    and another can lower lies, for anyone who knows every published number,
    in an interval of at least three values around its true value.

    In the *extended* matrix of a table (its site totals and network row
    negated) every row and column sums to zero, so a move is a closed walk
    that alternates +1 and −1. The moves searched (cheapest first, the cost
    being the size of the counts they newly hide): a cycle inside one table,
    which touches no shared total; and a change of two rows of the shared
    totals column carried through every stratifier table by an alternating
    path between the same two rows (a network-only table takes it in its
    network row). The other tables' constraints need nothing more: their
    cells can always be filled in (a table of counts with given margins of
    equal sum exists), so these are moves of the underlying site × strata ×
    outcome counts too. When that search finds nothing, an integer program
    over the whole block decides, and finds a move if there is one.

    Counts split into independent systems, hidden in groups: numerator and
    denominator − numerator, hidden together (for ratios: numerator, and
    denominator, each alone); exclusions. A hidden count from 1 to the threshold
    needs a move up and a move down; any other non-zero hidden count a move
    one way, so that it is never determined exactly. Zeros need nothing: a
    zero may be published.
    """

    def __init__(self, block: LinkedBlock, threshold: int) -> None:
        """Index every count of the linked block for the search.

        Long because it builds the solver's one index of every linked count (totals,
        strata, site rows, exclusions) in a single pass, so the positions agree
        everywhere.
        """
        self.threshold = threshold
        self.subset = block.subset
        self.site_level = bool(block.sites)
        keys: list[Key] = []
        index: dict[Key, int] = {}

        def add(key: Key) -> int:
            if key not in index:
                index[key] = len(keys)
                keys.append(key)
            return index[key]

        rows: tuple[str, ...] = (*block.sites, "") if self.site_level else ("",)
        self.net = len(rows) - 1
        self.totals = [add((r, "")) for r in rows]
        # Per stratifier: (has site rows, index matrix rows × values).
        self.tables: list[tuple[bool, list[list[int]]]] = []
        for name, (values, full) in block.strata.items():
            own = rows if full and self.site_level else ("",)
            self.tables.append(
                (len(own) > 1, [[add((r, f"{name}={v}")) for v in values] for r in own])
            )
        self.keys = keys
        counts = [block.counts.get(k, (0, 0, 0)) for k in keys]
        # Plain lists: the searches below index single entries very often.
        self.vals: list[tuple[int, int, int]] = [
            (a, b - a, x) if block.subset else (a, b, x) for a, b, x in counts
        ]
        if any(v < 0 for row in self.vals for v in row):
            raise InputError(
                "A count is negative, or a numerator exceeds its denominator in a measure "
                "whose numerator is part of its denominator."
            )
        # Groups of counts hidden together: (the systems they hold, the counts they cover).
        self.groups: list[tuple[tuple[int, ...], tuple[int, ...]]] = (
            [((0, 1), (0, 1)), ((2,), (2,))]
            if block.subset
            else [((0,), (0,)), ((1,), (1,)), ((2,), (2,))]
        )
        self.state: list[list[int]] = []
        self.earlier: list[list[bool]] = []
        for k in keys:
            given = block.state.get(k, (FIXED, FIXED, FIXED))
            # A group is published earlier only if all its counts were, hidden if any was.
            states = [
                FIXED
                if all(given[c] == FIXED for c in cols)
                else UNSEEN
                if all(given[c] == UNSEEN for c in cols)
                else HIDDEN
                if any(given[c] in (HIDDEN, UNSEEN) for c in cols)
                else OPEN
                for _sys, cols in self.groups
            ]
            self.state.append(states)
            self.earlier.append([any(given[c] == HIDDEN for c in cols) for _s, cols in self.groups])
        self.weight: list[list[int]] = [
            [max(c[i] for i in cols) + 1 for _s, cols in self.groups] for c in counts
        ]
        # In the extended matrix interior entries and the network total keep their sign;
        # site totals and the network's strata change sign.
        self.sign = [1 if (s == "") == (t == "") else -1 for s, t in keys]
        self.where: list[tuple[int, int, int]] = [(-1, -1, -1)] * len(keys)
        for r, e in enumerate(self.totals):
            self.where[e] = (-1, r, -1)
        for t, (_full, idx) in enumerate(self.tables):
            for r, line in enumerate(idx):
                for c, e in enumerate(line):
                    self.where[e] = (t, r, c)
        # Per table: its number of rows, and each vertex's (neighbour, entry) pairs.
        self.adjacency: list[tuple[int, list[list[tuple[int, int]]]]] = []
        for _full, idx in self.tables:
            nrows = len(idx)
            adjacency: list[list[tuple[int, int]]] = [
                [(nrows + k, f) for k, f in enumerate(line)] for line in idx
            ]
            adjacency += [[(r, idx[r][k]) for r in range(nrows)] for k in range(len(idx[0]))]
            self.adjacency.append((nrows, adjacency))
        self.small = [
            [self._small(e, group) for group in range(len(self.groups))] for e in range(len(keys))
        ]
        self.strict = False
        """While searching: bar every zero, so the move found works both ways."""
        self.determined: set[tuple[int, int]] = set()
        self.numerator_shown: set[int] = set()
        """Entries whose numerator alone is published (fixed by what was published before)."""
        """(entry, system) pairs no move can change: fixed by what was published earlier."""

    # -- what a hidden entry needs -----------------------------------------------------

    def sensitive(self, e: int, group: int) -> bool:
        """Whether a count of the group (denominator and its difference included) is small."""
        return self.small[e][group]

    def _small(self, e: int, group: int) -> bool:
        systems = self.groups[group][0]
        small = [self.vals[e][s] for s in systems]
        if systems == (0, 1):
            small.append(small[0] + small[1])
        return any(1 <= v <= self.threshold for v in small)

    def needs(self, e: int, system: int, group: int) -> tuple[int, ...]:
        """Directions the count needs a move in: up and down, either (0), or none.

        A count never released needs protecting only when small: nobody is shown
        it, so nothing else is promised about it.
        """
        v = self.vals[e][system]
        if v == 0:
            return ()
        if v <= self.threshold:
            return (1, -1)
        return () if self.state[e][group] == UNSEEN else (0,)

    # -- moves ----------------------------------------------------------------------

    def _edge(self, f: int, ext: int, orient: int, system: int, group: int) -> int | None:
        """Cost of changing ``f`` by ``ext`` (extended) in the oriented move; None if barred.

        Barred: published earlier, or a zero that would go below zero.
        """
        state = self.state[f][group]
        if state == FIXED:
            return None
        if self.vals[f][system] < 1 and (self.strict or orient * ext * self.sign[f] < 0):
            return None
        return self.weight[f][group] if state == OPEN else 0

    def _tree(
        self,
        t: int,
        start: tuple[str, int],
        first: int,
        orient: int,
        system: int,
        group: int,
        banned: int,
    ) -> tuple[dict[int, int], dict[int, tuple[int, int, int]]]:
        """Cheapest alternating paths in table ``t`` from ``start`` (its totals column left out).

        ``start`` is ``("r", row)`` or ``("c", column)``; the first entry of a
        path changes by ``first`` in the extended matrix, the next by −``first``,
        and so on. Dijkstra's algorithm on a graph of a few dozen entries (rows
        are vertices 0…, columns follow); returns the costs and the back
        pointers of every vertex reached.
        """
        nrows, adjacency = self.adjacency[t]
        source = start[1] if start[0] == "r" else nrows + start[1]
        # Going from a row to a column changes the entry by ``down``, back by −``down``.
        down = first if start[0] == "r" else -first
        state, vals, weight, sign = self.state, self.vals, self.weight, self.sign
        strict = self.strict
        best: dict[int, int] = {source: 0}
        back: dict[int, tuple[int, int, int]] = {}
        heap = [(0, source)]
        done: set[int] = set()
        while heap:
            cost, node = heapq.heappop(heap)
            if node in done:
                continue
            done.add(node)
            ext = down if node < nrows else -down
            for nxt, f in adjacency[node]:
                if f == banned or nxt in done:
                    continue
                st = state[f][group]
                if st == FIXED or (vals[f][system] < 1 and (strict or orient * ext * sign[f] < 0)):
                    continue
                total = cost + (weight[f][group] if st == OPEN else 0)
                if nxt not in best or total < best[nxt]:
                    best[nxt] = total
                    back[nxt] = (node, f, ext)
                    heapq.heappush(heap, (total, nxt))
        return best, back

    @staticmethod
    def _walk(
        tree: tuple[dict[int, int], dict[int, tuple[int, int, int]]], row: int
    ) -> tuple[int, Move] | None:
        """The path of ``tree`` to ``row``, as entries with their extended change."""
        best, back = tree
        if row not in best:
            return None
        move: Move = []
        node = row
        while node in back:
            node, f, ext = back[node]
            move.append((f, ext))
        return best[row], move

    def _network_share(
        self, t: int, ext: int, orient: int, system: int, group: int, banned: int
    ) -> tuple[int, Move] | None:
        """A network-only table's share of a change of the network total: one entry."""
        options = []
        for f in self.tables[t][1][0]:
            cost = None if f == banned else self._edge(f, ext, orient, system, group)
            if cost is not None:
                options.append((cost, [(f, ext)]))
        return min(options, key=lambda o: o[0]) if options else None

    def _candidates(
        self, e: int, direction: int, system: int, group: int
    ) -> Iterator[tuple[int, int, Move]]:
        """Moves that change ``e`` by ``direction``: (cost, orientation, extended changes).

        Long because each kind of count (a full table's cell, a margin, an exclusion)
        has its own short search for a move, and the three are alternatives of one
        choice.
        """
        t0, r0, c0 = self.where[e]
        if t0 >= 0:
            full, idx = self.tables[t0]
            orient = direction * self.sign[e]  # e changes by +1 in the extended matrix
            if full:
                tree = self._tree(t0, ("c", c0), -1, orient, system, group, e)
                found = self._walk(tree, r0)
                if found is not None:
                    yield found[0], orient, [(e, 1), *found[1]]
            else:
                for c2, f in enumerate(idx[0]):
                    cost = None if c2 == c0 else self._edge(f, -1, orient, system, group)
                    if cost is not None:
                        yield cost, orient, [(e, 1), (f, -1)]
        # Through the shared totals: +1 at the total of row r1, −1 at r2 (extended);
        # without a site level, +1 at the network total alone.
        if not self.site_level:
            orient = direction * (1 if t0 < 0 else -1) * self.sign[e]
            net = self.totals[0]
            total = self._edge(net, 1, orient, system, group)
            if total is None:
                return
            move: Move = [(net, 1)]
            for t in range(len(self.tables)):
                if t == t0:
                    move.append((e, -1))
                    continue
                share = self._network_share(t, -1, orient, system, group, e)
                if share is None:
                    return
                total += share[0]
                move.extend(share[1])
            yield total, orient, move
            return
        if t0 < 0:
            r1, orient = r0, direction * self.sign[e]
        else:
            r1 = r0 if self.tables[t0][0] else self.net
            orient = -direction * self.sign[e]  # e changes by −1 in the extended matrix
        # One tree per table serves every partner row r2.
        trees = {}
        for t, (full, _idx) in enumerate(self.tables):
            if not full:
                continue
            if t == t0:
                trees[t] = self._tree(t, ("c", c0), 1, orient, system, group, e)
            else:
                trees[t] = self._tree(t, ("r", r1), -1, orient, system, group, e)
        shares = {
            ext: [
                None if full or t == t0 else self._network_share(t, ext, orient, system, group, e)
                for t, (full, _idx) in enumerate(self.tables)
            ]
            for ext in (-1, 1)
        }
        for r2 in range(len(self.totals)):
            if r2 == r1:
                continue
            move = [(self.totals[r1], 1), (self.totals[r2], -1)]
            costs = [self._edge(f, x, orient, system, group) for f, x in move]
            if costs[0] is None or costs[1] is None:
                continue
            total = costs[0] + costs[1]
            for t, (full, _idx) in enumerate(self.tables):
                part: tuple[int, Move] | None
                if full:
                    part = self._walk(trees[t], r2)
                    if t == t0:
                        move.append((e, -1))
                elif t == t0:
                    part = (0, [(e, -1)])
                elif self.net == r1:
                    part = shares[-1][t]
                elif self.net == r2:
                    part = shares[1][t]
                else:
                    part = (0, [])
                if part is None:
                    break
                total += part[0]
                move.extend(part[1])
            else:
                yield total, orient, move

    def best_move(
        self, e: int, group: int, system: int, direction: int, *, both: bool = False
    ) -> tuple[int, Change] | None:
        """The cheapest move found that changes ``e`` by ``direction`` (0: either way).

        ``both``: only moves that work in both directions (no zero among the
        entries they change). Returns the cost (weights of entries newly hidden)
        and the actual changes of the entries it moves.
        """
        best: tuple[int, int, Move] | None = None
        self.strict = both
        try:
            for d in (1, -1) if direction == 0 else (direction,):
                for cost, orient, move in self._candidates(e, d, system, group):
                    if best is None or cost < best[0]:
                        best = (cost, orient, move)
                        if cost == 0:
                            break
                if best is not None and best[0] == 0:
                    break
        finally:
            self.strict = False
        if best is not None:
            cost, orient, move = best
            return cost, [(f, orient * x * self.sign[f]) for f, x in move]
        if both:
            return None
        change = self._exact_move(e, group, system, direction)
        return None if change is None else (self._change_cost(change, group), change)

    def _change_cost(self, change: Change, group: int) -> int:
        return sum(self.weight[f][group] for f, _x in change if self.state[f][group] == OPEN)

    def _two_ways(self, change: Change, system: int) -> bool:
        """Whether a move works in both directions in ``system``."""
        return all(self.vals[f][system] >= abs(x) for f, x in change)

    def _exact_move(self, e: int, group: int, system: int, direction: int) -> Change | None:
        """A move from an integer program over the whole block, or None if there is none.

        Every entry not published earlier may change; the cost of an entry still
        open is its weight times how far it moves.
        """
        n = len(self.keys)
        lines: list[dict[int, int]] = []
        if self.site_level:
            lines.append({**{f: 1 for f in self.totals[:-1]}, self.totals[-1]: -1})
        for full, idx in self.tables:
            if full:
                for r, entries in enumerate(idx):
                    lines.append({**{f: 1 for f in entries}, self.totals[r]: -1})
                for k in range(len(idx[0])):
                    lines.append({**{idx[r][k]: 1 for r in range(self.net)}, idx[self.net][k]: -1})
            else:
                lines.append({**{f: 1 for f in idx[0]}, self.totals[-1]: -1})
        values = np.array([v[system] for v in self.vals], dtype=np.float64)
        opened = [f for f in range(n) if self.state[f][group] == OPEN]
        # Variables: x (n, integer), then up and down (one each per open entry).
        m = len(opened)
        a = np.zeros((len(lines) + m, n + 2 * m))
        lo = np.zeros(len(lines) + m)
        hi = np.zeros(len(lines) + m)
        for i, coefs in enumerate(lines):
            for f, coef in coefs.items():
                a[i, f] = coef
        for j, f in enumerate(opened):
            row = len(lines) + j
            a[row, f] = 1.0
            a[row, n + j] = -1.0
            a[row, n + m + j] = 1.0
            lo[row] = hi[row] = values[f]
        cost = np.zeros(n + 2 * m)
        for j, f in enumerate(opened):
            cost[n + j] = cost[n + m + j] = self.weight[f][group]
        for d in (1, -1) if direction == 0 else (direction,):
            lower = np.zeros(n + 2 * m)
            upper = np.full(n + 2 * m, np.inf)
            for f in range(n):
                if self.state[f][group] == FIXED:
                    lower[f] = upper[f] = values[f]
            if values[e] + d < 0:
                continue
            lower[e] = upper[e] = values[e] + d
            result = milp(
                cost,
                integrality=np.r_[np.ones(n), np.zeros(2 * m)],
                bounds=Bounds(lower, upper),
                constraints=LinearConstraint(a, lo, hi),
            )
            if result.status == 0:
                change = np.rint(result.x[:n]) - values
                return [(f, int(change[f])) for f in range(n) if change[f] != 0]
        if direction == 0:
            self.determined.add((e, system))
        return None

    # -- the whole block ------------------------------------------------------------

    def run(self) -> int:
        """Hide what the block needs; returns how many small counts cannot be protected."""
        queue: deque[tuple[int, int]] = deque()
        start: list[tuple[int, int]] = []
        for group in range(len(self.groups)):
            for e in range(len(self.keys)):
                if self.state[e][group] == OPEN and self.sensitive(e, group):
                    self.state[e][group] = HIDDEN
                if self.state[e][group] == HIDDEN or (
                    self.state[e][group] == UNSEEN and self.sensitive(e, group)
                ):
                    start.append((e, group))
        # Small counts first, then the rest by size: cheap moves are found for them first.
        start.sort(key=lambda item: (not self.sensitive(*item), self.weight[item[0]][item[1]]))
        queue.extend(start)
        done: set[tuple[int, int]] = set()
        exposed: set[tuple[int, int]] = set()
        # Directions each (entry, system) can already move in, from the moves adopted.
        moves: dict[tuple[int, int], set[int]] = {}
        while queue:
            e, group = queue.popleft()
            if (e, group) in done:
                continue
            done.add((e, group))
            systems = self.groups[group][0]
            for system in systems:
                for direction in self.needs(e, system, group):
                    have = moves.get((e, system), set())
                    if direction in have or (direction == 0 and have):
                        continue
                    found = self.best_move(e, group, system, direction)
                    if found is not None and self.needs(e, system, group) == (1, -1) and not have:
                        found = self._cheaper_both_ways(e, group, system, found)
                    if found is None:
                        if self.sensitive(e, group):
                            exposed.add((e, group))
                        continue
                    for f, _x in found[1]:
                        if self.state[f][group] == OPEN:
                            self.state[f][group] = HIDDEN
                            queue.append((f, group))
                    self._record(found[1], systems, moves)
        self._publish_determined()
        return len(exposed)

    def _cheaper_both_ways(
        self, e: int, group: int, system: int, up: tuple[int, Change]
    ) -> tuple[int, Change]:
        """A move that works both ways, if cheaper than the move up plus a move down."""
        if self._two_ways(up[1], system):
            return up
        down = self.best_move(e, group, system, -1)
        both = self.best_move(e, group, system, 1, both=True)
        if both is not None and (down is None or both[0] <= up[0] + down[0]):
            return both
        return up

    def _record(
        self, change: Change, systems: tuple[int, ...], moves: dict[tuple[int, int], set[int]]
    ) -> None:
        """Note which way each entry of an adopted move can go, in every system of its group."""
        for s in systems:
            up = all(self.vals[f][s] + x >= 0 for f, x in change)
            down = all(self.vals[f][s] - x >= 0 for f, x in change)
            for f, x in change:
                have = moves.setdefault((f, s), set())
                if up:
                    have.add(1 if x > 0 else -1)
                if down:
                    have.add(-1 if x > 0 else 1)

    def _publish_determined(self) -> None:
        """Publish hidden counts that nothing can move: what was published fixes them.

        A whole group when no system of it can move either way (so no move relies
        on it), it is not small, and no earlier release hid it. Otherwise, when
        only the numerator is fixed (a large one: a small one would have needed
        protecting), the numerator alone.
        """
        for e in sorted({e for e, _s in self.determined}):
            for group, (systems, _cols) in enumerate(self.groups):
                if (
                    self.state[e][group] != HIDDEN
                    or self.earlier[e][group]
                    or not any((e, s) in self.determined for s in systems)
                ):
                    continue
                if not self.sensitive(e, group) and all(
                    (e, s) in self.determined or self._exact_move(e, group, s, 0) is None
                    for s in systems
                ):
                    self.state[e][group] = OPEN
                elif systems == (0, 1) and (e, 0) in self.determined:
                    self.numerator_shown.add(e)

    def hidden(self) -> dict[Key, tuple[bool, bool, bool]]:
        """Every entry: whether its numerator, denominator and exclusions are hidden."""
        out: dict[Key, tuple[bool, bool, bool]] = {}
        for i, k in enumerate(self.keys):
            flags = [False, False, False]
            for group, (_systems, cols) in enumerate(self.groups):
                for c in cols:
                    flags[c] = self.state[i][group] == HIDDEN
            out[k] = (flags[0] and i not in self.numerator_shown, flags[1], flags[2])
        return out


@dataclass(frozen=True)
class Protection:
    """The outcome of :func:`protect_block`."""

    hidden: dict[Key, tuple[bool, bool, bool]]
    """Per entry: whether its numerator, denominator and exclusions are hidden."""
    exposed: int
    """Small counts that what was published earlier already determines (none, unless
    the data changed between releases or they were published by other means)."""


def protect_block(block: LinkedBlock, *, threshold: int = DEFAULT_THRESHOLD) -> Protection:
    """Primary and complementary suppression of a :class:`LinkedBlock`.

    Args:
        block: The block, with the counts released earlier (published:
            :data:`FIXED`; hidden: :data:`HIDDEN`) and those of this release
            (:data:`OPEN`, or :data:`HIDDEN` to force them hidden).
        threshold: Counts from 1 to this are hidden (0 disables suppression).

    Returns:
        Which counts to hide: every small count, and enough others that each
        hidden count can move (see :class:`_Protector`).
    """
    if threshold < 0:
        raise InputError(f"The suppression threshold must be 0 or more, not {threshold}.")
    protector = _Protector(block, threshold)
    exposed = 0 if threshold == 0 else protector.run()
    return Protection(protector.hidden(), exposed)
