"""A learning community's and a cycle's report as a PDF download, from their pages.

The report ``careloop report community|cycle ID --pdf`` prints, for the
signed-in member: :func:`careloop.practice.community_reports.community_report`
and :func:`~careloop.practice.community_reports.cycle_report` check membership
on the server and audit the read, as the pages do; the page is written to a
private temporary folder and printed by the server's headless Chromium.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from careloop.core.errors import NotFound
from careloop.practice.community_reports import (
    CommunityReport,
    community_report,
    cycle_report,
    write_report,
)
from careloop.web.openapi import RecordId
from careloop.web.security import CallerDep, RegistryDep, SettingsDep, WarehouseDep

router = APIRouter(include_in_schema=False)


def _pdf(report: CommunityReport, chromium: Path | None, filename: str) -> Response:
    with tempfile.TemporaryDirectory(prefix="careloop-print-") as folder:
        written = write_report(
            report, Path(folder) / "report.html", pdf=Path(folder) / "report.pdf", chromium=chromium
        )
        assert written.pdf is not None  # asked for above
        data = written.pdf.read_bytes()
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/communities/{community_id}/report.pdf")
def community_pdf(
    community_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    warehouse: WarehouseDep,
    settings: SettingsDep,
) -> Response:
    report = community_report(
        registry, warehouse, caller.principal, community_id, measures_dir=settings.measures_dir
    )
    return _pdf(report, settings.chromium, f"community-{community_id}.pdf")


@router.get("/communities/{community_id}/cycles/{cycle_id}/report.pdf")
def cycle_pdf(
    community_id: RecordId,
    cycle_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    warehouse: WarehouseDep,
    settings: SettingsDep,
) -> Response:
    report = cycle_report(
        registry, warehouse, caller.principal, cycle_id, measures_dir=settings.measures_dir
    )
    if report.community.community.id != community_id:
        raise NotFound(f"Community {community_id} has no cycle {cycle_id}.")
    return _pdf(report, settings.chromium, f"cycle-{cycle_id}.pdf")
