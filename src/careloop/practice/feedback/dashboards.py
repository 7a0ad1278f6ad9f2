"""What the measure dashboards show, and to whom: pure data for the web pages.

The web app renders three pages from the stored results of the latest measure
run (``careloop_measure_result``):

- :func:`overview`: every measure with its network series, latest value,
  SPC signals (on the network series) and direction of improvement;
- :func:`measure_detail`: one measure's network SPC chart (phases and
  annotations at knowledge-object deployments), one chart per site, a funnel
  plot of the sites, the numbers and the definition in plain language;
- :func:`site_view`: one site's measures beside the network's.

Who sees what (docs/dashboards.md): measure results at site level are
aggregates, not identifiable data, so every staff role sees every dashboard
(small denominators are flagged, not hidden: the numbers stay inside the
installation); patients and carers see none. The patients behind a site's
number (:func:`dashboard_patient_list`) are identifiable: only roles that may
read records at that site get them, and every list is audited.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import pandas as pd
from sqlalchemy import select

from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.funnel import FunnelResult, funnel
from careloop.analysis.spc import Annotation, SpcChart, qic
from careloop.core.errors import CareloopError, InputError, NotFound, PermissionDenied
from careloop.measures.catalog import MeasureCatalog
from careloop.measures.definition import MeasureDefinition
from careloop.measures.patient_lists import ListKind, patient_list
from careloop.measures.plain_language import describe
from careloop.measures.runner import NETWORK, NO_SITE, latest_runs, load_results
from careloop.store.database import Registry
from careloop.store.models import Patient
from careloop.trust.policy import ROLES, Role, grants
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work
from careloop.warehouse.connection import Warehouse, WarehouseOpener

DASHBOARD_ROLES: frozenset[Role] = frozenset(
    role for role in ROLES if grants(role, "measure.read") is not None
)
"""Roles that see the dashboards (``measure.read`` in the policy): every staff role."""

SPARK_PERIODS = 24
"""Periods shown in an overview sparkline."""
FUNNEL_MONTHS = 12
"""A funnel of a visit (or window-free) measure sums the sites' last 12 monthly periods."""

Variation = Literal[
    "common_cause", "special_cause_improvement", "special_cause_concern", "special_cause_neither"
]


# --- access -------------------------------------------------------------------


def may_see_dashboards(principal: Principal) -> bool:
    """Whether the principal sees the measure dashboards (any staff role)."""
    return principal.is_operator or any(g.role in DASHBOARD_ROLES for g in principal.grants)


def require_dashboards(principal: Principal) -> None:
    """PermissionDenied unless the principal holds a staff role."""
    if not may_see_dashboards(principal):
        raise PermissionDenied(
            f"Your role ({principal.role_label() or 'none'}) does not see the measure "
            "dashboards; they are for the care teams, site leads and analysts."
        )


def patient_list_sites(principal: Principal, sites: Sequence[str]) -> tuple[str, ...]:
    """Of ``sites``, those whose patient lists the principal may open (``record.read`` there)."""
    allowed: set[str] = set()
    for g in principal.grants:
        if grants(g.role, "record.read") != "site":
            continue
        if g.site_code is None:
            return tuple(s for s in sites if s != NO_SITE)
        allowed.add(g.site_code)
    if principal.is_operator:
        return tuple(s for s in sites if s != NO_SITE)
    return tuple(s for s in sites if s in allowed)


# --- the stored results -----------------------------------------------------------


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


# --- the pieces of a page ------------------------------------------------------------


@dataclass(frozen=True)
class MeasureInfo:
    """What a measure is, for people."""

    id: str
    """The measure id."""
    title: str
    """One line (the id when the definition is not in this installation's catalog)."""
    description: str
    """Longer text, may be empty."""
    type: str
    """proportion, ratio, count or continuous (``""`` when unknown)."""
    improvement: Literal["up", "down"] | None
    """Whether higher (up) or lower (down) is better; None when unknown."""
    target: float | None
    """The goal, on the value's scale (a fraction for proportions)."""
    sentences: tuple[str, ...]
    """The definition in plain language."""
    definition: MeasureDefinition | None = field(default=None, repr=False)
    """The definition (None: results exist but the catalog lacks it)."""
    changed_since_run: bool = False
    """The catalog's definition differs from the one the results were computed with."""

    @property
    def percent(self) -> bool:
        """Whether values are shown as percentages."""
        return self.type == "proportion"


@dataclass(frozen=True)
class Point:
    """One period of a series."""

    period_start: date
    """First day of the period."""
    period_end: date
    """Last day of the period."""
    numerator: int
    """Subjects meeting the measure (for continuous measures: subjects with a value)."""
    denominator: int
    """Subjects counted, after exclusions."""
    value: float | None
    """The measure's value; None when the denominator is 0."""
    small_denominator: bool
    """Denominator at or below the small-cell threshold: read with care."""


@dataclass(frozen=True)
class Signals:
    """What the SPC chart of a series says, as badges."""

    outside_limits: int
    """Points outside the control limits in the latest phase."""
    runs_signal: bool
    """A shift or too few crossings of the centre line (Anhøj rules) in the latest phase."""
    variation: Variation
    """Making Data Count class of the latest point (improvement, concern, neither, common)."""
    caveats: tuple[str, ...] = ()
    """Statistical caveats (few points, no variation…)."""

    @property
    def any(self) -> bool:
        """Whether there is any special-cause signal."""
        return bool(self.outside_limits) or self.runs_signal


@dataclass(frozen=True)
class Series:
    """One measure at one site (or the network) over time, with its SPC chart."""

    site: str
    """Site code; ``""`` for the network."""
    points: tuple[Point, ...]
    """Every period, oldest first."""
    chart: SpcChart | None = field(repr=False)
    """The SPC chart (None when there are too few points with data)."""
    signals: Signals | None
    """Its signals (None without a chart)."""
    annotations: tuple[Annotation, ...] = ()
    """Deployments and other events marked on the chart."""

    @property
    def latest(self) -> Point | None:
        """The latest period with a value."""
        with_value = [p for p in self.points if p.value is not None]
        return with_value[-1] if with_value else None


@dataclass(frozen=True)
class OverviewRow:
    """One measure on the network overview."""

    measure: MeasureInfo
    """The measure."""
    network: Series
    """Its network series and chart."""


@dataclass(frozen=True)
class Overview:
    """The network overview."""

    run_id: str
    """The measure run shown."""
    run_at: datetime | None
    """When it ran."""
    rows: tuple[OverviewRow, ...]
    """One row per measure."""
    sites: tuple[str, ...]
    """Sites with results."""


@dataclass(frozen=True)
class SiteNumbers:
    """A site's counts over the funnel's window, as the funnel plot compares them."""

    site: str
    """Site code."""
    numerator: int
    """Summed numerator."""
    denominator: int
    """Summed denominator."""
    value: float | None
    """numerator / denominator."""
    flag: str
    """Funnel flag: within, above 95%, below 99.8%… (``""`` without a funnel)."""
    small_denominator: bool
    """Denominator at or below 10."""


@dataclass(frozen=True)
class FunnelView:
    """The sites on a funnel plot over one window."""

    window: str
    """Which periods, in words (e.g. "Jan 2024 to Dec 2024")."""
    result: FunnelResult | None = field(repr=False)
    """The funnel (None when it cannot be drawn; see ``note``)."""
    sites: tuple[SiteNumbers, ...]
    """Each site's numbers over the window."""
    note: str = ""
    """Why there is no funnel, or caveats."""


@dataclass(frozen=True)
class Deployed:
    """A knowledge-object deployment that touches a measure."""

    label: str
    """What and where, e.g. ``steroid-sparing 1.0.0 (S001, S002)``."""
    started: date
    """When it started."""
    sites: tuple[str, ...]
    """Sites it serves (empty: all)."""


@dataclass(frozen=True)
class MeasureDetail:
    """Everything the measure page shows."""

    measure: MeasureInfo
    """The measure."""
    run_id: str
    """The measure run shown."""
    network: Series
    """The network series, its chart (phases at network-wide deployments) and annotations."""
    sites: tuple[Series, ...]
    """One series per site, sorted by code."""
    funnel: FunnelView
    """The sites on a funnel plot."""
    deployments: tuple[Deployed, ...]
    """Deployments of knowledge objects that declare this measure."""
    patient_list_sites: tuple[str, ...]
    """Sites whose patient list the viewer may open."""


@dataclass(frozen=True)
class SiteRow:
    """One measure at one site, beside the network."""

    measure: MeasureInfo
    """The measure."""
    site: Series
    """The site's series and chart."""
    network: Series
    """The network's series (no chart needed for the comparison)."""

    @property
    def better_than_network(self) -> bool | None:
        """Whether the site's latest value beats the network's in the same period."""
        mine = self.site.latest
        if mine is None or self.measure.improvement is None or self.measure.type == "count":
            return None  # a site's count is not comparable with the network's
        theirs = next((p for p in self.network.points if p.period_start == mine.period_start), None)
        if theirs is None or theirs.value is None or mine.value is None:
            return None
        if math.isclose(mine.value, theirs.value):
            return None
        return (mine.value > theirs.value) == (self.measure.improvement == "up")


@dataclass(frozen=True)
class SiteView:
    """Everything the site page shows."""

    site: str
    """The site code."""
    run_id: str
    """The measure run shown."""
    rows: tuple[SiteRow, ...]
    """One row per measure with results at the site."""
    may_list_patients: bool
    """Whether the viewer may open this site's patient lists."""


# --- building them ---------------------------------------------------------------------


def measure_info(
    catalog: MeasureCatalog, measure_id: str, definition_hash: str = ""
) -> MeasureInfo:
    """The catalog's description of a measure (a bare one when the catalog lacks it)."""
    definition = next((m for m in catalog.measures if m.id == measure_id), None)
    if definition is None:
        return MeasureInfo(
            measure_id,
            measure_id,
            "",
            "",
            None,
            None,
            ("This installation's measure catalog does not hold this measure's definition.",),
        )
    return MeasureInfo(
        definition.id,
        definition.title,
        definition.description.strip(),
        definition.type,
        definition.improvement,
        definition.target,
        describe(definition),
        definition,
        changed_since_run=bool(definition_hash) and definition_hash != definition.definition_hash,
    )


def _points(rows: pd.DataFrame) -> tuple[Point, ...]:
    out = []
    for r in rows.to_dict("records"):
        raw: Any = r["value"]
        value = float(raw) if raw is not None and not pd.isna(raw) else None
        out.append(
            Point(
                r["period_start"],
                r["period_end"],
                int(r["numerator"]),
                int(r["denominator"]),
                value,
                bool(r["small_denominator"]),
            )
        )
    return tuple(out)


_CHART: dict[str, str] = {"proportion": "p", "ratio": "u", "count": "c", "continuous": "i"}


def spc_chart(
    info: MeasureInfo,
    points: Sequence[Point],
    *,
    phase_starts: Sequence[date] = (),
    title: str | None = None,
) -> tuple[SpcChart | None, Signals | None]:
    """The SPC chart of a series (P chart for proportions, U, C or I otherwise) and its signals.

    Periods without data are left out. A new phase starts at each of
    ``phase_starts`` that falls inside the series. Statistical caveats are
    collected in :attr:`Signals.caveats` instead of being raised as warnings.
    """
    kind = _CHART.get(info.type, "i")
    usable = [
        p
        for p in points
        if (p.denominator > 0 if kind in ("p", "u") else True)
        and (p.value is not None or kind == "c")
    ]
    if len(usable) < 3:
        return None, None
    frame = pd.DataFrame(
        {
            "x": [pd.Timestamp(p.period_start) for p in usable],
            "y": [
                float(p.numerator) if kind in ("p", "u", "c") else float(p.value or 0.0)
                for p in usable
            ],
            "n": [float(p.denominator) for p in usable],
        }
    )
    xs = list(frame["x"])
    parts = [
        pd.Timestamp(s) for s in sorted(set(phase_starts)) if xs[0] < pd.Timestamp(s) <= xs[-1]
    ]
    multiply = 100.0 if info.type == "proportion" else 1.0
    target = info.target * multiply if info.target is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        try:
            chart = qic(
                "y",
                x="x",
                n="n" if kind in ("p", "u") else None,
                data=frame,
                chart=kind,  # type: ignore[arg-type]
                part_at=parts or None,
                multiply=multiply,
                target=target,
                rules=("anhoej", "nhs"),
                improvement=info.improvement,
                title=title,
                ylab="%" if info.type == "proportion" else "",
            )
        except InputError:
            return None, None
    caveats = tuple(dict.fromkeys(str(w.message) for w in caught))
    return chart, _signals(chart, caveats)


def _signals(chart: SpcChart, caveats: tuple[str, ...]) -> Signals:
    pts = chart.points
    last_part = pts[pts["part"] == pts["part"].max()]
    outside = int(last_part["sigma_signal"].fillna(False).astype(bool).sum())
    runs = bool(last_part["runs_signal"].fillna(False).astype(bool).any())
    variation: Variation = "common_cause"
    if "variation" in pts.columns:
        analysed = last_part["variation"].dropna()
        if len(analysed) and str(analysed.iloc[-1]) in (
            "special_cause_improvement",
            "special_cause_concern",
            "special_cause_neither",
        ):
            variation = str(analysed.iloc[-1])  # type: ignore[assignment]
    return Signals(outside, runs, variation, caveats)


def _series(
    info: MeasureInfo,
    stored: StoredResults,
    site: str,
    *,
    chart: bool = True,
    deployments: Sequence[Deployed] = (),
) -> Series:
    points = _points(stored.rows(info.id, site))
    mine = [d for d in deployments if not d.sites or site == NETWORK or site in d.sites]
    # A phase starts where the whole unit changed practice: a deployment to every site
    # for the network chart, any deployment serving the site for the site's chart.
    phases = [d.started for d in mine if not d.sites or site != NETWORK]
    annotations = tuple(
        Annotation(pd.Timestamp(_month(d.started)), d.label, kind="deployment") for d in mine
    )
    if not chart:
        return Series(site, points, None, None, annotations)
    spc, signals = spc_chart(info, points, phase_starts=[_month(s) for s in phases], title=None)
    return Series(site, points, spc, signals, annotations)


def _month(day: date) -> date:
    return day.replace(day=1)


def overview(stored: StoredResults, catalog: MeasureCatalog, principal: Principal) -> Overview:
    """Every measure with results: network series, latest value and SPC signals."""
    require_dashboards(principal)
    rows = []
    for measure_id in _ordered(stored, catalog):
        info = measure_info(catalog, measure_id, _hash(stored, measure_id))
        rows.append(OverviewRow(info, _series(info, stored, NETWORK)))
    return Overview(stored.run_id, stored.run_at, tuple(rows), stored.sites)


def _ordered(stored: StoredResults, catalog: MeasureCatalog) -> list[str]:
    have = set(stored.measure_ids)
    known = [m for m in catalog.ids if m in have]
    return known + sorted(have - set(known))


def _hash(stored: StoredResults, measure_id: str) -> str:
    f = stored.frame
    hashes = f.loc[f["measure_id"] == measure_id, "definition_hash"]
    return str(hashes.iloc[0]) if len(hashes) else ""


def _require_measure(stored: StoredResults, measure_id: str) -> None:
    if measure_id not in stored.measure_ids:
        raise NotFound(
            f"There are no results for a measure {measure_id!r} in the latest run. "
            f"Measures with results: {', '.join(stored.measure_ids)}."
        )


def measure_detail(
    stored: StoredResults,
    catalog: MeasureCatalog,
    measure_id: str,
    principal: Principal,
    *,
    deployments: Sequence[Deployed] = (),
) -> MeasureDetail:
    """One measure: network chart, site charts, funnel, numbers and definition."""
    require_dashboards(principal)
    _require_measure(stored, measure_id)
    info = measure_info(catalog, measure_id, _hash(stored, measure_id))
    network = _series(info, stored, NETWORK, deployments=deployments)
    present = set(stored.frame.loc[stored.frame["measure_id"] == measure_id, "site"])
    sites = tuple(
        _series(info, stored, s, deployments=deployments) for s in stored.sites if s in present
    )
    return MeasureDetail(
        info,
        stored.run_id,
        network,
        sites,
        funnel_view(info, sites),
        tuple(deployments),
        patient_list_sites(principal, [s.site for s in sites]),
    )


def funnel_view(info: MeasureInfo, sites: Sequence[Series]) -> FunnelView:
    """The sites' numbers over one window, on a funnel plot for proportions and ratios.

    The window is the latest period for a measure with a look-back window (its
    periods overlap) or a continuous one (a median cannot be summed), else the
    last 12 periods, summed.
    """
    latest = max((p.period_start for s in sites for p in s.points), default=None)
    if latest is None:
        return FunnelView("", None, (), "No site has results.")
    overlapping = info.definition is not None and info.definition.lookback is not None
    periods = sorted({p.period_start for s in sites for p in s.points})
    single = overlapping or info.type == "continuous"
    window = [latest] if single else periods[-FUNNEL_MONTHS:]
    chosen = set(window)
    label = _period_label(window[0]) + (
        f" to {_period_label(window[-1])}" if len(window) > 1 else ""
    )
    rows = []
    for s in sites:
        num = sum(p.numerator for p in s.points if p.period_start in chosen)
        den = sum(p.denominator for p in s.points if p.period_start in chosen)
        rows.append((s.site, num, den))
    if info.type not in ("proportion", "ratio"):
        numbers = tuple(
            SiteNumbers(site, n, d, _window_value(info, s, latest, n), "", d <= 10)
            for (site, n, d), s in zip(rows, sites, strict=True)
        )
        return FunnelView(
            label,
            None,
            numbers,
            f"A funnel plot compares proportions or rates; this is a {info.type or 'unknown'} "
            "measure.",
        )
    frame = pd.DataFrame(rows, columns=["site", "numerator", "denominator"])
    frame = frame[frame["denominator"] > 0]
    result: FunnelResult | None = None
    note = ""
    if len(frame) >= 2:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", StatisticalWarning)
            try:
                result = funnel(
                    frame,
                    numerator="numerator",
                    denominator="denominator",
                    unit="site",
                    kind="proportion" if info.type == "proportion" else "rate",
                    multiply=100.0 if info.type == "proportion" else 1.0,
                )
            except InputError as exc:
                note = exc.message
        note = note or " ".join(dict.fromkeys(str(w.message) for w in caught))
    else:
        note = "A funnel plot needs at least two sites with a denominator."
    flags: dict[str, str] = {}
    if result is not None:
        flags = {
            str(u): str(f) for u, f in zip(result.units["unit"], result.units["flag"], strict=True)
        }
    numbers = tuple(
        SiteNumbers(site, n, d, (n / d if d else None), flags.get(site, ""), d <= 10)
        for site, n, d in rows
    )
    return FunnelView(label, result, numbers, note)


def _window_value(info: MeasureInfo, s: Series, latest: date, total: int) -> float | None:
    if info.type == "count":
        return float(total)  # the count over the window
    point = next((p for p in s.points if p.period_start == latest), None)
    return point.value if point is not None else None


def _period_label(day: date) -> str:
    return day.strftime("%b %Y")


def site_view(
    stored: StoredResults, catalog: MeasureCatalog, site: str, principal: Principal
) -> SiteView:
    """One site's measures beside the network's."""
    require_dashboards(principal)
    code = site.strip().upper()
    if code not in stored.sites:
        raise NotFound(
            f"There are no measure results for a site {site!r}. Sites with results: "
            f"{', '.join(stored.sites)}."
        )
    rows = []
    for measure_id in _ordered(stored, catalog):
        if stored.rows(measure_id, code).empty:
            continue
        info = measure_info(catalog, measure_id, _hash(stored, measure_id))
        rows.append(
            SiteRow(info, _series(info, stored, code), _series(info, stored, NETWORK, chart=False))
        )
    return SiteView(code, stored.run_id, tuple(rows), bool(patient_list_sites(principal, [code])))


def measure_numbers(stored: StoredResults, measure_id: str, principal: Principal) -> pd.DataFrame:
    """The stored rows of one measure (network and sites), for a CSV download."""
    require_dashboards(principal)
    _require_measure(stored, measure_id)
    f = stored.frame
    rows = f[f["measure_id"] == measure_id]
    return rows.sort_values(["site", "period_start"], kind="stable").reset_index(drop=True)


# --- the patients behind a number ---------------------------------------------------------


@dataclass(frozen=True)
class ListedPatient:
    """One patient behind a site's number, as the care team sees them."""

    patient_id: int
    """The registry patient id (the warehouse ``person_id``)."""
    pseudo_id: str | None
    """The pseudonymous id."""
    local_id: str | None
    """The site's local id (MRN); None when the registry no longer holds the patient."""
    name: str
    """Given and family name (may be empty)."""
    birth_date: date | None
    """Date of birth."""


@dataclass(frozen=True)
class DashboardPatientList:
    """The patients behind one measure's number at one site in one period."""

    measure: MeasureInfo
    """The measure."""
    site: str
    """The site."""
    period_start: date
    """First day of the period."""
    period_end: date
    """Last day of the period."""
    kind: ListKind
    """gap (counted but not meeting the measure), numerator, denominator or excluded."""
    patients: tuple[ListedPatient, ...]
    """The patients, by registry id."""


def dashboard_patient_list(
    warehouse: Warehouse,
    registry: Registry,
    principal: Principal,
    catalog: MeasureCatalog,
    measure_id: str,
    *,
    site: str,
    period: date,
    kind: ListKind = "gap",
) -> DashboardPatientList:
    """The patients behind ``measure_id``'s number at ``site`` with names, for the care team.

    The list is :func:`careloop.measures.patient_lists.patient_list` (a
    ``record.read`` unit of work at the site, audited as a read of
    ``measure_patient_list``); the names come from the registry in a
    ``patient.read`` unit of work, audited as one read of demographics naming
    every patient shown.

    Raises:
        PermissionDenied: the principal may not read records (analysts, auditors, admins).
        NotFound: no such measure or site, or a site whose records the principal may not read.
    """
    require_dashboards(principal)
    definition = catalog.get(measure_id)
    listed = patient_list(
        warehouse, registry, principal, definition, site=site, period=period, kind=kind
    )
    ids = [p.person_id for p in listed.patients]
    found: dict[int, Patient] = {}
    with unit_of_work(registry, principal, "patient.read") as work:
        if ids:
            found = {
                p.id: p for p in work.session.scalars(select(Patient).where(Patient.id.in_(ids)))
            }
        work.audit(
            "read",
            "demographics",
            site_code=listed.site,
            details={
                "measure_patient_list": measure_id,
                "results": len(found),
                "patient_ids": sorted(found),
            },
        )
        patients = tuple(
            ListedPatient(
                e.person_id,
                e.person_source_value,
                found[e.person_id].local_id if e.person_id in found else None,
                " ".join(
                    x for x in (found[e.person_id].given_name, found[e.person_id].family_name) if x
                )
                if e.person_id in found
                else "",
                found[e.person_id].birth_date if e.person_id in found else None,
            )
            for e in listed.patients
        )
    info = measure_info(catalog, measure_id)
    return DashboardPatientList(
        info, listed.site, listed.period_start, listed.period_end, listed.kind, patients
    )


__all__ = [
    "DASHBOARD_ROLES",
    "DashboardPatientList",
    "Deployed",
    "FunnelView",
    "ListedPatient",
    "MeasureDetail",
    "MeasureInfo",
    "Overview",
    "OverviewRow",
    "Point",
    "Series",
    "Signals",
    "SiteNumbers",
    "SiteRow",
    "SiteView",
    "StoredResults",
    "dashboard_patient_list",
    "funnel_view",
    "may_see_dashboards",
    "measure_detail",
    "measure_info",
    "measure_numbers",
    "overview",
    "patient_list_sites",
    "require_dashboards",
    "site_view",
    "spc_chart",
    "stored_results",
]
