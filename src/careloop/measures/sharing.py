"""Disclosure control applied to measure results before they leave the installation.

Result rows form two-way tables: for one measure, period and stratum, the
site rows are the table's rows and the whole-network row their total; for one
measure, period and site, the rows of one stratifier (``sex=…``) are the rows
and the unstratified row their total. Each table has the columns *in the
numerator* and *in the denominator but not the numerator*, so its row totals
are the denominators. :func:`careloop.trust.disclosure.suppress_table` hides
small counts and their complements in each table; because tables share
totals, the passes repeat until no table hides anything new.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from careloop.measures.runner import NETWORK
from careloop.trust.disclosure import DEFAULT_THRESHOLD, suppress_table

_MAX_ROUNDS = 20


def _tables(frame: pd.DataFrame) -> Iterator[tuple[list[int], int | None]]:
    """(child row positions, parent row position) of every two-way table in ``frame``."""
    site = frame.site.to_numpy()
    stratum = frame.stratum.to_numpy()
    covered = np.zeros(len(frame), dtype=bool)
    # Sites within a measure × period × stratum; the network row is the total.
    for rows in frame.groupby(
        ["measure_id", "period_start", "stratum"], sort=False
    ).indices.values():
        parents = rows[site[rows] == NETWORK]
        children = rows[site[rows] != NETWORK]
        if len(children) and len(parents) == 1:
            covered[rows] = True
            yield [int(i) for i in children], int(parents[0])
    # Values of one stratifier within a measure × period × site; the unstratified row is the total.
    stratified = stratum != ""
    if stratified.any():
        # Positions in the whole frame: ``indices`` of a filtered frame count within it.
        unstratified = np.flatnonzero(~stratified)
        top = {
            key: int(unstratified[rows[0]])
            for key, rows in frame[~stratified]
            .groupby(["measure_id", "period_start", "site"], sort=False)
            .indices.items()
        }
        sub = frame[stratified].assign(
            careloop_name=frame.stratum[stratified].str.partition("=")[0]
        )
        positions = np.flatnonzero(stratified)
        groups = sub.groupby(["measure_id", "period_start", "site", "careloop_name"], sort=False)
        for key, rows in groups.indices.items():
            parent = top.get(key[:3])
            if parent is None:
                continue
            children = positions[rows]
            covered[children] = True
            covered[parent] = True
            yield [int(i) for i in children], parent
    for i in np.flatnonzero(~covered):
        yield [int(i)], None


def share_results(results: pd.DataFrame, *, threshold: int = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Result rows as they may be shared: small counts and their complements hidden.

    Args:
        results: Rows with :data:`~careloop.measures.RESULT_COLUMNS`.
        threshold: Counts from 1 to this are hidden (0: nothing is hidden).

    Returns:
        A copy where hidden ``numerator``, ``denominator`` and ``excluded`` are
        missing (nullable integers), ``value`` is missing when a count it is made
        of is hidden, and a ``suppressed`` column marks rows with anything hidden.
    """
    frame = results.reset_index(drop=True)
    n = len(frame)
    num = frame.numerator.to_numpy(dtype="int64")
    den = frame.denominator.to_numpy(dtype="int64")
    exc = frame.excluded.to_numpy(dtype="int64")
    hide_num = np.zeros(n, dtype=bool)
    hide_den = np.zeros(n, dtype=bool)
    hide_exc = np.zeros(n, dtype=bool)
    tables = list(_tables(frame))
    for _ in range(_MAX_ROUNDS):
        changed = False
        for children, parent in tables:
            rows = [*children, *([parent] if parent is not None else [])]
            last = len(children)  # the totals row of the table with margins
            seeds: list[tuple[int, int]] = []
            for pos, row in enumerate(rows):
                at = last if row == parent else pos
                if hide_num[row]:
                    seeds += [(at, 0), (at, 1)]
                if hide_den[row]:
                    seeds += [(at, 1), (at, 2)]
            counts = [[int(num[r]), int(den[r] - num[r])] for r in children]
            hidden = suppress_table(counts, threshold=threshold, hidden=seeds).hidden
            seeds_exc = [(last if r == parent else p, 0) for p, r in enumerate(rows) if hide_exc[r]]
            hidden_exc = suppress_table(
                [[int(exc[r])] for r in children], threshold=threshold, hidden=seeds_exc
            ).hidden
            for pos, row in enumerate(rows):
                at = last if row == parent else pos
                new_num = (at, 0) in hidden
                new_den = (at, 2) in hidden
                new_exc = (at, 0) in hidden_exc or (at, 1) in hidden_exc
                if (
                    (new_num and not hide_num[row])
                    or (new_den and not hide_den[row])
                    or (new_exc and not hide_exc[row])
                ):
                    changed = True
                hide_num[row] |= new_num
                hide_den[row] |= new_den
                hide_exc[row] |= new_exc
        if not changed:
            break
    out = frame.copy()
    out["numerator"] = pd.array(np.where(hide_num, 0, num), dtype="Int64")
    out.loc[hide_num, "numerator"] = pd.NA
    out["denominator"] = pd.array(den, dtype="Int64")
    out.loc[hide_den, "denominator"] = pd.NA
    out["excluded"] = pd.array(exc, dtype="Int64")
    out.loc[hide_exc, "excluded"] = pd.NA
    out.loc[hide_num | hide_den, "value"] = np.nan
    out["suppressed"] = hide_num | hide_den | hide_exc
    return out
