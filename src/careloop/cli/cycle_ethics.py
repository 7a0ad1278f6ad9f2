"""`careloop cycle determine`: record a cycle's purpose and the determination that covers it."""

from __future__ import annotations

from pathlib import Path

import typer

from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console
from careloop.community import measure_ids, update_cycle
from careloop.core.errors import ErrorDetail, ValidationFailed


def determine(
    cycle_id: int = typer.Argument(...),
    purpose: str = typer.Option(..., "--purpose", help="qi (quality improvement) or research."),
    determination: str = typer.Option(
        ...,
        "--determination",
        help="KIND:REFERENCE, KIND qi_determination or ethics_approval (research needs one).",
    ),
    measures_dir: Path | None = typer.Option(
        None,
        "--measures-dir",
        help="Folder of measure YAML files (default: CARELOOP_MEASURES_DIR).",
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Record whether a cycle is quality improvement or research, and its determination."""
    kind, _, reference = determination.partition(":")
    if not kind.strip() or not reference.strip():
        raise ValidationFailed(
            "--determination is KIND:REFERENCE, e.g. qi_determination:QI-2024-07.",
            [ErrorDetail("--determination", "no KIND:REFERENCE", determination)],
        )
    settings = settings_from(data_dir)
    known = measure_ids(measures_dir or settings.measures_dir)
    with opened(settings) as registry:
        view = update_cycle(
            registry,
            operator(),
            cycle_id,
            {
                "purpose": purpose,
                "determination_kind": kind.strip(),
                "determination_ref": reference.strip(),
            },
            known_measures=known,
        )
    console.print(
        f"Cycle {view.id}: {view.purpose}, {view.determination['kind']} "
        f"{view.determination['reference']}.",
        markup=False,
    )
