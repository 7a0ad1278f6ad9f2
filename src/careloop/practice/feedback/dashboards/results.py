"""The stored results of the latest measure run, read once and kept while they last."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from careloop.core.errors import CareloopError, NotFound
from careloop.measures.runner import NETWORK, NO_SITE, latest_runs, load_results
from careloop.warehouse.connection import WarehouseOpener


@dataclass(frozen=True)
class StoredResults:
    """The results of the latest measure run."""

    run_id: str
    """The run."""
    run_at: datetime | None
    """When it ran (UTC)."""
    frame: pd.DataFrame = field(repr=False)
    """Its rows, columns ``careloop.measures.RESULT_COLUMNS`` (unstratified rows only)."""

    @property
    def sites(self) -> tuple[str, ...]:
        """Site codes with results, sorted (not the network)."""
        codes = {s for s in self.frame["site"].unique() if s not in (NETWORK, NO_SITE)}
        return tuple(sorted(codes))

    @property
    def measure_ids(self) -> tuple[str, ...]:
        """Measures with results, in the order they were stored."""
        return tuple(dict.fromkeys(self.frame["measure_id"]))

    _groups: dict[tuple[str, str], pd.DataFrame] = field(
        default_factory=dict, repr=False, compare=False
    )

    def rows(self, measure_id: str, site: str = NETWORK) -> pd.DataFrame:
        """One measure's unstratified rows at one site (``""``: the network), by period."""
        if not self._groups and len(self.frame):
            # Split once: a measure page asks for every site of a 100-site network.
            ordered = self.frame.sort_values("period_start", kind="stable")
            groups = {
                (str(key[0]), str(key[1])): group.reset_index(drop=True)
                for key, group in ordered.groupby(["measure_id", "site"], sort=False)
            }
            self._groups.update(groups)  # all at once: concurrent requests share this object
        empty = self.frame.iloc[0:0]
        return self._groups.get((measure_id, site), empty)


_CACHE: dict[tuple[str, str], StoredResults] = {}
_CACHE_LOCK = threading.Lock()


def stored_results(warehouse: WarehouseOpener) -> StoredResults:
    """The latest run's results in the installation's warehouse (cached per run).

    Raises:
        NotFound: no warehouse yet, or no measure run stored in it.
    """
    how = (
        "Measure results come from `careloop warehouse refresh` and "
        "`careloop measures run --by site` (or `careloop demo`)."
    )
    try:
        opened = warehouse()
    except CareloopError as exc:  # a file another process writes
        raise NotFound(f"No measure results to show: {exc.message} {how}") from exc
    if opened is None:
        raise NotFound(f"No measure results to show: there is no warehouse yet. {how}")
    with opened:
        latest = latest_runs(opened)
        key = (opened.url, latest.key)
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is not None:
            return cached
        frame = load_results(opened, latest=latest)
    frame = frame[frame["stratum"] == ""].reset_index(drop=True)
    result = StoredResults(latest.key, latest.run_at, frame)
    with _CACHE_LOCK:
        _CACHE.clear()  # one set of runs at a time: the latest
        _CACHE[key] = result
    return result
