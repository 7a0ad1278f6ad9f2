"""The measure pages' data and figures, computed once per measure run and shared by every worker.

Building a measure page's SPC charts and Plotly figures takes most of a
second (several under load); the stored results change only when a measure
run is stored. So each page's data (:class:`~careloop.practice.feedback.
dashboards.MeasureDetail`, the overview, a site's view) and each measure's
figures are computed once, kept in memory, and written to
``DATA_DIR/cache/dashboards/`` so that other worker processes, and the
server after a restart, read them instead of computing them again.

An entry's key is a hash of everything the result depends on:

- the stored run (``StoredResults.run_id``: it changes with every measure run);
- the inputs the caller names: the measure, its recorded changes (knowledge
  deployments, learning cycles' changes, annotations), the catalogue's
  definitions; a new deployment or annotation is a new key;
- the code that computes it (the source of the dashboards, charts and
  analysis packages, careloop's and plotly's versions), so an upgrade never
  shows figures drawn by the old code.

What depends on the viewer (whose patient lists they may open) is never
cached: it is set again for each request. Entries of older runs are removed
when the first entry of a new run is written. The files are Python pickles
that only careloop writes, in the data directory that also holds the
registry and the secret key: whoever can write there owns the installation
anyway.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TypeVar

from careloop import __version__
from careloop.core.settings import Settings
from careloop.measures.catalog import MeasureCatalog
from careloop.practice.feedback import dashboards as dashboard
from careloop.practice.feedback.dashboards import MeasureDetail, Overview, SiteView, StoredResults
from careloop.trust.principal import Principal
from careloop.warehouse.connection import parse_warehouse_url, warehouse_opener

CACHE_FOLDER = Path("cache") / "dashboards"
"""Where, under the data directory, the entries are written."""

MEMORY_ENTRIES = 512
"""At most this many entries in memory (a 100-site network's measures, figures and sites)."""

_CODE_PACKAGES = ("careloop.practice.feedback.dashboards", "careloop.charts", "careloop.analysis")

T = TypeVar("T")


@dataclass
class CacheCounts:
    """How entries were found since the process started (for tests and the benchmark)."""

    computed: int = 0
    """Entries computed (in no cache)."""
    from_file: int = 0
    """Entries read from a file another process (or an earlier start) wrote."""
    from_memory: int = 0
    """Entries found in this process's memory."""


COUNTS = CacheCounts()
_MEMORY: dict[str, object] = {}
_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()
_CODE: list[str] = []
_PRUNED: set[tuple[Path, str]] = set()


def code_fingerprint() -> str:
    """A hash of the code that computes the pages' data and figures (once per process)."""
    if not _CODE:
        digest = hashlib.sha256(__version__.encode())
        import plotly

        digest.update(plotly.__version__.encode())
        sources = [resources.files(p) for p in _CODE_PACKAGES]
        sources.append(resources.files("careloop.web.pages") / "dashboards.py")
        for source in sources:
            files = [source] if source.is_file() else _python_files(Path(str(source)))
            for path in files:
                digest.update(path.read_bytes())
        _CODE.append(digest.hexdigest()[:16])
    return _CODE[0]


def _python_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def _key(run_id: str, what: str, inputs: Hashable) -> tuple[str, str]:
    run = hashlib.sha256(run_id.encode()).hexdigest()[:12]
    # repr of tuples of frozen dataclasses, dates and strings: stable across processes.
    text = repr((code_fingerprint(), what, inputs))
    return run, f"{run}-{what}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def shared(
    settings: Settings, run_id: str, what: str, inputs: Hashable, compute: Callable[[], T]
) -> T:
    """``compute()``, once per ``run_id`` and ``inputs`` for every worker of the installation.

    Args:
        settings: the installation (its data directory holds the files).
        run_id: the stored measure run the result is computed from.
        what: which kind of result (``"detail"``, ``"figures"``…), part of the key.
        inputs: everything else the result depends on; a new input is a new key.
        compute: makes the result (picklable) when no cache has it.
    """
    run, key = _key(run_id, what, inputs)
    scoped = f"{settings.data_dir.resolve()}:{key}"
    with _GUARD:
        if len(_LOCKS) > 4 * MEMORY_ENTRIES:
            _LOCKS.clear()  # bounded; at worst two requests compute one entry
        lock = _LOCKS.setdefault(scoped, threading.Lock())
    with lock:  # concurrent first requests compute once
        if scoped in _MEMORY:
            COUNTS.from_memory += 1
            return _MEMORY[scoped]  # type: ignore[return-value]
        folder = settings.data_dir / CACHE_FOLDER
        found = _read(folder / f"{key}.pickle")
        value: T
        if found is not None:
            COUNTS.from_file += 1
            value = found  # type: ignore[assignment]  # what compute() returned for this key
        else:
            COUNTS.computed += 1
            value = compute()
            _write(folder, run, key, value)
        with _GUARD:
            if len(_MEMORY) >= MEMORY_ENTRIES:
                _MEMORY.clear()
            _MEMORY[scoped] = value
        return value


def _read(path: Path) -> object | None:
    try:
        with path.open("rb") as f:
            found: object = pickle.load(f)  # noqa: S301 - careloop wrote it, in its data directory
            return found
    except FileNotFoundError:
        return None
    except Exception:  # a torn or outdated file is computed again
        return None


def _write(folder: Path, run: str, key: str, value: object) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if (folder, run) not in _PRUNED:
            _PRUNED.add((folder, run))
            for old in folder.glob("*.pickle"):
                if not old.name.startswith(f"{run}-"):
                    old.unlink(missing_ok=True)  # an older run's entry
        # Written whole, then renamed: another worker never reads half a file.
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, folder / f"{key}.pickle")
    except OSError:
        pass  # a read-only data directory: this process keeps it in memory


def forget_memory() -> None:
    """Empty this process's memory (as a new worker starts); the files stay."""
    with _GUARD:
        _MEMORY.clear()


# --- the stored results, without opening the warehouse on every request ---------------

RECHECK_SECONDS = 5.0
"""How long a server warehouse (PostgreSQL, Spark) is trusted not to hold a new run."""

_STAMPS: dict[str, tuple[object, StoredResults]] = {}


def _stamp(settings: Settings) -> object:
    """What changes whenever the warehouse may hold a new run: a DuckDB file's (and its
    write-ahead log's) size and time; for a server warehouse, a new stamp every few seconds."""
    path = parse_warehouse_url(settings.resolved_warehouse_url).path
    if path is None:
        return int(time.monotonic() // RECHECK_SECONDS)
    stamps: list[tuple[int, int, int] | None] = []
    for file in (path, path.with_name(path.name + ".wal")):
        try:
            stat = file.expanduser().stat()
        except FileNotFoundError:
            stamps.append(None)
        else:
            stamps.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(stamps)


def stored_results(settings: Settings) -> StoredResults:
    """The latest run's results; the warehouse is opened (70-200 ms) only when it changed.

    Raises:
        NotFound: no warehouse yet, or no measure run stored in it.
    """
    where = settings.resolved_warehouse_url
    stamp = _stamp(settings)
    known = _STAMPS.get(where)
    if known is not None and known[0] == stamp:
        return known[1]
    stored = dashboard.stored_results(warehouse_opener(settings))
    _STAMPS[where] = (stamp, stored)
    return stored


# --- the three pages -------------------------------------------------------------------


def _for_staff(
    settings: Settings,
    stored: StoredResults,
    principal: Principal,
    what: str,
    inputs: Hashable,
    compute: Callable[[], T],
) -> T:
    dashboard.require_dashboards(principal)  # before the cache: it skips the page's own check
    return shared(settings, stored.run_id, what, inputs, compute)


def measure_detail(
    settings: Settings,
    stored: StoredResults,
    principal: Principal,
    inputs: Hashable,
    compute: Callable[[], MeasureDetail],
) -> MeasureDetail:
    """A measure's page data, shared; whose patient lists the viewer may open set for them."""
    detail = _for_staff(settings, stored, principal, "detail", inputs, compute)
    sites = [s.site for s in detail.sites]
    return replace(detail, patient_list_sites=dashboard.patient_list_sites(principal, sites))


def overview(
    settings: Settings,
    stored: StoredResults,
    principal: Principal,
    inputs: Hashable,
    compute: Callable[[], Overview],
) -> Overview:
    """The overview's data, shared (it holds nothing that depends on the viewer)."""
    return _for_staff(settings, stored, principal, "overview", inputs, compute)


def site_view(
    settings: Settings,
    stored: StoredResults,
    principal: Principal,
    inputs: Hashable,
    compute: Callable[[], SiteView],
) -> SiteView:
    """A site's page data, shared; whether the viewer may list its patients set for them."""
    view = _for_staff(settings, stored, principal, "site", inputs, compute)
    allowed = bool(dashboard.patient_list_sites(principal, [view.site]))
    return replace(view, may_list_patients=allowed)


_CATALOGS: dict[int, tuple[tuple[str, str], ...]] = {}


def catalog_inputs(catalog: MeasureCatalog) -> tuple[tuple[str, str], ...]:
    """The catalogue's measures and definition hashes, for a key (a changed definition is
    a new key); worked out once per catalogue object."""
    if id(catalog) not in _CATALOGS:
        _CATALOGS[id(catalog)] = tuple((m, catalog.get(m).definition_hash) for m in catalog.ids)
    return _CATALOGS[id(catalog)]
