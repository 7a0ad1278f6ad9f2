"""Small-cell suppression on hand-worked tables (careloop.trust.disclosure).

Positions index the table with margins: the last row holds the column
totals, the last column the row totals.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from careloop.core.errors import InputError
from careloop.trust.disclosure import suppress_table


def _recoverable(values, hidden) -> set[tuple[int, int]]:
    """Hidden entries an intruder can solve from the published ones (linear algebra).

    Independent of the implementation's graph argument: a hidden entry is
    determined when its unit vector lies in the row space of the line
    equations restricted to the hidden unknowns.
    """
    hidden = sorted(hidden)
    index = {p: k for k, p in enumerate(hidden)}
    rows, cols = len(values), len(values[0])
    equations = []
    for i in range(rows):  # each row: cells − total = 0
        eq = np.zeros(len(hidden))
        for j in range(cols):
            if (i, j) in index:
                eq[index[(i, j)]] = -1.0 if j == cols - 1 else 1.0
        equations.append(eq)
    for j in range(cols):
        eq = np.zeros(len(hidden))
        for i in range(rows):
            if (i, j) in index:
                eq[index[(i, j)]] = -1.0 if i == rows - 1 else 1.0
        equations.append(eq)
    a = np.array(equations)
    rank = np.linalg.matrix_rank(a) if len(hidden) else 0
    solvable = set()
    for p, k in index.items():
        unit = np.zeros(len(hidden))
        unit[k] = 1.0
        if np.linalg.matrix_rank(np.vstack([a, unit])) == rank:
            solvable.add(p)
    return solvable


def test_a_single_small_cell_is_hidden_with_the_cheapest_rectangle():
    # [[20, 5], [30, 40]]: margins 25, 70 | 50, 45 | 95. Only 5 is small.
    # Rectangles through (0, 1) cost 20+30+40 = 90 (the interior), 20+50+45 = 115,
    # 25+40+70 = 135 or 25+45+95 = 165: the interior four cells are hidden.
    result = suppress_table([[20, 5], [30, 40]])
    assert result.primary == {(0, 1)}
    assert result.complementary == {(0, 0), (1, 0), (1, 1)}
    assert result.published() == [
        [None, None, 25],
        [None, None, 70],
        [50, 45, 95],
    ]


def test_a_hidden_cell_cannot_be_recovered_from_the_totals_of_three_sites():
    # Sites × (in numerator, not in numerator): site 1 has 3 in the numerator.
    # Rectangle costs through (0, 0): 17+25+30 = 72 is the smallest (next: 17+40+35 = 92).
    result = suppress_table([[3, 17], [25, 30], [40, 35]])
    assert result.hidden == {(0, 0), (0, 1), (1, 0), (1, 1)}
    # Published: denominators 20, 55, 75; site 3 in full; totals 68, 82, 150.
    # x00 + x01 = 20, x10 + x11 = 55, x00 + x10 = 68 − 40, x01 + x11 = 82 − 35:
    # four equations of rank 3, so x00 can be anything from 0 to 20.
    assert _recoverable(result.values, result.hidden) == set()


def test_a_small_row_total_is_hidden_and_so_is_what_would_reveal_it():
    # [[4, 6], [30, 40]]: row 0 is all small (4, 6 and its total 10).
    # Bridge (0, 0): rectangle with row 1 hides 30 and 40 (cost 70, the cheapest);
    # then (0, 2) needs a cycle: hiding row 1's total 70 closes r0-c2-r1-c0.
    result = suppress_table([[4, 6], [30, 40]])
    assert result.primary == {(0, 0), (0, 1), (0, 2)}
    assert result.complementary == {(1, 0), (1, 1), (1, 2)}
    assert result.published() == [[None, None, None], [None, None, None], [34, 46, 80]]
    assert _recoverable(result.values, result.hidden) == set()


def test_zero_counts_are_not_suppressed():
    result = suppress_table([[0, 12], [15, 20]])
    assert result.hidden == frozenset()


def test_the_threshold_is_configurable_and_zero_turns_suppression_off():
    assert suppress_table([[20, 5], [30, 40]], threshold=4).hidden == frozenset()
    assert suppress_table([[20, 1], [30, 40]], threshold=0).hidden == frozenset()
    # threshold 25: 20 and the row total 25 are small too.
    assert suppress_table([[20, 5], [30, 40]], threshold=25).primary == {(0, 0), (0, 1), (0, 2)}


def test_a_single_row_hides_its_total_with_its_cell():
    # One row: the totals row repeats it, so a small cell hides its column total too.
    result = suppress_table([[3, 40]])
    assert (0, 0) in result.hidden and (1, 0) in result.hidden
    assert _recoverable(result.values, result.hidden) == set()


def test_an_entry_hidden_elsewhere_is_protected_too():
    result = suppress_table([[50, 40], [30, 60]], hidden=[(2, 0)])
    assert result.primary == frozenset()
    assert (2, 0) in result.hidden
    assert _recoverable(result.values, result.hidden) == set()


@pytest.mark.parametrize("seed", range(30))
def test_no_hidden_cell_of_a_random_table_can_be_solved_from_the_totals(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 6)), int(rng.integers(1, 4)))
    counts = rng.choice([0, 1, 3, 8, 12, 25, 60], size=shape).tolist()
    result = suppress_table(counts)
    small = {
        (i, j) for (i, row) in enumerate(result.values) for (j, v) in enumerate(row) if 1 <= v <= 10
    }
    assert small <= result.hidden
    assert _recoverable(result.values, result.hidden) == set()


def test_bad_tables_are_refused():
    with pytest.raises(InputError, match="at least one cell"):
        suppress_table([])
    with pytest.raises(InputError, match="Row 1"):
        suppress_table([[1, 2], [3]])
    with pytest.raises(InputError, match="whole numbers"):
        suppress_table([[1, -2]])
    with pytest.raises(InputError, match="threshold"):
        suppress_table([[1]], threshold=-1)


def test_every_entry_of_a_table_of_small_counts_is_hidden():
    # Every cell, margin and the grand total (2 + 3 + 4 + 1 = 10) is from 1 to 10.
    result = suppress_table([[2, 3], [4, 1]])
    assert result.hidden == set(itertools.product(range(3), range(3)))
    # [[2, 3], [4, 20]]: margins 5, 24 | 6, 23 | 29. Small: 2, 3, 5 and 4, 6.
    # Row 0's total 5 would follow from its column: 29 − 24, so 24 goes; then row 1
    # has 4 and 24 hidden beside 20... the rectangles end up hiding 20, 24 and 23,
    # and only the grand total 29 is published.
    result = suppress_table([[2, 3], [4, 20]])
    assert result.primary == {(0, 0), (0, 1), (0, 2), (1, 0), (2, 0)}
    assert result.complementary == {(1, 1), (1, 2), (2, 1)}
    assert _recoverable(result.values, result.hidden) == set()
