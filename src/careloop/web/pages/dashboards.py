"""Measure dashboards: the network overview, a measure's page, a site's page, downloads.

Each route asks :mod:`careloop.practice.feedback.dashboards` for the data (who may see
what is decided there) and renders it. Interactive charts are Plotly figures
sent as JSON in a ``<script type="application/json">`` block (data, not
script, so the strict CSP holds) and drawn by ``static/dashboards.js`` with
the plotly.js that the installed ``plotly`` Python package ships, served by
:mod:`careloop.web.assets` at ``/vendor/plotly.min.js`` (never a CDN, never a
copy in the repository).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from importlib import resources
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from careloop import charts
from careloop.charts.mdc_icons import assurance_svg, variation_svg
from careloop.core.errors import NotFound
from careloop.core.settings import Settings
from careloop.measures.catalog import MeasureCatalog, load_catalog
from careloop.measures.patient_lists import ListKind
from careloop.practice.feedback import dashboards as dashboard
from careloop.practice.feedback.dashboards import Deployed, Series, StoredResults
from careloop.practice.feedback.reports import may_see_site_report
from careloop.trust.principal import Grant, Principal
from careloop.warehouse.connection import Warehouse, warehouse_opener
from careloop.web.pages import dashboard_cache as page_cache
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import Caller, CallerDep, RegistryDep, SettingsDep

router = APIRouter(include_in_schema=False)

SMALL_MULTIPLES = 30

WARM_SITES = 30
"""At start-up the overview and each measure page are also computed as the staff of each
of the first this many sites see them (their own site's chart first)."""
"""At most this many site charts on a measure page (the largest sites)."""

_MDC_STATUS = {
    "special_cause_improvement": "improvement",
    "special_cause_concern": "concern",
    "special_cause_neither": "special cause",
}

_CATALOG: dict[str, MeasureCatalog] = {}


def _catalog(settings: Settings) -> MeasureCatalog:
    """The measures (built-ins, the settings' measures folder, plugins), parsed once per folder."""
    key = str(settings.measures_dir or "")
    if key not in _CATALOG:
        _CATALOG[key] = load_catalog(measures_dir=settings.measures_dir)
    return _CATALOG[key]


def figure_json(figure: Any) -> Markup:
    """A Plotly figure as JSON that is safe inside a ``<script type="application/json">``."""
    text = figure.to_json()
    # "<", ">" and "&" only occur inside JSON strings, where \\u escapes mean the same.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 - escaped above; it is data, never HTML


def sparkline(series: Series, *, periods: int = dashboard.SPARK_PERIODS) -> Markup:
    """A tiny SVG of the last ``periods`` values with the centre line; hand-drawn because a
    Plotly chart per table row would be far heavier than a 30-point polyline."""
    width, height, pad = 140.0, 32.0, 3.0
    pts = [p for p in series.points if p.value is not None][-periods:]
    if len(pts) < 2:
        return Markup('<span class="muted">too few points</span>')
    values = [float(p.value or 0.0) for p in pts]
    cl = None
    if series.chart is not None:
        last = series.chart.points.iloc[-1]
        if pd.notna(last["cl"]):
            cl = float(last["cl"]) / series.chart.multiply
    low, high = (
        min([*values, *([cl] if cl is not None else [])]),
        max([*values, *([cl] if cl is not None else [])]),
    )
    span = (high - low) or 1.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + i * (width - 2 * pad) / (len(values) - 1)
        y = height - pad - (v - low) / span * (height - 2 * pad)
        return round(x, 1), round(y, 1)

    line = " ".join(f"{x},{y}" for x, y in (xy(i, v) for i, v in enumerate(values)))
    parts = [
        f'<svg class="spark" width="{width:g}" height="{height:g}" viewBox="0 0 {width:g} '
        f'{height:g}" role="img" aria-label="last {len(values)} periods">'
    ]
    if cl is not None:
        _, y = xy(0, cl)
        parts.append(
            f'<line x1="{pad}" x2="{width - pad}" y1="{y}" y2="{y}" stroke="#8c959f" '
            'stroke-dasharray="2 2" stroke-width="1"/>'
        )
    parts.append(f'<polyline points="{line}" fill="none" stroke="#0b5cad" stroke-width="1.5"/>')
    signals = series.signals
    colour = "#0b5cad"
    if signals is not None and signals.variation != "common_cause":
        colour = charts.spc.STATUS_COLOURS[_MDC_STATUS[signals.variation]]
    x, y = xy(len(values) - 1, values[-1])
    parts.append(f'<circle cx="{x}" cy="{y}" r="2.8" fill="{colour}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and fixed text only


def changes_by_measure(registry: Any, stored: StoredResults) -> dict[str, tuple[Deployed, ...]]:
    """Every measure's recorded changes (deployments, cycles, notes), for its phases."""
    return {m: dashboard.recorded_changes(registry, m, stored.sites) for m in stored.measure_ids}


def _changes_key(changes: dict[str, tuple[Deployed, ...]]) -> tuple[Any, ...]:
    """The recorded changes as part of a cache key: a new note is a new key."""
    return tuple(sorted(changes.items()))


def icons(signals: dashboard.Signals | None) -> Markup:
    """The Making Data Count variation and assurance icons of a series, inline SVG."""
    if signals is None:
        return Markup('<span class="muted">no chart</span>')
    return Markup(  # noqa: S704 - fixed SVG markup with escaped text alternatives
        '<span class="mdc-icons">'
        + variation_svg(signals.variation_icon)
        + (assurance_svg(signals.assurance) if signals.assurance else "")
        + "</span>"
    )


# --- plotly.js's style rules (served by careloop.web.assets at /vendor/) -------------


_STYLE_RULES = re.compile(
    r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*:\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
)


def plotly_css(script: str) -> str:
    """The style rules plotly.js would inject with ``<style>`` elements, as a stylesheet.

    plotly.js adds its base rules (the selectors with ``X`` for the plot and
    ``Y`` for the notifier) through an inline ``<style>`` element, which the CSP
    (``style-src 'self'``) refuses. It skips that when an element with the id
    ``plotly.js-style-global`` and the class ``no-inline-styles`` exists, so the
    page links this stylesheet under that id. The rules are read from the
    installed plotly.min.js itself, so they always match its version.
    """
    start = script.find('{"X,X div":')
    end = script.find("};for(", start)
    if start < 0 or end < 0:
        return ""
    rules = []
    for key, value in _STYLE_RULES.findall(script[start : end + 1]):
        selector = (
            key[1:-1].replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        )
        if selector.startswith(","):
            selector = " " + selector
        rules.append(f"{selector}{{{value[1:-1]}}}")
    return "\n".join(rules) + "\n"


_INJECTED_STYLE = re.compile(
    r'if\(!document\.getElementById\("([\w-]+)"\)\)\{var \w+=document\.createElement\("style"\)'
)
_GUARD_IDS: list[tuple[str, ...]] = []


def _plotly_script() -> str:
    return (resources.files("plotly") / "package_data" / "plotly.min.js").read_text("utf-8")


def plotly_style_guards() -> tuple[str, ...]:
    """Ids of the other ``<style>`` elements plotly.js injects unless one exists (the
    map traces' stylesheet): the page holds empty elements with these ids, since it
    draws no maps and the CSP would refuse the inline styles anyway."""
    if not _GUARD_IDS:
        _GUARD_IDS.append(tuple(_INJECTED_STYLE.findall(_plotly_script())))
    return _GUARD_IDS[0]


# --- pages ---------------------------------------------------------------------------------


@router.get("/measures", response_class=HTMLResponse)
def measures_overview(
    request: Request, caller: CallerDep, settings: SettingsDep, registry: RegistryDep
) -> Response:
    dashboard.require_dashboards(caller.principal)
    try:
        stored = page_cache.stored_results(settings)
    except NotFound as exc:
        return render(
            request, "dashboards_empty.html", {**page_context(caller), "message": exc.message}
        )
    view = _overview(stored, caller, settings, registry)
    return render(
        request,
        "dashboards_overview.html",
        {**page_context(caller), "view": view, "sparkline": sparkline, "icons": icons},
    )


def _overview(
    stored: StoredResults, caller: Caller, settings: Any, registry: Any
) -> dashboard.Overview:
    catalog = _catalog(settings)
    changes = changes_by_measure(registry, stored)
    # The attention list names the viewer's own sites that have results: part of the key
    # (an admin, an analyst and an auditor, with none, share one overview).
    codes = {g.site_code for g in caller.principal.grants}
    mine = tuple(sorted(c for c in codes if c and c in stored.sites))
    return page_cache.overview(
        settings,
        stored,
        caller.principal,
        (page_cache.catalog_inputs(catalog), _changes_key(changes), mine),
        lambda: dashboard.overview(stored, catalog, caller.principal, changes=changes),
    )


def _detail(
    measure_id: str, caller: Caller, settings: Any, registry: Any
) -> tuple[StoredResults, dashboard.MeasureDetail]:
    """The stored run and a measure's page data (shared by every worker: page_cache)."""
    stored = page_cache.stored_results(settings)
    deployments = dashboard.recorded_changes(registry, measure_id, stored.sites)
    detail = page_cache.measure_detail(
        settings,
        stored,
        caller.principal,
        _detail_inputs(measure_id, deployments, settings),
        lambda: dashboard.measure_detail(
            stored, _catalog(settings), measure_id, caller.principal, deployments=deployments
        ),
    )
    return stored, detail


def _detail_inputs(measure_id: str, deployments: Sequence[Deployed], settings: Any) -> Any:
    """What a measure's page data and figures depend on besides the stored run (their cache
    key): a new deployment, change or annotation must be named here."""
    return (measure_id, tuple(deployments), page_cache.catalog_inputs(_catalog(settings)))


@router.get("/measures/{measure_id}/sites/{site}/patients", response_class=HTMLResponse)
def measure_patient_list(
    request: Request,
    measure_id: str,
    site: str,
    caller: CallerDep,
    settings: SettingsDep,
    registry: RegistryDep,
    period: Annotated[date | None, Query()] = None,
    kind: Annotated[Literal["gap", "numerator", "denominator", "excluded"], Query()] = "gap",
) -> Response:
    stored = dashboard.stored_results(warehouse_opener(settings))
    if period is None:
        rows = stored.rows(measure_id, site.strip().upper())
        if rows.empty:
            raise NotFound(f"There are no results of {measure_id!r} at a site {site!r}.")
        period = rows["period_start"].iloc[-1]
    list_kind: ListKind = kind
    with Warehouse.from_settings(settings, read_only=True) as warehouse:
        listed = dashboard.dashboard_patient_list(
            warehouse,
            registry,
            caller.principal,
            _catalog(settings),
            measure_id,
            site=site,
            period=period,
            kind=list_kind,
        )
    response = render(
        request,
        "dashboard_patients.html",
        {**page_context(caller), "listed": listed, "m": listed.measure},
    )
    response.headers["Cache-Control"] = "no-store"  # names and dates of birth: never cached
    return response


@router.get("/sites/{code}", response_class=HTMLResponse)
def site_page(
    request: Request, code: str, caller: CallerDep, settings: SettingsDep, registry: RegistryDep
) -> Response:
    stored = page_cache.stored_results(settings)
    view = _site(stored, code, caller, settings, registry)
    return render(
        request,
        "dashboard_site.html",
        {
            **page_context(caller),
            "view": view,
            "sparkline": sparkline,
            "icons": icons,
            "feedback_link": may_see_site_report(registry, caller.principal, view.site),
        },
    )


def _site(
    stored: StoredResults, code: str, caller: Caller, settings: Any, registry: Any
) -> dashboard.SiteView:
    catalog = _catalog(settings)
    changes = changes_by_measure(registry, stored)
    return page_cache.site_view(
        settings,
        stored,
        caller.principal,
        (code.strip().upper(), page_cache.catalog_inputs(catalog), _changes_key(changes)),
        lambda: dashboard.site_view(stored, catalog, code, caller.principal, changes=changes),
    )


def warm_pages(settings: Settings, registry: Any) -> int:
    """Compute every dashboard page's shared data and figures now (the overview, each
    measure, each site), so that nobody waits for them; how many pages were warmed."""
    try:
        stored = page_cache.stored_results(settings)
    except NotFound:
        return 0  # no measure results yet
    from careloop.web.pages.measure_page import page_figures  # it imports this module

    operator = Principal.operator("dashboard warm-up")
    caller = Caller(operator, None, None)
    view = _overview(stored, caller, settings, registry)
    local = stored.sites[:WARM_SITES]
    for code in local:  # the overview as the staff of one site see it
        staff = replace(operator, grants=(*operator.grants, Grant("site_lead", None, code)))
        _overview(stored, Caller(staff, None, None), settings, registry)
    for row in view.rows:
        _, detail = _detail(row.measure.id, caller, settings, registry)
        page_figures(detail, settings, detail.network, None)
        for series in detail.sites:  # a site lead's page opens on their own site's chart
            if series.site in local:
                page_figures(detail, settings, series, None)
    for code in stored.sites:
        _site(stored, code, caller, settings, registry)
    return (1 + len(local)) * (1 + len(view.rows)) + len(stored.sites)
