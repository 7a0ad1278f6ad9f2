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
from datetime import date
from importlib import resources
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from careloop import charts
from careloop.community import cycle_changes
from careloop.core.csv_safety import frame_to_csv
from careloop.core.errors import InputError, NotFound
from careloop.core.settings import Settings
from careloop.knowledge import deployments_for
from careloop.measures.catalog import MeasureCatalog, load_catalog
from careloop.measures.patient_lists import ListKind
from careloop.practice.feedback import dashboards as dashboard
from careloop.practice.feedback.dashboards import Deployed, Series
from careloop.trust.principal import Principal
from careloop.warehouse.connection import Warehouse, warehouse_opener
from careloop.web.pages import dashboard_cache as page_cache
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import Caller, CallerDep, RegistryDep, SettingsDep

router = APIRouter(include_in_schema=False)

SMALL_MULTIPLES = 30
"""At most this many site charts on a measure page (the largest sites)."""

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
    if signals is not None and signals.variation == "special_cause_improvement":
        colour = "#1565c0"
    elif signals is not None and signals.variation == "special_cause_concern":
        colour = "#d7301f"
    x, y = xy(len(values) - 1, values[-1])
    parts.append(f'<circle cx="{x}" cy="{y}" r="2.8" fill="{colour}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and fixed text only


def _changes(registry: Any, measure_id: str, network: Sequence[str]) -> tuple[Deployed, ...]:
    """Knowledge deployments and learning cycles' changes that touch the measure, by date.

    A cycle whose change reached every site of the network (or names no site)
    counts as a change of the network, as a deployment to every site does.
    """
    out = []
    for d in deployments_for(registry, measure_id):
        where = ", ".join(d.sites) if d.sites else "all sites"
        out.append(
            Deployed(f"{d.identifier} {d.version} ({where})", d.started_at.date(), tuple(d.sites))
        )
    for c in cycle_changes(registry, measure_id):
        everywhere = not c.sites or set(network) <= set(c.sites)
        where = "all sites" if everywhere else ", ".join(c.sites)
        out.append(
            Deployed(
                c.title,
                c.starts,
                () if everywhere else c.sites,
                kind="pdsa",
                where=f"learning cycle, {c.community}; {where}",
            )
        )
    return tuple(sorted(out, key=lambda d: d.started))


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
def measures_overview(request: Request, caller: CallerDep, settings: SettingsDep) -> Response:
    dashboard.require_dashboards(caller.principal)
    try:
        stored = page_cache.stored_results(settings)
    except NotFound as exc:
        return render(
            request, "dashboards_empty.html", {**page_context(caller), "message": exc.message}
        )
    view = _overview(stored, caller, settings)
    return render(
        request,
        "dashboards_overview.html",
        {**page_context(caller), "view": view, "sparkline": sparkline},
    )


def _overview(stored: dashboard.StoredResults, caller: Caller, settings: Any) -> dashboard.Overview:
    catalog = _catalog(settings)
    return page_cache.overview(
        settings,
        stored,
        caller.principal,
        page_cache.catalog_inputs(catalog),
        lambda: dashboard.overview(stored, catalog, caller.principal),
    )


@router.get("/measures/{measure_id}.csv")
def measure_csv(measure_id: str, caller: CallerDep, settings: SettingsDep) -> Response:
    stored = dashboard.stored_results(warehouse_opener(settings))
    rows = dashboard.measure_numbers(stored, measure_id, caller.principal)
    rows = rows.assign(site=rows["site"].replace({"": "(network)"}))
    return Response(
        frame_to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{measure_id}.csv"'},
    )


def _chart_image(
    detail: dashboard.MeasureDetail, site: str | None, fmt: Literal["png", "svg"]
) -> Response:
    series = detail.network
    if site:
        found = [s for s in detail.sites if s.site == site.strip().upper()]
        if not found:
            raise NotFound(f"There are no results of {detail.measure.id} at a site {site!r}.")
        series = found[0]
    if series.chart is None:
        raise NotFound("There are too few periods with data to draw a chart.")
    chart = series.chart
    title = f"{detail.measure.title} — {series.site or 'network'}"
    from dataclasses import replace

    chart = replace(chart, title=title)
    name = f"{detail.measure.id}-{series.site or 'network'}"
    if fmt == "png":
        return Response(
            charts.spc.png(chart, annotations=list(series.annotations)),
            media_type="image/png",
            headers={"Content-Disposition": f'attachment; filename="{name}.png"'},
        )
    return Response(
        charts.spc.svg(chart, annotations=list(series.annotations)),
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="{name}.svg"'},
    )


def _detail(
    measure_id: str, caller: Caller, settings: Any, registry: Any
) -> dashboard.MeasureDetail:
    stored = page_cache.stored_results(settings)
    deployments = _changes(registry, measure_id, stored.sites)
    return page_cache.measure_detail(
        settings,
        stored,
        caller.principal,
        _detail_inputs(measure_id, deployments, settings),
        lambda: dashboard.measure_detail(
            stored, _catalog(settings), measure_id, caller.principal, deployments=deployments
        ),
    )


def _detail_inputs(measure_id: str, deployments: Sequence[Deployed], settings: Any) -> Any:
    """What a measure's page data and figures depend on besides the stored run (their cache
    key): a new deployment, change or annotation must be named here."""
    return (measure_id, tuple(deployments), page_cache.catalog_inputs(_catalog(settings)))


@router.get("/measures/{measure_id}/chart.{fmt}")
def measure_chart_image(
    measure_id: str,
    fmt: str,
    caller: CallerDep,
    settings: SettingsDep,
    registry: RegistryDep,
    site: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    if fmt not in ("png", "svg"):
        raise InputError(f"Charts download as chart.png or chart.svg, not chart.{fmt}.")
    detail = _detail(measure_id, caller, settings, registry)
    return _chart_image(detail, site, "png" if fmt == "png" else "svg")


@router.get("/measures/{measure_id}/funnel.{fmt}")
def measure_funnel_image(
    measure_id: str, fmt: str, caller: CallerDep, settings: SettingsDep, registry: RegistryDep
) -> Response:
    if fmt not in ("png", "svg"):
        raise InputError(f"The funnel plot downloads as funnel.png or funnel.svg, not {fmt}.")
    detail = _detail(measure_id, caller, settings, registry)
    result = detail.funnel.result
    if result is None:
        raise NotFound(detail.funnel.note or "There is no funnel plot for this measure.")
    title = f"{detail.measure.title} — sites, {detail.funnel.window}"
    name = f"{measure_id}-funnel.{fmt}"
    body: bytes | str = (
        charts.funnel.png(result, title=title)
        if fmt == "png"
        else charts.funnel.svg(result, title=title)
    )
    return Response(
        body,
        media_type="image/png" if fmt == "png" else "image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _figures(detail: dashboard.MeasureDetail) -> dict[str, Markup]:
    """The measure page's Plotly figures as JSON (computed once per run: page_cache)."""
    figures: dict[str, Markup] = {}
    if detail.network.chart is not None:
        from dataclasses import replace

        chart = replace(detail.network.chart, title=f"{detail.measure.title} — network")
        fig = charts.spc.figure(chart, annotations=list(detail.network.annotations))
        figures["network"] = figure_json(fig)
    charted = [s for s in detail.sites if s.chart is not None]
    if charted:
        largest = sorted(charted, key=lambda s: -sum(p.denominator for p in s.points))[
            :SMALL_MULTIPLES
        ]
        largest.sort(key=lambda s: s.site)
        site_charts = {s.site: s.chart for s in largest if s.chart is not None}
        notes = {s.site: list(s.annotations) for s in largest}
        figures["sites"] = figure_json(
            charts.spc.facets_figure(site_charts, columns=3, annotations=notes, title="By site")
        )
    if detail.funnel.result is not None:
        funnel_fig = charts.funnel.figure(
            detail.funnel.result, title=f"Sites, {detail.funnel.window}"
        )
        percent = detail.measure.percent
        funnel_fig.update_layout(
            xaxis_title="counted (denominator)",
            yaxis_title="% meeting the measure" if percent else "rate",
        )
        figures["funnel"] = figure_json(funnel_fig)
    return figures


def _page_figures(detail: dashboard.MeasureDetail, settings: Any) -> dict[str, Markup]:
    inputs = _detail_inputs(detail.measure.id, detail.deployments, settings)
    return page_cache.shared(settings, detail.run_id, "figures", inputs, lambda: _figures(detail))


@router.get("/measures/{measure_id}", response_class=HTMLResponse)
def measure_page(
    request: Request,
    measure_id: str,
    caller: CallerDep,
    settings: SettingsDep,
    registry: RegistryDep,
) -> Response:
    detail = _detail(measure_id, caller, settings, registry)
    figures = _page_figures(detail, settings)
    latest = detail.network.latest
    return render(
        request,
        "dashboard_measure.html",
        {
            **page_context(caller),
            "detail": detail,
            "m": detail.measure,
            "figures": figures,
            "latest": latest,
            "capped": sum(s.chart is not None for s in detail.sites) > SMALL_MULTIPLES,
            "small_multiples": SMALL_MULTIPLES,
            "periods": list(reversed(detail.network.points)),
            "plotly_guards": plotly_style_guards(),
        },
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
def site_page(request: Request, code: str, caller: CallerDep, settings: SettingsDep) -> Response:
    stored = page_cache.stored_results(settings)
    view = _site(stored, code, caller, settings)
    return render(
        request,
        "dashboard_site.html",
        {**page_context(caller), "view": view, "sparkline": sparkline},
    )


def _site(
    stored: dashboard.StoredResults, code: str, caller: Caller, settings: Any
) -> dashboard.SiteView:
    catalog = _catalog(settings)
    return page_cache.site_view(
        settings,
        stored,
        caller.principal,
        (code.strip().upper(), page_cache.catalog_inputs(catalog)),
        lambda: dashboard.site_view(stored, catalog, code, caller.principal),
    )


def warm_pages(settings: Settings, registry: Any) -> int:
    """Compute every dashboard page's shared data and figures now (the overview, each
    measure, each site), so that nobody waits for them; how many pages were warmed."""
    try:
        stored = page_cache.stored_results(settings)
    except NotFound:
        return 0  # no measure results yet
    caller = Caller(Principal.operator("dashboard warm-up"), None, None)
    view = _overview(stored, caller, settings)
    for row in view.rows:
        _page_figures(_detail(row.measure.id, caller, settings, registry), settings)
    for code in stored.sites:
        _site(stored, code, caller, settings)
    return 1 + len(view.rows) + len(stored.sites)
