"""Small-cell suppression on hand-worked tables (careloop.trust.disclosure).

Positions index the table with margins: the last row holds the column
totals, the last column the row totals.
"""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pandas as pd
import pytest

from careloop.core.errors import InputError
from careloop.measures.sharing import share_results
from careloop.trust.attacker import attack
from careloop.trust.disclosure import (
    FIXED,
    HIDDEN,
    OPEN,
    LinkedBlock,
    protect_block,
    suppress_table,
)


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


# --- linked tables (protect_block) and the intruder with a solver (careloop.trust.attacker) ---


def _frame(rows, *, period=date(2024, 1, 1), measure="m"):
    """Result rows (site, stratum, numerator, denominator, excluded) as a result frame."""
    return pd.DataFrame(
        {
            "measure_id": measure,
            "definition_hash": "h",
            "site": [r[0] for r in rows],
            "period_start": period,
            "period_end": date(period.year, period.month, 28),
            "stratum": [r[1] for r in rows],
            "numerator": pd.array([r[2] for r in rows], dtype="Int64"),
            "denominator": pd.array([r[3] for r in rows], dtype="Int64"),
            "value": [r[2] / r[3] if r[2] is not None and r[3] else float("nan") for r in rows],
            "excluded": pd.array([r[4] for r in rows], dtype="Int64"),
            "small_denominator": [r[3] is not None and r[3] <= 10 for r in rows],
        }
    )


def _hidden(protection, key):
    return protection.hidden[key]


def test_a_small_site_count_is_hidden_with_a_second_site():
    # Network 68 of 150; A 3 of 20 (small), B 25 of 55, C 40 of 75. A alone would be the
    # network minus B and C, so a second site goes with it: B, the smaller.
    block = LinkedBlock(
        sites=("A", "B", "C"),
        strata={},
        counts={
            ("A", ""): (3, 20, 0),
            ("B", ""): (25, 55, 0),
            ("C", ""): (40, 75, 0),
            ("", ""): (68, 150, 0),
        },
        state={k: (OPEN, OPEN, OPEN) for k in [("A", ""), ("B", ""), ("C", ""), ("", "")]},
    )
    result = protect_block(block)
    assert result.exposed == 0
    assert {k for k, h in result.hidden.items() if any(h)} == {("A", ""), ("B", "")}
    assert result.hidden[("A", "")] == (True, True, False)  # exclusions (0) stay published


def test_a_small_site_total_takes_a_column_of_every_stratifier_table_with_it():
    # Site A has 5 patients (3 of them in the numerator), all female; B has 110. A's total
    # and A's women are small. A's total can only move with another row's total (B's costs
    # 110, the network's 115), and then the sex table must carry the change between A and
    # B: through the women's column (A's men are 0 and cannot go down). So A, B, A's women
    # and B's women are hidden (A 4 of 6 with B 29 of 59 fits every published number).
    counts = {
        ("A", ""): (3, 5, 0),
        ("B", ""): (55, 110, 0),
        ("", ""): (58, 115, 0),
        ("A", "sex=female"): (3, 5, 0),
        ("A", "sex=male"): (0, 0, 0),
        ("B", "sex=female"): (30, 60, 0),
        ("B", "sex=male"): (25, 50, 0),
        ("", "sex=female"): (33, 65, 0),
        ("", "sex=male"): (25, 50, 0),
    }
    block = LinkedBlock(
        sites=("A", "B"),
        strata={"sex": (("female", "male"), True)},
        counts=counts,
        state={k: (OPEN, OPEN, OPEN) for k in counts},
    )
    result = protect_block(block)
    hidden = {k for k, h in result.hidden.items() if h[0]}
    assert hidden == {("A", ""), ("B", ""), ("A", "sex=female"), ("B", "sex=female")}
    rows = [(*k, *v) for k, v in counts.items()]
    report = attack([share_results(_frame(rows))], _frame(rows))
    assert report.pinned == ()
    assert {(h.site, h.stratum) for h in report.hidden} == hidden


def test_a_count_no_rectangle_protects_is_protected_by_a_longer_cycle():
    # Exclusions of three sites by sex, where the network's row, its strata and site S1's
    # total were published before. S0's 3 women can be 4 only if S1 trades a woman for a
    # man and S2 loses its one man: a cycle through six cells and two totals.
    exc = {
        ("S0", ""): 3,
        ("S1", ""): 185,
        ("S2", ""): 1,
        ("", ""): 189,
        ("S0", "sex=female"): 3,
        ("S0", "sex=male"): 0,
        ("S1", "sex=female"): 32,
        ("S1", "sex=male"): 153,
        ("S2", "sex=female"): 0,
        ("S2", "sex=male"): 1,
        ("", "sex=female"): 35,
        ("", "sex=male"): 154,
    }
    fixed = {("S1", ""), ("", ""), ("", "sex=female"), ("", "sex=male")}
    block = LinkedBlock(
        sites=("S0", "S1", "S2"),
        strata={"sex": (("female", "male"), True)},
        counts={k: (50, 60, v) for k, v in exc.items()},
        state={k: (FIXED, FIXED, FIXED if k in fixed else OPEN) for k in exc},
    )
    result = protect_block(block)
    assert result.exposed == 0
    assert result.hidden[("S0", "sex=female")][2]
    # The intruder sees the published exclusions of both releases (numerator and
    # denominator are the same everywhere and published: 50 and 60 per row would not add
    # up, so give the intruder exclusions only).
    released = [
        (s, t, None, None, None if result.hidden[(s, t)][2] else v) for (s, t), v in exc.items()
    ]
    # The earlier release showed sites and the network's strata (S0's and S2's totals hidden).
    earlier = [
        (s, t, None, None, v if (s, t) in fixed else None)
        for (s, t), v in exc.items()
        if s == "" or t == ""
    ]
    truth = _frame([(s, t, 0, 0, v) for (s, t), v in exc.items()])
    report = attack([_frame(earlier), _frame(released)], truth)
    pinned = [h for h in report.pinned if h.count == "excluded"]
    assert pinned == []


def test_a_count_fixed_by_earlier_releases_is_published_rather_than_hidden_for_nothing():
    # A ratio: S0's denominator (0) and the network's 0–4 denominator (16) were published
    # before, so S1's 0–4 denominator can only be 16. Hiding it would hide nothing.
    counts = {
        ("S0", ""): (19, 0, 0),
        ("S1", ""): (35, 19, 0),
        ("", ""): (54, 19, 0),
        ("S0", "age_band=0-4"): (2, 0, 0),
        ("S0", "age_band=5-9"): (17, 0, 0),
        ("S1", "age_band=0-4"): (19, 16, 0),
        ("S1", "age_band=5-9"): (16, 3, 0),
        ("", "age_band=0-4"): (21, 16, 0),
        ("", "age_band=5-9"): (33, 3, 0),
    }
    earlier = {("S0", ""), ("S1", ""), ("", ""), ("", "age_band=0-4")}
    block = LinkedBlock(
        sites=("S0", "S1"),
        strata={"age_band": (("0-4", "5-9"), True)},
        counts=counts,
        state={k: (FIXED, FIXED, FIXED) if k in earlier else (OPEN, OPEN, OPEN) for k in counts},
        subset=False,
    )
    result = protect_block(block)
    _num, den, _exc = result.hidden[("S1", "age_band=0-4")]
    assert not den  # fixed at 16 by what was published: shown
    assert result.hidden[("S1", "age_band=5-9")][1]  # 3 is small: hidden


def test_what_an_earlier_release_hid_stays_hidden():
    counts = {("A", ""): (30, 50, 0), ("B", ""): (40, 60, 0), ("", ""): (70, 110, 0)}
    block = LinkedBlock(
        sites=("A", "B"),
        strata={},
        counts=counts,
        state={
            ("A", ""): (HIDDEN, HIDDEN, OPEN),
            ("B", ""): (OPEN, OPEN, OPEN),
            ("", ""): (OPEN, OPEN, OPEN),
        },
    )
    result = protect_block(block)
    assert result.hidden[("A", "")][:2] == (True, True)
    # With two sites, A's hidden counts need B's (or the network's) hidden too.
    assert result.hidden[("B", "")][:2] == (True, True) or result.hidden[("", "")][:2] == (
        True,
        True,
    )


def test_the_intruder_recovers_a_count_hidden_in_one_release_and_derivable_from_another():
    # Release 1 hides A (3 of 20) and B; a careless release 2 prints B. Then A = network − B − C.
    truth = _frame(
        [("A", "", 3, 20, 0), ("B", "", 25, 55, 0), ("C", "", 40, 75, 0), ("", "", 68, 150, 0)]
    )
    first = _frame(
        [
            ("A", "", None, None, 0),
            ("B", "", None, None, 0),
            ("C", "", 40, 75, 0),
            ("", "", 68, 150, 0),
        ]
    )
    second = _frame(
        [("B", "", 25, 55, 0), ("C", "", 40, 75, 0), ("A", "", None, None, 0), ("", "", 68, 150, 0)]
    )
    assert attack([first], truth).pinned == ()
    pinned = {(h.site, h.count): (h.low, h.high) for h in attack([first, second], truth).pinned}
    assert pinned[("A", "numerator")] == (3, 3)
    assert pinned[("A", "denominator")] == (20, 20)
    assert pinned[("B", "numerator")] == (25, 25)  # hidden once, printed once


def test_the_intruder_knows_a_listed_row_is_not_empty_when_empty_rows_are_left_out():
    # B's only count is 1, hidden with A's. If empty rows are never listed, B's presence
    # says B ≥ 1: B cannot be 0, so its interval does not reach v − 1.
    truth = _frame([("A", "", 20, 40, 0), ("B", "", 0, 1, 0), ("", "", 20, 41, 0)])
    shown = _frame([("A", "", None, None, 0), ("B", "", None, None, 0), ("", "", 20, 41, 0)])
    assert attack([shown], truth, empty_rows_listed=True).pinned == ()
    pinned = attack([shown], truth, empty_rows_listed=False).pinned
    assert {(h.site, h.count, h.low) for h in pinned} >= {("B", "denominator", 1)}


def _brute_force(cube_max, published, forms, hidden_forms):
    """Every integer cube with cells 0..cube_max consistent with ``published``: bounds."""
    cells = len(forms[0][1])
    grid = np.array(list(itertools.product(range(cube_max + 1), repeat=cells)), dtype=np.int16)
    ok = np.ones(len(grid), dtype=bool)
    for (_key, coef), value in zip(forms, published, strict=True):
        ok &= grid @ coef == value
    feasible = grid[ok]
    return {key: (int((feasible @ c).min()), int((feasible @ c).max())) for key, c in hidden_forms}


@pytest.mark.parametrize("seed", range(6))
def test_the_intruders_exact_bounds_agree_with_brute_force_enumeration(seed):
    # Two sites × two sexes × (in the numerator, not): eight cells of at most 2, so the
    # network denominator is at most 16 and every cell is at most 16 — enumerate them all
    # (numpy, 3^8 after bounding by the largest true cell + 1: every bound found by the
    # solver inside that box is compared).
    rng = np.random.default_rng(seed)
    cube = rng.integers(0, 3, size=(2, 2, 2))  # site, sex, outcome (y1, y2)
    sites, sexes = ["A", "B"], ["female", "male"]
    rows = []
    for si in [None, 0, 1]:
        for xi in [None, 0, 1]:
            sub = cube if si is None else cube[si : si + 1]
            sub = sub if xi is None else sub[:, xi : xi + 1]
            num, den = int(sub[..., 0].sum()), int(sub.sum())
            rows.append(
                (
                    "" if si is None else sites[si],
                    "" if xi is None else f"sex={sexes[xi]}",
                    num,
                    den,
                    0,
                )
            )
    truth = _frame(rows)
    hide = rng.random(len(rows)) < 0.5
    hide[0] = False  # the network row is published: it bounds the cube
    shown = _frame(
        [
            (s, t, None if h else n, None if h else d, 0)
            for (s, t, n, d, _e), h in zip(rows, hide, strict=True)
        ]
    )
    report = attack([shown], truth, exact=True)

    def form(site, stratum, count):
        c = np.zeros((2, 2, 2), dtype=np.int16)
        s = slice(None) if site == "" else sites.index(site)
        x = slice(None) if stratum == "" else sexes.index(stratum.split("=")[1])
        if count in ("numerator", "denominator"):
            c[s, x, 0] = 1
        if count in ("denominator", "denominator - numerator"):
            c[s, x, 1] = 1
        return c.ravel()

    published = []
    forms = []
    for (s, t, n, d, _e), h in zip(rows, hide, strict=True):
        if not h:
            forms += [
                ((s, t, "numerator"), form(s, t, "numerator")),
                ((s, t, "denominator"), form(s, t, "denominator")),
            ]
            published += [n, d]
    hidden_forms = [
        ((h.site, h.stratum, h.count), form(h.site, h.stratum, h.count))
        for h in report.hidden
        if h.count != "excluded"
    ]
    box = int(cube.max()) + 1
    brute = _brute_force(box, published, forms, hidden_forms)
    for h in report.hidden:
        if h.count == "excluded":
            continue
        low, high = brute[(h.site, h.stratum, h.count)]
        assert h.low == low, h
        # The enumeration stops at the box; the solver's maximum may go beyond it.
        assert min(h.high, high) == high if h.high > high else h.high == high, h
