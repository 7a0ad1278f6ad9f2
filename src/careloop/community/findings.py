"""Qualitative findings of a learning cycle: a coded focus-group or interview project.

A member attaches a coded project — a REFI-QDA ``.qdpx`` from NVivo,
ATLAS.ti, MAXQDA or careloop, or careloop's JSON form — to a cycle. Its
summary (documents' metadata, codebook, themes with the segments, documents
and participants behind them, kappa per code where two coders coded the
same documents) joins the cycle's Study, which every member sees.

The transcripts are stored too: a ``.qdpx`` carries them, the themes'
quotes point into them, and a community re-reading its findings needs
them. Focus groups with patients and carers may still say identifying
things, so the whole project is read only by the cycle's owner and members
holding a researcher, embedded researcher, analyst or facilitator role (who
are also the ones who may attach one), and every read is audited. Bad input
— an unknown cycle, a non-member, a malformed file — is refused with
nothing stored, and audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from careloop.analysis.qualitative import (
    QualitativeProject,
    project_from_dict,
    project_to_dict,
    read_qdpx,
)
from careloop.community import _access as access
from careloop.community._access import CATEGORY, loads
from careloop.community.study.qualitative import qualitative_findings
from careloop.core.clock import as_utc
from careloop.core.errors import InputError, NotFound, PermissionDenied
from careloop.store.database import Registry
from careloop.store.models import Community, Cycle, CycleFindings
from careloop.trust.principal import Principal
from careloop.trust.work import Work

__all__ = [
    "TRANSCRIPT_ROLES",
    "FindingsView",
    "add_findings",
    "list_findings",
    "read_findings_project",
    "read_project_file",
]

TRANSCRIPT_ROLES: tuple[str, ...] = ("researcher", "embedded_researcher", "analyst", "facilitator")
"""Community roles that may attach and read transcripts (besides the cycle's owner)."""


@dataclass(frozen=True)
class FindingsView:
    """Qualitative findings attached to a cycle, as its Study shows them (no transcripts)."""

    id: int
    cycle_id: int
    community_id: int
    name: str
    source: str
    """``qdpx`` or ``json``: what was attached."""
    added_by: str
    added_at: datetime
    summary: dict[str, Any]
    """:class:`~careloop.community.study.QualitativeFindings` as JSON."""


def read_project_file(path: Path | str) -> tuple[QualitativeProject, str]:
    """A coded project from a ``.qdpx`` (REFI-QDA) or ``.json`` (careloop) file, and its kind.

    Raises:
        InputError: Another extension, an unreadable file, or a malformed project.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".qdpx":
        return read_qdpx(file), "qdpx"
    if suffix != ".json":
        raise InputError(
            f"{file} is neither a REFI-QDA project (.qdpx) nor careloop's JSON form (.json); "
            "export the project from your qualitative software as REFI-QDA .qdpx."
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{file} is not readable JSON: {exc}.") from exc
    return project_from_dict(data), "json"


def _view(row: CycleFindings, community_id: int) -> FindingsView:
    return FindingsView(
        id=row.id,
        cycle_id=row.cycle_id,
        community_id=community_id,
        name=row.name,
        source=row.source,
        added_by=row.added_by,
        added_at=as_utc(row.added_at),
        summary=loads(row.summary, {}),
    )


def _cycle(work: Work, cycle_id: int, community_id: int | None) -> tuple[Cycle, Community]:
    row = work.session.get(Cycle, cycle_id)
    if row is None or (community_id is not None and row.community_id != community_id):
        raise NotFound(f"There is no learning cycle {cycle_id} (`careloop cycle list`).")
    return row, access.community_row(work.session, row.community_id)


def _require_transcript_reader(work: Work, cycle: Cycle, community: Community) -> None:
    """The cycle's owner and members with a research, analyst or facilitator role."""
    member = access.require_member(work, community)
    if work.principal.is_operator or member is None:
        return
    if cycle.created_by == work.principal.email:
        return
    if set(loads(member.roles, [])) & set(TRANSCRIPT_ROLES):
        return
    raise PermissionDenied(
        f"Transcripts of cycle {cycle.id} may say identifying things: only the cycle's owner "
        f"and members of {community.name!r} with a role of {', '.join(TRANSCRIPT_ROLES)} "
        "attach or read them. The themes and agreement are in the cycle's Study."
    )


def add_findings(
    registry: Registry,
    principal: Principal,
    cycle_id: int,
    project: QualitativeProject,
    *,
    source: str,
    community_id: int | None = None,
) -> FindingsView:
    """Attach a coded project to a cycle (its owner, researchers, analysts, facilitators)."""
    with access.community_work(registry, principal, "community.participate") as work:
        access.audit_refusals(work, "cycle.findings.add", community_id, cycle=cycle_id)
        cycle, community = _cycle(work, cycle_id, community_id)
        _require_transcript_reader(work, cycle, community)
        if source not in ("qdpx", "json"):
            raise InputError(f"source is qdpx or json, not {source!r}.")
        if not project.documents or not project.segments:
            raise InputError(
                f"Project {project.name!r} has {len(project.documents)} documents and "
                f"{len(project.segments)} coded segments: attach a project once it is coded."
            )
        summary = qualitative_findings(project)
        row = CycleFindings(
            cycle_id=cycle.id,
            name=(project.name.strip() or f"Findings of cycle {cycle.id}")[:200],
            source=source,
            summary=json.dumps(summary.to_dict()),
            content=json.dumps(project_to_dict(project)),
            user_id=principal.user_id,
            added_by=principal.email,
        )
        work.session.add(row)
        work.session.flush()
        work.audit(
            "cycle.findings.add",
            CATEGORY,
            details={
                "community": community.id,
                "cycle": cycle.id,
                "findings": row.id,
                "documents": len(project.documents),
                "segments": len(project.segments),
            },
        )
        return _view(row, community.id)


def list_findings(
    registry: Registry, principal: Principal, cycle_id: int, *, community_id: int | None = None
) -> list[FindingsView]:
    """The qualitative findings of a cycle, as its Study shows them (whoever sees the cycle)."""
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, "cycle.findings.list", community_id, cycle=cycle_id)
        cycle, community = _cycle(work, cycle_id, community_id)
        access.require_seeing(work, community)
        rows = work.session.scalars(
            select(CycleFindings)
            .where(CycleFindings.cycle_id == cycle.id)
            .order_by(CycleFindings.id)
        )
        found = [_view(r, community.id) for r in rows]
        work.audit(
            "cycle.findings.list",
            CATEGORY,
            details={"community": community.id, "cycle": cycle.id},
        )
        return found


def read_findings_project(
    registry: Registry,
    principal: Principal,
    findings_id: int,
    *,
    community_id: int | None = None,
) -> QualitativeProject:
    """The whole coded project, transcripts included (restricted; every read audited)."""
    with access.community_work(registry, principal, "community.read") as work:
        access.audit_refusals(work, "cycle.findings.read", community_id, findings=findings_id)
        row = work.session.get(CycleFindings, findings_id)
        if row is None:
            raise NotFound(
                f"There are no qualitative findings {findings_id} "
                "(`careloop cycle findings list CYCLE_ID` lists a cycle's)."
            )
        cycle, community = _cycle(work, row.cycle_id, community_id)
        _require_transcript_reader(work, cycle, community)
        project = project_from_dict(loads(row.content, {}))
        work.audit(
            "cycle.findings.read",
            CATEGORY,
            details={"community": community.id, "cycle": cycle.id, "findings": row.id},
        )
        return project
