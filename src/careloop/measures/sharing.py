"""Disclosure control for measure results that leave the installation.

One measure in one period is a *block*: its network row, site rows, and for
each stratifier (``sex=…``, ``age_band=…``) the network and site rows of each
value. Every row is the sum of the rows below it, so the rows of a block are
linked tables sharing their totals, and a release is a package of blocks.

:func:`share_results` protects each block as a whole
(:func:`careloop.trust.disclosure.protect_block`): every count from 1 to the
threshold (numerator, denominator, exclusions, and denominator − numerator)
is hidden, and so are further counts, chosen so that no hidden count can be
narrowed to fewer than three values from everything published — in this
release and, given the ``history`` of earlier releases, in all of them
together. A count hidden once stays hidden; a count published once may be
published again. Rates are hidden with their counts, and so is
``small_denominator`` where the denominator is hidden. Every row of the
levels released is listed, zeros included, so that a missing row tells
nothing.

:func:`release_results` is the same with the release ledger kept in the
warehouse (:data:`RELEASE_TABLE`, :data:`RELEASE_CELL_TABLE`): earlier
releases are read from it, and this release is written to it (what, when, by
whom, the hash of the data and of what left) before anything leaves.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
import numpy as np
import pandas as pd

import careloop
from careloop.core.errors import InputError
from careloop.measures.runner import _OMOP_READ, NETWORK, RESULT_COLUMNS
from careloop.trust.disclosure import (
    FIXED,
    HIDDEN,
    OPEN,
    UNSEEN,
    DisclosurePolicy,
    Key,
    LinkedBlock,
    State,
    blur,
    protect_block,
)
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings

RELEASE_TABLE = "careloop_release"
"""Warehouse table of the release ledger: one row per release."""
RELEASE_CELL_TABLE = "careloop_release_cell"
"""Warehouse table of the release ledger: every row a release showed, true and published."""

RELEASE_SCHEMA = ibis.schema(
    {
        "release_id": "!string",
        "released_at": "!timestamp",
        "released_by": "!string",
        "purpose": "!string",
        "query_key": "!string",
        "measures": "!string",
        "levels": "!string",
        "period_from": "date",
        "period_to": "date",
        "policy": "!string",
        "rows": "!int64",
        "hidden_counts": "!int64",
        "results_sha256": "!string",
        "published_sha256": "!string",
        "warehouse_state": "!string",
        "code_version": "!string",
    }
)
CELL_SCHEMA = ibis.schema(
    {
        "release_id": "!string",
        "measure_id": "!string",
        "definition_hash": "!string",
        "period_start": "!date",
        "period_end": "!date",
        "site": "!string",
        "stratum": "!string",
        "numerator": "!int64",
        "denominator": "!int64",
        "excluded": "!int64",
        "numerator_shown": "int64",
        "denominator_shown": "int64",
        "excluded_shown": "int64",
    }
)
_BLOCK = ["measure_id", "definition_hash", "period_start", "period_end"]
_COUNTS = ("numerator", "denominator", "excluded")
Level = tuple[bool, str | None]
_SHOWN = ("numerator_shown", "denominator_shown", "excluded_shown")


@dataclass(frozen=True)
class SharedRelease:
    """Result rows as they may leave, and what the ledger keeps of them."""

    published: pd.DataFrame
    """The rows to write: hidden counts missing, ``suppressed`` marking rows with any."""
    cells: pd.DataFrame = field(repr=False)
    """Every row released, with true counts and the published ones (ledger rows)."""
    hidden_counts: int
    """Counts hidden (numerator, denominator and exclusions of every row)."""
    changed_blocks: int
    """Measure × periods whose data changed since an earlier release (not combined)."""
    exposed_counts: int
    """Small counts that earlier releases already determine (0 unless the data changed
    between releases in a way the ledger could not see)."""
    release_id: str | None = None
    """The ledger's id of the release (:func:`release_results` only)."""


def _levels(measures: list[Any], sites: list[str], strata: list[str]) -> dict[Any, set[Level]]:
    """Per measure: the levels (site or not, stratifier or none) its rows show."""
    out: dict[Any, set[Level]] = {}
    for measure, site, stratum in zip(measures, sites, strata, strict=True):
        out.setdefault(measure, set()).add((site != NETWORK, stratum.partition("=")[0] or None))
    return out


def _complete(columns: dict[str, list[Any]]) -> None:
    """Add every level's missing combinations to ``columns`` as zero rows.

    The runner leaves out rows whose counts are all zero; listed, they tell an
    intruder nothing that a missing row would not.
    """
    measures = list(zip(columns["measure_id"], columns["definition_hash"], strict=True))
    levels = _levels(columns["measure_id"], columns["site"], columns["stratum"])
    sites: dict[Any, set[str]] = {}
    values: dict[Any, dict[str, set[str]]] = {}
    periods: dict[Any, dict[Any, Any]] = {}
    counted: dict[Any, bool] = {}
    have: set[tuple[Any, ...]] = set()
    for i, measure in enumerate(measures):
        site, stratum = columns["site"][i], columns["stratum"][i]
        if site != NETWORK:
            sites.setdefault(measure, set()).add(site)
        if stratum:
            values.setdefault(measure, {}).setdefault(stratum.partition("=")[0], set()).add(stratum)
        start = columns["period_start"][i]
        periods.setdefault(measure, {})[start] = columns["period_end"][i]
        value = columns["value"][i]
        counted[measure] = counted.get(measure, True) and value == columns["numerator"][i]
        have.add((measure, start, site, stratum))
    for measure, ends in periods.items():
        combos: list[Key] = []
        for has_site, name in sorted(levels[measure[0]], key=str):
            for site in sorted(sites.get(measure, set())) if has_site else [NETWORK]:
                strata = sorted(values[measure][name]) if name else [NETWORK]
                combos += [(site, s) for s in strata]
        for start, end in ends.items():
            for site, stratum in combos:
                if (measure, start, site, stratum) in have:
                    continue
                for name, value in (
                    ("measure_id", measure[0]),
                    ("definition_hash", measure[1]),
                    ("site", site),
                    ("period_start", start),
                    ("period_end", end),
                    ("stratum", stratum),
                    ("numerator", 0),
                    ("denominator", 0),
                    ("value", 0.0 if counted[measure] else math.nan),
                    ("excluded", 0),
                    ("small_denominator", True),
                ):
                    columns[name].append(value)


def _block(
    keys: list[Key],
    rows: list[tuple[int, int, int]],
    earlier: list[tuple[Any, ...]] | None,
    unseen: list[tuple[Key, tuple[int, int, int]]] | None,
) -> tuple[LinkedBlock, bool]:
    """The linked block of one measure × period: this release's rows and earlier ones.

    ``keys`` and ``rows`` (numerator, denominator, excluded) are this release's;
    ``earlier`` holds (key, counts, shown flags) of earlier releases; ``unseen``
    the rows of levels never released (their small counts are protected too).
    Returns the block and whether the data changed since an earlier release
    (then only where that release hid counts is kept).
    """
    now = dict(zip(keys, rows, strict=True))
    before: dict[Key, tuple[tuple[int, int, int], tuple[bool, bool, bool]]] = {}
    for key, seen, shown in earlier or ():
        old = before.get(key)
        # A count hidden in any earlier release stays hidden.
        if old is not None:
            shown = (shown[0] and old[1][0], shown[1] and old[1][1], shown[2] and old[1][2])
        before[key] = (seen, shown)
    changed = any(k in now and now[k] != v[0] for k, v in before.items())
    counts = dict(now)
    state: dict[Key, State] = {k: (OPEN, OPEN, OPEN) for k in now}
    for key, (values, shown) in before.items():
        if changed:
            if key in now:
                a, b, c = (OPEN if x else HIDDEN for x in shown)
                state[key] = (a, b, c)
            continue
        counts[key] = values
        a, b, c = (FIXED if x else HIDDEN for x in shown)
        state[key] = (a, b, c)
    for key, values in unseen or ():
        # Zeros may be left as they are: known or not, a zero protects nothing.
        if key not in counts and any(values):
            counts[key] = values
            state[key] = (UNSEEN, UNSEEN, UNSEEN)
    sites = sorted({s for s, _t in counts if s != NETWORK})
    strata: dict[str, tuple[set[str], bool]] = {}
    for site, stratum in counts:
        if stratum:
            name, _, value = stratum.partition("=")
            seen_values, full = strata.setdefault(name, (set(), False))
            seen_values.add(value)
            if site != NETWORK and not full:
                strata[name] = (seen_values, True)
    block = LinkedBlock(
        sites=tuple(sites),
        strata={n: (tuple(sorted(v)), full) for n, (v, full) in sorted(strata.items())},
        counts=counts,
        state=state,
        subset=all(c[0] <= c[1] for c in counts.values()),
    )
    return block, changed


def _history(history: pd.DataFrame | None) -> dict[tuple[Any, ...], list[tuple[Any, ...]]]:
    """Earlier ledger rows by block: (key, true counts, which counts were shown)."""
    out: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    if history is None or history.empty:
        return out
    shown = history[list(_SHOWN)].notna().to_numpy().tolist()
    counts = history[list(_COUNTS)].to_numpy(dtype="int64").tolist()
    for m, h, p, e, s, q, c, f in zip(
        *(history[c].tolist() for c in _BLOCK),
        history.site.fillna(NETWORK).astype(str).tolist(),
        history.stratum.fillna(NETWORK).astype(str).tolist(),
        counts,
        shown,
        strict=True,
    ):
        out.setdefault((m, h, p, e), []).append(((s, q), tuple(c), tuple(f)))
    return out


def _context(
    context: pd.DataFrame | None,
) -> dict[tuple[Any, ...], list[tuple[Key, tuple[int, int, int]]]]:
    """Rows of every level, by block: (key, counts)."""
    out: dict[tuple[Any, ...], list[tuple[Key, tuple[int, int, int]]]] = {}
    if context is None or context.empty:
        return out
    counts = context[list(_COUNTS)].to_numpy(dtype="int64").tolist()
    for m, h, p, e, s, q, c in zip(
        *(context[c].tolist() for c in _BLOCK),
        context.site.fillna(NETWORK).astype(str).tolist(),
        context.stratum.fillna(NETWORK).astype(str).tolist(),
        counts,
        strict=True,
    ):
        out.setdefault((m, h, p, e), []).append(((s, q), (c[0], c[1], c[2])))
    return out


def protect_release(
    results: pd.DataFrame,
    *,
    policy: DisclosurePolicy | None = None,
    history: pd.DataFrame | None = None,
    context: pd.DataFrame | None = None,
    noise_key: bytes | None = None,
) -> SharedRelease:
    """:func:`share_results` with the ledger rows of the release (kept by the caller).

    For callers that keep their own ledger (a network hub, the tests): pass
    the ``cells`` of every earlier release as ``history``.
    """
    policy = policy or DisclosurePolicy()
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise InputError(f"The results lack the columns {', '.join(missing)}.")
    if policy.noise and not noise_key:
        raise InputError("Noise needs a key (the installation's secret key).")
    columns = _sorted_columns(results)
    n = len(columns["measure_id"])
    keys: list[Key] = list(zip(columns["site"], columns["stratum"], strict=True))
    true = list(zip(*(columns[c] for c in _COUNTS), strict=True))
    blocks: dict[tuple[Any, ...], list[int]] = {}
    for i, block_key in enumerate(zip(*(columns[c] for c in _BLOCK), strict=True)):
        blocks.setdefault(block_key, []).append(i)
    earlier = _history(history)
    unseen = _context(context)
    hide = [(False, False, False)] * n
    changed = exposed = 0
    for block_key, positions in blocks.items():
        block, was_changed = _block(
            [keys[p] for p in positions],
            [true[p] for p in positions],
            earlier.get(block_key),
            unseen.get(block_key),
        )
        changed += was_changed
        protection = protect_block(block, threshold=policy.threshold)
        exposed += protection.exposed
        for p in positions:
            hide[p] = protection.hidden.get(keys[p], (False, False, False))
    published = _published_counts(columns, true, hide, policy=policy, noise_key=noise_key)
    value = list(columns["value"])
    flag: list[bool | None] = [bool(x) for x in columns["small_denominator"]]
    for i in range(n):
        if hide[i][0] or hide[i][1]:
            value[i] = math.nan
        elif policy.noise and noise_key and not _missing(value[i]):
            value[i] = _blurred_value(float(value[i]), true[i], published[i])
        if hide[i][1]:
            flag[i] = None
    data: dict[str, Any] = {name: columns[name] for name in RESULT_COLUMNS}
    for j, name in enumerate(_COUNTS):
        data[name] = pd.array([row[j] for row in published], dtype="Int64")
    data["value"] = np.asarray(value, dtype=np.float64)
    data["small_denominator"] = pd.array(flag, dtype="boolean")
    data["suppressed"] = np.array([any(h) for h in hide], dtype=bool)
    frame = pd.DataFrame(data)
    ledger: dict[str, Any] = {name: columns[name] for name in (*_BLOCK, "site", "stratum")}
    for j, name in enumerate(_COUNTS):
        ledger[name] = np.array([t[j] for t in true], dtype=np.int64)
        ledger[_SHOWN[j]] = pd.array([row[j] for row in published], dtype="Int64")
    cells = pd.DataFrame(ledger)
    return SharedRelease(
        published=frame,
        cells=cells,
        hidden_counts=sum(sum(h) for h in hide),
        changed_blocks=changed,
        exposed_counts=exposed,
    )


def _sorted_columns(results: pd.DataFrame) -> dict[str, list[Any]]:
    """The results as plain lists, completed and sorted by measure, site, stratum, period."""
    # Plain lists: pandas' per-call overhead dominates releases of a few dozen rows.
    columns: dict[str, list[Any]] = {c: results[c].tolist() for c in RESULT_COLUMNS}
    for name in ("site", "stratum"):
        columns[name] = [NETWORK if _missing(x) else str(x) for x in columns[name]]
    for name in _COUNTS:
        columns[name] = [int(x) for x in columns[name]]
    _complete(columns)
    order = sorted(
        range(len(columns["measure_id"])),
        key=lambda i: (
            columns["measure_id"][i],
            columns["site"][i],
            columns["stratum"][i],
            columns["period_start"][i],
        ),
    )
    return {name: [values[i] for i in order] for name, values in columns.items()}


def _published_counts(
    columns: dict[str, list[Any]],
    true: list[tuple[int, ...]],
    hide: list[tuple[bool, bool, bool]],
    *,
    policy: DisclosurePolicy,
    noise_key: bytes | None,
) -> list[list[int | None]]:
    """Each row's counts as released: hidden (None), blurred with noise, or as counted."""
    n = len(true)
    published: list[list[int | None]] = []
    for i in range(n):
        row: list[int | None] = []
        for j, name in enumerate(_COUNTS):
            if hide[i][j]:
                row.append(None)
            elif policy.noise and noise_key:
                label = "|".join(str(columns[c][i]) for c in (*_BLOCK, "site", "stratum"))
                row.append(
                    blur(
                        true[i][j],
                        key=noise_key,
                        label=f"{label}|{name}|{true[i][j]}",
                        policy=policy,
                    )
                )
            else:
                row.append(true[i][j])
        published.append(row)
    return published


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _blurred_value(value: float, true: tuple[int, int, int], shown: list[int | None]) -> float:
    """A rate or count recomputed from blurred counts (a mean or median stays as it is)."""
    num, den = shown[0], shown[1]
    if num is None or den is None:
        return value
    if true[1] and math.isclose(value, true[0] / true[1]):
        return num / den if den else math.nan
    if value == true[0]:
        return float(num)
    return value


def share_results(
    results: pd.DataFrame,
    *,
    threshold: int | None = None,
    policy: DisclosurePolicy | None = None,
    history: pd.DataFrame | None = None,
    context: pd.DataFrame | None = None,
    noise_key: bytes | None = None,
) -> pd.DataFrame:
    """Result rows as they may be shared: small counts and what would reveal them hidden.

    Args:
        results: Rows with :data:`~careloop.measures.RESULT_COLUMNS`, as computed.
        threshold: Counts from 1 to this are hidden (0: nothing is hidden);
            overrides the policy's.
        policy: Threshold and optional noise (default :class:`DisclosurePolicy`).
        history: Ledger rows of earlier releases of the same measures
            (columns of :data:`CELL_SCHEMA`); the release is protected against
            them too. :func:`release_results` reads and writes them for you.
        context: The same results at every level (sites × each stratifier),
            of which ``results`` is the part to release. Counts never released
            are then protected too: site totals released once and the network's
            strata another time bound each site's strata (Fréchet bounds), and a
            small one must not be narrowed that way.
        noise_key: Secret key for the policy's noise.

    Returns:
        Every row of the levels in ``results`` (all-zero rows listed too), with
        hidden ``numerator``, ``denominator`` and ``excluded`` missing (nullable
        integers), ``value`` and ``small_denominator`` missing where the
        numerator and denominator are, and a ``suppressed`` column marking rows
        with anything hidden.
    """
    chosen = policy or DisclosurePolicy()
    if threshold is not None:
        chosen = DisclosurePolicy(**{**chosen.__dict__, "threshold": threshold})
    return protect_release(
        results, policy=chosen, history=history, context=context, noise_key=noise_key
    ).published


# --- the release ledger -------------------------------------------------------------


def _sha256(frame: pd.DataFrame) -> str:
    text = frame.to_csv(index=False, date_format="%Y-%m-%d")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _query_key(results: pd.DataFrame) -> tuple[str, dict[str, str], list[str]]:
    measures = dict(sorted(set(zip(results.measure_id, results.definition_hash, strict=True))))
    levels = sorted(
        f"{m}:{'site' if s else 'network'}:{n or ''}"
        for m, lv in _levels(
            results.measure_id.tolist(),
            results.site.fillna(NETWORK).astype(str).tolist(),
            results.stratum.fillna(NETWORK).astype(str).tolist(),
        ).items()
        for s, n in lv
    )
    periods = sorted({str(p) for p in results.period_start})
    text = json.dumps([measures, levels, periods], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), measures, levels


def release_history(warehouse: Warehouse, results: pd.DataFrame) -> pd.DataFrame:
    """Ledger rows of earlier releases of the measures and periods in ``results``."""
    if not warehouse.has_table(RELEASE_CELL_TABLE) or results.empty:
        return pd.DataFrame(columns=list(CELL_SCHEMA.names))
    with quiet_engine_warnings():
        t = warehouse.table(RELEASE_CELL_TABLE)
        wanted = ibis.literal(False)
        for measure_id, definition_hash in sorted(
            set(zip(results.measure_id, results.definition_hash, strict=True))
        ):
            wanted |= (t.measure_id == measure_id) & (t.definition_hash == definition_hash)
        first: date = min(results.period_start)
        last: date = max(results.period_start)
        rows = t.filter(wanted & (t.period_start >= first) & (t.period_start <= last))
        frame: pd.DataFrame = rows.execute()
    frame["period_start"] = pd.to_datetime(frame.period_start).dt.date
    frame["period_end"] = pd.to_datetime(frame.period_end).dt.date
    return frame


def _check_repeats(warehouse: Warehouse, key: str, policy: DisclosurePolicy, now: datetime) -> None:
    if policy.repeat_limit == 0 or not warehouse.has_table(RELEASE_TABLE):
        return
    since = (now - timedelta(days=policy.repeat_days)).replace(tzinfo=None)
    with quiet_engine_warnings():
        t = warehouse.table(RELEASE_TABLE)
        count = int(t.filter((t.query_key == key) & (t.released_at >= since)).count().execute())
    if count >= policy.repeat_limit:
        raise InputError(
            f"This release (the same measures, levels and periods) was made {count} times in "
            f"the last {policy.repeat_days} days; the limit is {policy.repeat_limit}. "
            "Wait, or ask the data steward to change CARELOOP_DISCLOSURE_REPEAT_LIMIT."
        )


def release_results(
    warehouse: Warehouse,
    results: pd.DataFrame,
    *,
    released_by: str,
    purpose: str = "",
    policy: DisclosurePolicy | None = None,
    context: pd.DataFrame | None = None,
    noise_key: bytes | None = None,
    now: datetime | None = None,
) -> SharedRelease:
    """Protect ``results`` against every earlier release and record this one in the ledger.

    The ledger rows are written before the caller lets anything leave: a
    release that fails to be recorded is not made.

    Args:
        warehouse: The warehouse the results were computed on (holds the ledger).
        results: Rows with :data:`~careloop.measures.RESULT_COLUMNS`.
        released_by: Who releases (a user's e-mail, ``cli:<login>``).
        purpose: What the release is for (free text, kept in the ledger).
        policy: Threshold, noise and repeat limit.
        context: The same results at every level (see :func:`share_results`).
        noise_key: Secret key for the policy's noise.
        now: The time of the release (default: now).

    Raises:
        InputError: the repeat limit forbids it.
    """
    policy = policy or DisclosurePolicy()
    when = now or datetime.now(UTC)
    key, measures, levels = _query_key(results)
    _check_repeats(warehouse, key, policy, when)
    history = release_history(warehouse, results)
    shared = protect_release(
        results, policy=policy, history=history, context=context, noise_key=noise_key
    )
    release_id = uuid.uuid4().hex
    warehouse.ensure_table(RELEASE_CELL_TABLE, CELL_SCHEMA)
    warehouse.ensure_table(RELEASE_TABLE, RELEASE_SCHEMA)
    cells = shared.cells.assign(release_id=release_id)
    if not cells.empty:
        warehouse.insert(RELEASE_CELL_TABLE, cells[list(CELL_SCHEMA.names)])
    ordered = results[list(RESULT_COLUMNS)].sort_values(
        ["measure_id", "site", "stratum", "period_start"], kind="stable"
    )
    header = {
        "release_id": release_id,
        "released_at": when.astimezone(UTC).replace(tzinfo=None),
        "released_by": released_by,
        "purpose": purpose,
        "query_key": key,
        "measures": json.dumps(measures, sort_keys=True),
        "levels": json.dumps(levels),
        "period_from": min(results.period_start) if not results.empty else None,
        "period_to": max(results.period_end) if not results.empty else None,
        "policy": json.dumps({**policy.__dict__}, sort_keys=True),
        "rows": len(shared.published),
        "hidden_counts": shared.hidden_counts,
        "results_sha256": _sha256(ordered.reset_index(drop=True)),
        "published_sha256": _sha256(shared.published),
        "warehouse_state": json.dumps(_state(warehouse), sort_keys=True),
        "code_version": careloop.__version__,
    }
    warehouse.insert(RELEASE_TABLE, pd.DataFrame([header]))
    return SharedRelease(
        published=shared.published,
        cells=shared.cells,
        hidden_counts=shared.hidden_counts,
        changed_blocks=shared.changed_blocks,
        exposed_counts=shared.exposed_counts,
        release_id=release_id,
    )


def _state(warehouse: Warehouse) -> dict[str, int]:
    return warehouse.row_counts([t for t in warehouse.list_tables() if t in set(_OMOP_READ)])


def releases(warehouse: Warehouse) -> pd.DataFrame:
    """The ledger's releases, newest first (columns of :data:`RELEASE_SCHEMA`)."""
    if not warehouse.has_table(RELEASE_TABLE):
        return pd.DataFrame(columns=list(RELEASE_SCHEMA.names))
    with quiet_engine_warnings():
        frame: pd.DataFrame = warehouse.table(RELEASE_TABLE).execute()
    return frame.sort_values("released_at", ascending=False, kind="stable").reset_index(drop=True)
