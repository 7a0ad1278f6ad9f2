"""Measure dashboards: the network overview, a measure's page, a site's page, downloads.

Each route asks :mod:`careloop.practice.feedback.dashboards` for the data (who may see
what is decided there) and renders it. Interactive charts are Plotly figures
sent as JSON in a ``<script type="application/json">`` block (data, not
script, so the strict CSP holds) and drawn by ``static/dashboards.js`` with
the plotly.js that the installed ``plotly`` Python package ships, served from
``/vendor/plotly.min.js`` (never a CDN, never a copy in the repository).
"""

from __future__ import annotations

import re
from datetime import date
from importlib import resources
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from markupsafe import Markup

from careloop import charts
from careloop.charts.mdc_icons import assurance_svg, variation_svg
from careloop.core.errors import NotFound
from careloop.core.settings import Settings
from careloop.measures.catalog import MeasureCatalog, load_catalog
from careloop.measures.patient_lists import ListKind
from careloop.practice.feedback import dashboards as dashboard
from careloop.practice.feedback.dashboards import Deployed, Series, StoredResults
from careloop.warehouse.connection import Warehouse, warehouse_opener
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import CallerDep, RegistryDep, SettingsDep

router = APIRouter(include_in_schema=False)

SMALL_MULTIPLES = 30
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


# --- plotly.js from the installed package ---------------------------------------------


@router.get("/vendor/plotly.min.js")
def plotly_js() -> Response:
    """plotly.js as the installed ``plotly`` Python package ships it."""
    import plotly

    path = resources.files("plotly") / "package_data" / "plotly.min.js"
    return FileResponse(
        str(path),
        media_type="text/javascript",
        headers={
            "Cache-Control": "public, max-age=86400",
            "ETag": f'"plotly-{plotly.__version__}"',
        },
    )


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


_PLOTLY_CSS: dict[str, str] = {}
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


@router.get("/vendor/plotly.css")
def plotly_stylesheet() -> Response:
    """plotly.js's own base style rules, from the installed package, as a stylesheet."""
    import plotly

    if plotly.__version__ not in _PLOTLY_CSS:
        _PLOTLY_CSS[plotly.__version__] = plotly_css(_plotly_script())
    return Response(
        _PLOTLY_CSS[plotly.__version__],
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=86400"},
    )


# --- pages ---------------------------------------------------------------------------------


@router.get("/measures", response_class=HTMLResponse)
def measures_overview(
    request: Request, caller: CallerDep, settings: SettingsDep, registry: RegistryDep
) -> Response:
    dashboard.require_dashboards(caller.principal)
    try:
        stored = dashboard.stored_results(warehouse_opener(settings))
    except NotFound as exc:
        return render(
            request, "dashboards_empty.html", {**page_context(caller), "message": exc.message}
        )
    view = dashboard.overview(
        stored, _catalog(settings), caller.principal, changes=changes_by_measure(registry, stored)
    )
    return render(
        request,
        "dashboards_overview.html",
        {**page_context(caller), "view": view, "sparkline": sparkline, "icons": icons},
    )


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
    stored = dashboard.stored_results(warehouse_opener(settings))
    view = dashboard.site_view(
        stored,
        _catalog(settings),
        code,
        caller.principal,
        changes=changes_by_measure(registry, stored),
    )
    return render(
        request,
        "dashboard_site.html",
        {**page_context(caller), "view": view, "sparkline": sparkline, "icons": icons},
    )
