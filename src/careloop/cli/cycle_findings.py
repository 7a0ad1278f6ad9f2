"""`careloop cycle findings …`: coded focus groups and interviews attached to a cycle.

``add`` attaches a REFI-QDA ``.qdpx`` (or careloop's ``.json``) project,
``list`` shows what a cycle's Study says of them (themes, kappa per code),
``transcripts`` writes the whole project back out for those allowed to read
it (each read audited).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from careloop.analysis.qualitative import project_to_dict, write_qdpx
from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console, print_json, print_rows
from careloop.community import (
    FindingsView,
    add_findings,
    list_findings,
    read_findings_project,
    read_project_file,
)
from careloop.core.errors import InputError

findings_app = typer.Typer(help="Qualitative findings (coded focus groups, interviews) of a cycle.")


def _fmt(value: str) -> str:
    if value not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {value!r}.")
    return value


def print_findings(found: list[FindingsView]) -> None:
    """Themes and agreement of each attached project, as tables."""
    for f in found:
        s = f.summary
        console.print(
            f"Findings {f.id}: {f.name} — {len(s['documents'])} documents, "
            f"{s['segments']} coded segments by {', '.join(s['coders'])}",
            markup=False,
        )
        print_rows(
            ["theme", "segments", "participants", "documents"],
            [(t["name"], t["segments"], t["participants"], t["documents"]) for t in s["themes"]],
            title="Themes",
        )
        print_rows(
            ["code", "coders", "units", "kappa", "95% CI", "interpretation"],
            [
                (
                    a["code"],
                    " & ".join(a["coders"]),
                    a["units"],
                    "—" if a["kappa"] is None else f"{a['kappa']:.2f}",
                    "—"
                    if a["kappa"] is None
                    else f"{a['kappa_ci_low']:.2f} to {a['kappa_ci_high']:.2f}",
                    a["interpretation"],
                )
                for a in s["agreement"]
            ],
            title="Agreement on double-coded documents",
        )


@findings_app.command("add")
def add(
    cycle_id: int = typer.Argument(...),
    project: Path = typer.Option(
        ..., "--project", help="A REFI-QDA .qdpx file, or careloop's .json form."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Attach a coded project to a cycle: its themes and kappa join the cycle's Study."""
    coded, source = read_project_file(project)
    with opened(settings_from(data_dir)) as registry:
        view = add_findings(registry, operator(), cycle_id, coded, source=source)
    console.print(
        f"Findings {view.id} attached to cycle {cycle_id}: {len(view.summary['themes'])} themes, "
        f"{len(view.summary['agreement'])} code agreements.",
        markup=False,
    )


@findings_app.command("list")
def list_(
    cycle_id: int = typer.Argument(...),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """A cycle's qualitative findings: themes with their counts, kappa per code."""
    with opened(settings_from(data_dir)) as registry:
        found = list_findings(registry, operator(), cycle_id)
    if _fmt(fmt) == "json":
        print_json([asdict(f) for f in found])
        return
    print_findings(found)


@findings_app.command("transcripts")
def transcripts(
    findings_id: int = typer.Argument(...),
    out: Path = typer.Option(..., "--out", help="Where to write it: a .qdpx or .json file."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Write the whole coded project, transcripts included, to a file (audited)."""
    if out.suffix.lower() not in (".qdpx", ".json"):
        raise InputError(f"--out must end in .qdpx or .json, not {out.name!r}.")
    with opened(settings_from(data_dir)) as registry:
        project = read_findings_project(registry, operator(), findings_id)
    if out.suffix.lower() == ".qdpx":
        write_qdpx(project, out)
    else:
        out.write_text(json.dumps(project_to_dict(project), indent=2), encoding="utf-8")
    console.print(f"Wrote {out}.", markup=False)
