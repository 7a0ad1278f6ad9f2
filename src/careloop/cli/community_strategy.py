"""`careloop community aims|nasss|maturity` and `careloop cycle tool|design`.

`careloop community toolkit …` is :mod:`careloop.cli.community_toolkit`.

Thin commands over ``careloop.community``. The person at the server's
command line acts as the operator, who is no member: ratings (NASSS,
maturity) are recorded for a named member with ``--as EMAIL``, as a
facilitator records a workshop's ratings; the audit trail keeps both names.
Without ratings, ``nasss`` and ``maturity`` show the community's profile.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from careloop.cli.community_toolkit import toolkit_app
from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console, print_json, print_rows
from careloop.community import (
    AimInput,
    list_aims,
    maturity_profile,
    measure_improvements,
    nasss_profile_of,
    record_design,
    record_maturity,
    record_nasss,
    set_aim,
    use_tool,
)
from careloop.core.errors import ErrorDetail, InputError, ValidationFailed

FormatOption = typer.Option("table", "--format", help="table or json.")
MeasuresDirOption = typer.Option(
    None, "--measures-dir", help="Folder of measure YAML files (default: CARELOOP_MEASURES_DIR)."
)


def _fmt(value: str) -> str:
    if value not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {value!r}.")
    return value


def _pairs(items: list[str], option: str) -> dict[str, tuple[str, str]]:
    """``KEY=VALUE[:note]`` options as key → (value, note)."""
    parsed: dict[str, tuple[str, str]] = {}
    for i, item in enumerate(items):
        key, sep, rest = item.partition("=")
        if not sep:
            raise ValidationFailed(
                f"Give each {option} as DOMAIN=VALUE[:note].",
                [ErrorDetail(f"{option}[{i}]", "no '='", item)],
            )
        value, _, note = rest.partition(":")
        parsed[key.strip()] = (value.strip(), note.strip())
    return parsed


def aims(
    community_id: int = typer.Argument(...),
    set_from: Path | None = typer.Option(
        None, "--set", help="A JSON file with the aim (what, how_much, by_when, drivers, measures)."
    ),
    aim_id: int | None = typer.Option(None, "--aim", help="With --set: replace this aim."),
    measures_dir: Path | None = MeasuresDirOption,
    fmt: str = FormatOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """The community's aims; with --set, record (or replace) one from a JSON file."""
    settings = settings_from(data_dir)
    improvements = measure_improvements(measures_dir or settings.measures_dir)
    with opened(settings) as registry:
        if set_from is not None:
            try:
                data = AimInput.from_dict(json.loads(set_from.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError, AttributeError) as exc:
                raise InputError(f"--set {set_from}: not a readable JSON object ({exc}).") from None
            made = set_aim(
                registry, operator(), community_id, data, improvements=improvements, aim_id=aim_id
            )
            console.print(f"Aim {made.id} of community {community_id} recorded.")
            return
        found = list_aims(registry, operator(), community_id, improvements=improvements)
    if _fmt(fmt) == "json":
        print_json([asdict(a) for a in found])
        return
    print_rows(
        ["id", "what", "how much", "by when", "measures", "cycles"],
        [(a.id, a.what, a.how_much, a.by_when, len(a.measures), len(a.cycles)) for a in found],
    )


def nasss(
    community_id: int = typer.Argument(...),
    subject: str | None = typer.Argument(
        None, help="What is assessed (a knowledge object identifier)."
    ),
    as_email: str | None = typer.Option(None, "--as", help="The member whose ratings these are."),
    ratings: list[str] = typer.Option(
        [], "--rate", help="DOMAIN=simple|complicated|complex[:note] (all seven domains)."
    ),
    fmt: str = FormatOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Record a member's NASSS ratings of a change (--as, --rate); without --rate, the profile."""
    with opened(settings_from(data_dir)) as registry:
        if ratings:
            if not (subject and as_email):
                raise InputError("Recording NASSS ratings needs SUBJECT and --as EMAIL.")
            done = record_nasss(
                registry, operator(), community_id, subject=subject,
                ratings=_pairs(ratings, "--rate"), on_behalf_of=as_email,
            )  # fmt: skip
            console.print(f"NASSS assessment {done.id} of {done.subject} by {done.assessed_by}.")
            return
        rounds = nasss_profile_of(registry, operator(), community_id, subject=subject)
    if _fmt(fmt) == "json":
        print_json([asdict(r) for r in rounds])
        return
    for r in rounds:
        print_rows(
            ["domain", "simple", "complicated", "complex", "median", "spread", "disagreement"],
            [
                (d.domain, *d.counts.values(), d.median, d.spread, "yes" if d.disagreement else "")
                for d in r.domains
            ],
            title=f"{r.subject}, {r.round} ({len(r.raters)} members)",
        )


def maturity(
    community_id: int = typer.Argument(...),
    round_name: str | None = typer.Option(None, "--round", help="The round, e.g. 2024-06."),
    as_email: str | None = typer.Option(None, "--as", help="The member whose ratings these are."),
    ratings: list[str] = typer.Option(
        [], "--rate", help="DOMAIN=1..5[:note] (Lannon's six domains; enablers optional)."
    ),
    fmt: str = FormatOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Record a member's maturity ratings (--round, --as, --rate); without --rate, the profile."""
    with opened(settings_from(data_dir)) as registry:
        if ratings:
            if not (round_name and as_email):
                raise InputError("Recording maturity ratings needs --round and --as EMAIL.")
            levels: dict[str, tuple[int, str]] = {}
            for domain, (value, note) in _pairs(ratings, "--rate").items():
                if not value.isdigit():
                    raise ValidationFailed(
                        "A level is a whole number from 1 to 5.",
                        [ErrorDetail(f"ratings.{domain}", "not a number", value)],
                    )
                levels[domain] = (int(value), note)
            done = record_maturity(
                registry, operator(), community_id, round_name=round_name, ratings=levels,
                on_behalf_of=as_email,
            )  # fmt: skip
            console.print(f"Maturity ratings of {done.rated_by} in round {done.round} recorded.")
            return
        found = maturity_profile(registry, operator(), community_id)
    if _fmt(fmt) == "json":
        print_json(asdict(found))
        return
    for r in found.rounds:
        print_rows(
            ["domain", "members", "evidence", "score", "change"],
            [
                (d.label, d.mean, d.evidence.level if d.evidence else "", d.score,
                 found.change.get(d.domain) if r is found.rounds[-1] else "")
                for d in r.domains
            ],
            title=f"Round {r.round} ({len(r.raters)} members)",
        )  # fmt: skip
    for step in found.next_steps:
        console.print(f"Next, {step['label']}: {step['next_step']}")


def cycle_tool(
    cycle_id: int = typer.Argument(...),
    tool: str = typer.Argument(..., help="The toolkit item's key."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Record that a cycle used a toolkit item."""
    with opened(settings_from(data_dir)) as registry:
        used = use_tool(registry, operator(), cycle_id, tool)
    console.print(f"Cycle {cycle_id} used: {', '.join(used)}.")


def cycle_design(
    cycle_id: int = typer.Argument(...),
    behaviour: str = typer.Option(..., "--behaviour", help="Who should do what differently."),
    com_b: list[str] = typer.Option(..., "--com-b", help="A COM-B component (repeat)."),
    functions: list[str] = typer.Option([], "--function", help="An intervention function."),
    policies: list[str] = typer.Option([], "--policy", help="A policy category."),
    notes: str = typer.Option("", "--notes"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Record a cycle's behaviour-change design (COM-B, behaviour change wheel)."""
    with opened(settings_from(data_dir)) as registry:
        done = record_design(
            registry, operator(), cycle_id, behaviour=behaviour, com_b=com_b,
            functions=functions, policies=policies, notes=notes,
        )  # fmt: skip
    console.print(f"Cycle {done.cycle_id}: design targets {', '.join(done.com_b)}.")


def register(community_app: typer.Typer, cycle_app: typer.Typer) -> None:
    """Add these commands to `careloop community` and `careloop cycle`."""
    for name, command in (
        ("aims", aims),
        ("nasss", nasss),
        ("maturity", maturity),
    ):
        community_app.command(name)(command)
    community_app.add_typer(toolkit_app, name="toolkit")
    cycle_app.command("tool")(cycle_tool)
    cycle_app.command("design")(cycle_design)
