"""`careloop community engagement ID`: who contributed what, and the patients' and carers' share."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console, print_json, print_rows
from careloop.community import CONTRIBUTIONS, engagement
from careloop.core.errors import InputError


def engagement_command(
    community_id: int = typer.Argument(...),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Contributions per member (proposals, votes, reviews, cycles, findings), and totals."""
    if fmt not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {fmt!r}.")
    with opened(settings_from(data_dir)) as registry:
        found = engagement(registry, operator(), community_id)
    if fmt == "json":
        print_json(asdict(found))
        return
    print_rows(
        ["member", "roles", *(c.replace("_", " ") for c in CONTRIBUTIONS), "total"],
        [
            (m.name, ", ".join(m.roles), *(m.counts[c] for c in CONTRIBUTIONS), m.total)
            for m in found.members
        ],
        title=f"Engagement in {found.community}",
    )
    share = found.patient_and_carer_share
    console.print(
        f"{found.total} contributions; patients and carers ({found.patients_and_carers} "
        f"members) made {found.patient_and_carer_contributions}"
        + ("" if share is None else f" ({share:.0%})")
        + ".",
        markup=False,
    )
