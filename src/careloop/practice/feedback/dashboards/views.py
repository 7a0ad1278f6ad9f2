"""The three pages' data: the overview, one measure (with its funnel) and one site."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from datetime import date

import pandas as pd

from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.funnel import FunnelResult, funnel
from careloop.core.errors import InputError, NotFound
from careloop.measures.catalog import MeasureCatalog
from careloop.measures.runner import NETWORK
from careloop.practice.feedback.dashboards.access import patient_list_sites, require_dashboards
from careloop.practice.feedback.dashboards.model import (
    FUNNEL_MONTHS,
    Attention,
    Deployed,
    FunnelView,
    MeasureDetail,
    MeasureInfo,
    Overview,
    OverviewRow,
    Series,
    SiteNumbers,
    SiteRow,
    SiteView,
)
from careloop.practice.feedback.dashboards.results import StoredResults
from careloop.practice.feedback.dashboards.series import _series, measure_info
from careloop.trust.principal import Principal


def overview(
    stored: StoredResults,
    catalog: MeasureCatalog,
    principal: Principal,
    *,
    changes: Mapping[str, Sequence[Deployed]] | None = None,
) -> Overview:
    """Every measure with results: network series (phases at ``changes``, by measure id),
    latest value and SPC signals, and what needs attention at the network and at the
    principal's own sites."""
    require_dashboards(principal)
    changes = changes or {}
    mine = [s for s in dict.fromkeys(g.site_code for g in principal.grants) if s in stored.sites]
    rows = []
    attention = []
    for measure_id in _ordered(stored, catalog):
        info = measure_info(catalog, measure_id, _hash(stored, measure_id))
        recorded = changes.get(measure_id, ())
        network = _series(info, stored, NETWORK, deployments=recorded)
        rows.append(OverviewRow(info, network))
        for series in (
            network,
            *(_series(info, stored, s, deployments=recorded) for s in mine),
        ):
            if series.signals is not None and series.signals.needs_attention:
                attention.append(Attention(info, series))
    return Overview(stored.run_id, stored.run_at, tuple(rows), stored.sites, tuple(attention))


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
    stored: StoredResults,
    catalog: MeasureCatalog,
    site: str,
    principal: Principal,
    *,
    changes: Mapping[str, Sequence[Deployed]] | None = None,
) -> SiteView:
    """One site's measures beside the network's, compared on the measure's funnel plot."""
    require_dashboards(principal)
    code = site.strip().upper()
    if code not in stored.sites:
        raise NotFound(
            f"There are no measure results for a site {site!r}. Sites with results: "
            f"{', '.join(stored.sites)}."
        )
    changes = changes or {}
    rows = []
    for measure_id in _ordered(stored, catalog):
        if stored.rows(measure_id, code).empty:
            continue
        info = measure_info(catalog, measure_id, _hash(stored, measure_id))
        every = [
            _series(info, stored, s, chart=False)
            for s in stored.sites
            if not stored.rows(measure_id, s).empty
        ]
        funnel = funnel_view(info, every)
        flag = next((n.flag for n in funnel.sites if n.site == code), "")
        rows.append(
            SiteRow(
                info,
                _series(info, stored, code, deployments=changes.get(measure_id, ())),
                _series(info, stored, NETWORK, chart=False),
                funnel_flag=flag,
                funnel_window=funnel.window if funnel.result is not None else "",
            )
        )
    return SiteView(code, stored.run_id, tuple(rows), bool(patient_list_sites(principal, [code])))


def measure_numbers(stored: StoredResults, measure_id: str, principal: Principal) -> pd.DataFrame:
    """The stored rows of one measure (network and sites), for a CSV download."""
    require_dashboards(principal)
    _require_measure(stored, measure_id)
    f = stored.frame
    rows = f[f["measure_id"] == measure_id]
    return rows.sort_values(["site", "period_start"], kind="stable").reset_index(drop=True)
