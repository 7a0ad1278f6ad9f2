"""The knowledge library, impact reports and a site's audit-and-feedback report, as pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from careloop.knowledge.library import deployments, list_versions
from careloop.practice.feedback.reports import feedback_for, impact_for
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import CallerDep, RegistryDep, WarehouseDep

router = APIRouter(include_in_schema=False)

# The reports are self-contained documents with their own <style>; they run no script.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _report(text: str) -> HTMLResponse:
    return HTMLResponse(text, headers={"Content-Security-Policy": REPORT_CSP})


@router.get("/knowledge", response_class=HTMLResponse)
def library_page(request: Request, caller: CallerDep, registry: RegistryDep) -> Response:
    versions = list_versions(registry, caller.principal)
    deployed = deployments(registry)
    return render(
        request,
        "knowledge.html",
        {**page_context(caller), "versions": versions, "deployments": deployed},
    )


@router.get("/knowledge/{ref}/impact", response_class=HTMLResponse)
def impact_page(
    ref: str,
    caller: CallerDep,
    registry: RegistryDep,
    warehouse: WarehouseDep,
    measure: Annotated[str | None, Query(max_length=100)] = None,
    site: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    report = impact_for(registry, warehouse, caller.principal, ref, measure_id=measure, site=site)
    return _report(report.to_html())


@router.get("/sites/{code}/feedback", response_class=HTMLResponse)
def feedback_page(
    code: str,
    caller: CallerDep,
    registry: RegistryDep,
    warehouse: WarehouseDep,
    measure: Annotated[str, Query(max_length=100)] = "remission-prevalence",
) -> Response:
    report = feedback_for(registry, warehouse, caller.principal, site=code, measure_id=measure)
    return _report(report.to_html())
