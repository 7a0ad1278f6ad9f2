"""The knowledge library, a deployment's impact and a site's audit-and-feedback report, as pages.

The impact and feedback pages live in the app's layout (navigation, language,
the strict CSP: their charts are server-drawn SVG, no script) and each has a
PDF of the same body (:mod:`careloop.web.pages.printed`), authorised by the
same domain call.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from careloop.core.errors import InputError
from careloop.knowledge.library import deployments, list_versions
from careloop.practice.feedback.dashboards import patient_list_sites
from careloop.practice.feedback.reports import (
    KnowledgeImpact,
    feedback_for,
    impacts_for,
    measure_catalog,
)
from careloop.web.pages.printed import pdf_response, report_words
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import (
    Caller,
    CallerDep,
    RegistryDep,
    SettingsDep,
    WarehouseDep,
)

router = APIRouter(include_in_schema=False)

MeasureQuery = Annotated[str | None, Query(max_length=100)]
SiteQuery = Annotated[str, Query(max_length=32)]
FEEDBACK_MEASURE = "remission-prevalence"
"""The measure a site's feedback page shows when none is asked for."""


@router.get("/knowledge", response_class=HTMLResponse)
def library_page(request: Request, caller: CallerDep, registry: RegistryDep) -> Response:
    versions = list_versions(registry, caller.principal)
    deployed = deployments(registry)
    return render(
        request,
        "knowledge.html",
        {**page_context(caller), "versions": versions, "deployments": deployed},
    )


def _impact(
    caller: Caller,
    registry: Any,
    warehouse: Any,
    settings: Any,
    ref: str,
    measure: str | None,
    site: str,
) -> KnowledgeImpact:
    """The impact on every target measure, or on the one asked for (which must be a target)."""
    impact = impacts_for(
        registry, warehouse, caller.principal, ref, site=site, measures_dir=settings.measures_dir
    )
    if measure is None:
        return impact
    chosen = tuple(m for m in impact.measures if m.measure_id == measure)
    if not chosen:
        targets = ", ".join(m.measure_id for m in impact.measures) or "none"
        raise InputError(
            f"{impact.ref} does not target the measure {measure!r}; its measures are {targets}. "
            "Leave out ?measure= to see them all."
        )
    return KnowledgeImpact(impact.ref, impact.title, impact.deployment, impact.site, chosen)


def _query(measure: str | None, site: str) -> str:
    parts = [f"measure={measure}" if measure else "", f"site={site}" if site else ""]
    joined = "&".join(p for p in parts if p)
    return f"?{joined}" if joined else ""


@router.get("/knowledge/{ref}/impact", response_class=HTMLResponse)
def impact_page(
    request: Request,
    ref: str,
    caller: CallerDep,
    registry: RegistryDep,
    warehouse: WarehouseDep,
    settings: SettingsDep,
    measure: MeasureQuery = None,
    site: SiteQuery = "",
) -> Response:
    impact = _impact(caller, registry, warehouse, settings, ref, measure, site)
    return render(
        request,
        "impact.html",
        {
            **page_context(caller),
            **report_words(),
            "impact": impact,
            "downloads": True,
            "printing": False,
            "pdf_href": f"/knowledge/{ref}/impact.pdf{_query(measure, site)}",
        },
    )


@router.get("/knowledge/{ref}/impact.pdf")
def impact_pdf(
    request: Request,
    ref: str,
    caller: CallerDep,
    registry: RegistryDep,
    warehouse: WarehouseDep,
    settings: SettingsDep,
    measure: MeasureQuery = None,
    site: SiteQuery = "",
) -> Response:
    impact = _impact(caller, registry, warehouse, settings, ref, measure, site)
    return pdf_response(
        request,
        settings,
        "_impact_body.html",
        {"impact": impact, "title": f"Impact of {impact.title}"},
        f"impact-{impact.deployment.identifier}-{impact.deployment.version}.pdf",
    )


def _feedback_context(
    caller: Caller, registry: Any, warehouse: Any, settings: Any, code: str, measure: str
) -> dict[str, Any]:
    report = feedback_for(registry, warehouse, caller.principal, site=code, measure_id=measure)
    titles = {m.id: m.title for m in measure_catalog(settings.measures_dir).values()}
    may_list = bool(patient_list_sites(caller.principal, [code]))
    return {
        "report": report,
        "measure_title": titles.get(measure, measure),
        "title": f"{titles.get(measure, measure)} at {code}",
        "patients_href": f"/measures/{measure}/sites/{code}/patients" if may_list else None,
        "measure_href": f"/measures/{measure}",
    }


@router.get("/sites/{code}/feedback", response_class=HTMLResponse)
def feedback_page(
    request: Request,
    code: str,
    caller: CallerDep,
    registry: RegistryDep,
    warehouse: WarehouseDep,
    settings: SettingsDep,
    measure: Annotated[str, Query(max_length=100)] = FEEDBACK_MEASURE,
) -> Response:
    context = _feedback_context(caller, registry, warehouse, settings, code, measure)
    return render(
        request,
        "site_feedback.html",
        {
            **page_context(caller),
            **report_words(),
            **context,
            "downloads": True,
            "printing": False,
            "pdf_href": f"/sites/{code}/feedback.pdf?measure={measure}",
        },
    )


@router.get("/sites/{code}/feedback.pdf")
def feedback_pdf(
    request: Request,
    code: str,
    caller: CallerDep,
    registry: RegistryDep,
    warehouse: WarehouseDep,
    settings: SettingsDep,
    measure: Annotated[str, Query(max_length=100)] = FEEDBACK_MEASURE,
) -> Response:
    context = _feedback_context(caller, registry, warehouse, settings, code, measure)
    return pdf_response(
        request, settings, "_feedback_body.html", context, f"feedback-{code}-{measure}.pdf"
    )
