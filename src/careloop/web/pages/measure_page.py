"""A measure's page: its charts with phases and notes, the Making Data Count icons, the
period and site filters, the funnel of the sites, the downloads, and adding a note.

The charts and numbers come from :mod:`careloop.practice.feedback.dashboards`, which
decides who may see and annotate what; this module renders them. A note is an
ordinary form POST carrying the session's CSRF token: a refusal comes back on the
page with the reasons beside the fields and what was typed kept, success redirects
(303) to the chart it was added to.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from careloop import charts
from careloop.core.clock import utcnow
from careloop.core.csv_safety import frame_to_csv
from careloop.core.errors import CareloopError, InputError, NotFound
from careloop.measures.runner import NETWORK
from careloop.practice.feedback import dashboards as dashboard
from careloop.practice.feedback.dashboards import MeasureDetail, Series, StoredResults
from careloop.warehouse.connection import warehouse_opener
from careloop.web.pages import dashboard_cache as page_cache
from careloop.web.pages.community_assessment import PostedForm
from careloop.web.pages.dashboards import (
    SMALL_MULTIPLES,
    _detail,
    _detail_inputs,
    figure_json,
    icons,
    plotly_style_guards,
)
from careloop.web.pages.rendering import form_state, page_context, render
from careloop.web.security import Caller, CallerDep, RegistryDep, SettingsDep

router = APIRouter(include_in_schema=False)

Month = Annotated[str | None, Query(max_length=7, pattern=r"^(\d{4}-\d{2})?$")]


def _series_at(detail: MeasureDetail, site: str | None) -> Series:
    if not site:
        return detail.network
    found = [s for s in detail.sites if s.site == site.strip().upper()]
    if not found:
        raise NotFound(f"There are no results of {detail.measure.id} at a site {site!r}.")
    return found[0]


def source_line(stored: StoredResults, detail: MeasureDetail, today: date) -> str:
    """Where a chart's data come from and when they were extracted, for exported images."""
    ends = [p.period_end for p in detail.network.points]
    run = stored.run_at.strftime("%d %b %Y") if stored.run_at else "date unknown"
    end = f"; data to {max(ends).strftime('%b %Y')}" if ends else ""
    return (
        f"Source: careloop measure results (run {stored.run_id}, extracted {run}{end}); "
        f"downloaded {today.strftime('%d %b %Y')}."
    )


@router.get("/measures/{measure_id}.csv")
def measure_csv(
    measure_id: str, caller: CallerDep, settings: SettingsDep, registry: RegistryDep
) -> Response:
    stored, detail = _detail(measure_id, caller, settings, registry)
    numbers = dashboard.measure_numbers(stored, measure_id, caller.principal)
    rows = dashboard.measure_table(detail, numbers)
    rows = rows.assign(site=rows["site"].replace({NETWORK: "(network)"}))
    return Response(
        frame_to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{measure_id}.csv"'},
    )


def _image(body: bytes | str, fmt: str, name: str) -> Response:
    return Response(
        body,
        media_type="image/png" if fmt == "png" else "image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


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
    stored, detail = _detail(measure_id, caller, settings, registry)
    series = _series_at(detail, site)
    if series.chart is None:
        raise NotFound("There are too few periods with data to draw a chart.")
    chart = replace(series.chart, title=f"{detail.measure.title} — {series.site or 'network'}")
    options: dict[str, Any] = {
        "annotations": list(series.annotations),
        "source": source_line(stored, detail, utcnow().date()),
        "numbered": True,
    }
    body = charts.spc.png(chart, **options) if fmt == "png" else charts.spc.svg(chart, **options)
    return _image(body, fmt, f"{detail.measure.id}-{series.site or 'network'}")


@router.get("/measures/{measure_id}/funnel.{fmt}")
def measure_funnel_image(
    measure_id: str, fmt: str, caller: CallerDep, settings: SettingsDep, registry: RegistryDep
) -> Response:
    if fmt not in ("png", "svg"):
        raise InputError(f"The funnel plot downloads as funnel.png or funnel.svg, not {fmt}.")
    stored, detail = _detail(measure_id, caller, settings, registry)
    result = detail.funnel.result
    if result is None:
        raise NotFound(detail.funnel.note or "There is no funnel plot for this measure.")
    options: dict[str, Any] = {
        "title": f"{detail.measure.title} — sites, {detail.funnel.window}",
        "improvement": detail.measure.improvement,
        "source": source_line(stored, detail, utcnow().date()),
        "y_title": "% meeting the measure" if detail.measure.percent else "rate",
    }
    body = (
        charts.funnel.png(result, **options)
        if fmt == "png"
        else charts.funnel.svg(result, **options)
    )
    return _image(body, fmt, f"{measure_id}-funnel")


def _month(text: str | None) -> date | None:
    if not text:
        return None
    year, month = text.split("-")
    if not 1 <= int(month) <= 12:
        raise InputError(f"A month is written YYYY-MM, e.g. 2023-04; got {text!r}.")
    return date(int(year), int(month), 1)


def _default_site(caller: Caller, detail: MeasureDetail) -> str:
    """A site lead of one site with results sees that site's chart first."""
    codes = {s.site for s in detail.sites}
    led = [g.site_code for g in caller.principal.grants if g.role == "site_lead" and g.site_code]
    mine = [c for c in dict.fromkeys(led) if c in codes]
    return mine[0] if len(mine) == 1 else NETWORK


def _chosen_site(caller: Caller, detail: MeasureDetail, site: str | None) -> str:
    if site is None:
        return _default_site(caller, detail)
    code = site.strip().upper()
    if code in ("", "NETWORK"):
        return NETWORK
    _series_at(detail, code)  # NotFound for a site without results
    return code


def _x_range(start: date | None, end: date | None) -> list[str] | None:
    if start is None and end is None:
        return None
    first = (start or date(1900, 1, 1)).isoformat()
    last = (end or date(2999, 12, 1)).isoformat()
    return [first, last]


def _chart_figure(detail: MeasureDetail, series: Series, window: list[str] | None) -> Markup | None:
    if series.chart is None:
        return None
    where = "network" if series.site == NETWORK else f"site {series.site}"
    chart = replace(series.chart, title=f"{detail.measure.title} — {where}")
    fig = charts.spc.figure(chart, annotations=list(series.annotations), numbered=True)
    if window is not None:
        fig.update_xaxes(range=window, autorange=False)
    return figure_json(fig)


def _figures(detail: MeasureDetail, chosen: Series, window: list[str] | None) -> dict[str, Markup]:
    figures: dict[str, Markup] = {}
    for name, series in (("network", detail.network), ("site", chosen)):
        if name == "site" and chosen.site == NETWORK:
            continue
        drawn = _chart_figure(detail, series, window)
        if drawn is not None:
            figures[name] = drawn
    charted = [s for s in detail.sites if s.chart is not None]
    if charted:
        largest = sorted(charted, key=lambda s: -sum(p.denominator for p in s.points))
        shown = sorted(largest[:SMALL_MULTIPLES], key=lambda s: s.site)
        figures["sites"] = figure_json(
            charts.spc.facets_figure(
                {s.site: s.chart for s in shown if s.chart is not None},
                columns=3,
                annotations={s.site: list(s.annotations) for s in shown},
                title="By site",
                numbered=True,
            )
        )
    if detail.funnel.result is not None:
        funnel_fig = charts.funnel.figure(
            detail.funnel.result,
            title=f"Sites, {detail.funnel.window}",
            improvement=detail.measure.improvement,
            goal=detail.measure.target,
        )
        funnel_fig.update_layout(
            xaxis_title="counted (denominator)",
            yaxis_title="% meeting the measure" if detail.measure.percent else "rate",
        )
        figures["funnel"] = figure_json(funnel_fig)
    return figures


def page_figures(
    detail: MeasureDetail, settings: Any, chosen: Series, window: list[str] | None
) -> dict[str, Markup]:
    """The page's figures, computed once per run, changes, chosen chart and period range
    for every worker (page_cache)."""
    inputs = (
        _detail_inputs(detail.measure.id, detail.deployments, settings),
        chosen.site,
        tuple(window) if window else None,
    )
    return page_cache.shared(
        settings, detail.run_id, "figures", inputs, lambda: _figures(detail, chosen, window)
    )


def measure_response(
    request: Request,
    measure_id: str,
    caller: Caller,
    settings: Any,
    registry: Any,
    *,
    site: str | None = None,
    start: str | None = None,
    end: str | None = None,
    entered: dict[str, str] | None = None,
    error: CareloopError | None = None,
) -> Response:
    """The measure page, with the note form's state after a refused note."""
    _, detail = _detail(measure_id, caller, settings, registry)
    first, last = _month(start), _month(end)
    chosen = _series_at(detail, _chosen_site(caller, detail, site) or None)
    window = _x_range(first, last)
    periods = [
        p
        for p in reversed(chosen.points)
        if (first is None or p.period_start >= first) and (last is None or p.period_start <= last)
    ]
    ends = [p.period_end for p in detail.network.points]
    writable = dashboard.annotatable_sites(caller.principal, [s.site for s in detail.sites])
    return render(
        request,
        "dashboard_measure.html",
        {
            **page_context(caller),
            **form_state(request, entered, error),
            "detail": detail,
            "m": detail.measure,
            "figures": page_figures(detail, settings, chosen, window),
            "chosen": chosen,
            "latest": detail.network.latest,
            "capped": len([s for s in detail.sites if s.chart is not None]) > SMALL_MULTIPLES,
            "small_multiples": SMALL_MULTIPLES,
            "periods": periods,
            "filters": {"site": chosen.site, "start": start or "", "end": end or ""},
            "stale": dashboard.staleness(max(ends) if ends else None, utcnow().date()),
            "summaries": {
                "network": dashboard.chart_summary(detail.network, detail.measure),
                "site": dashboard.chart_summary(chosen, detail.measure),
            },
            "writable": writable,
            "note_max": dashboard.NOTE_MAX,
            "icons": icons,
            "plotly_guards": plotly_style_guards(),
        },
        status=error.http_status if error is not None else 200,
    )


@router.get("/measures/{measure_id}", response_class=HTMLResponse)
def measure_page(
    request: Request,
    measure_id: str,
    caller: CallerDep,
    settings: SettingsDep,
    registry: RegistryDep,
    site: Annotated[str | None, Query(max_length=40)] = None,
    start: Month = None,
    end: Month = None,
) -> Response:
    return measure_response(
        request, measure_id, caller, settings, registry, site=site, start=start, end=end
    )


def _posted_month(text: str) -> date | None:
    try:
        return _month(text.strip()[:7]) if text.strip() else None
    except (InputError, ValueError):
        return None


@router.post("/measures/{measure_id}/notes")
def note_submit(
    request: Request,
    measure_id: str,
    caller: CallerDep,
    settings: SettingsDep,
    registry: RegistryDep,
    form: PostedForm,
) -> Response:
    """Add a note (and maybe start a new phase) to the network's or a site's chart."""
    site = form.get("site", "").strip().upper()
    stored = dashboard.stored_results(warehouse_opener(settings))
    try:
        dashboard.add_note(
            registry,
            caller.principal,
            measure_id,
            known_measures=stored.measure_ids,
            site=site,
            period=_posted_month(form.get("period", "")),
            text=form.get("text", ""),
            starts_phase=form.get("starts_phase") == "yes",
        )
    except CareloopError as exc:
        return measure_response(
            request,
            measure_id,
            caller,
            settings,
            registry,
            site=site or NETWORK,
            entered=form,
            error=exc,
        )
    where = f"site={site}" if site else "site=network"
    return RedirectResponse(f"/measures/{measure_id}?{where}&recorded=1#notes", status_code=303)
