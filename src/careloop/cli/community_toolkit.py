"""`careloop community toolkit list|add|rate|link|starter ID …`: a community's toolkit.

Thin commands over ``careloop.community.toolkit``, whose services check
membership and audit each change, read and refusal. The person at the
server's command line acts as the operator, who is no member: a member's
rating is recorded for them with ``--as EMAIL`` (as a facilitator records a
meeting's ratings), and the audit trail keeps both names.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.output import console, print_json, print_rows
from careloop.community import (
    ToolView,
    add_tool,
    list_toolkit,
    load_starter_toolkit,
    rate_tool,
    use_tool,
)
from careloop.core.errors import InputError

toolkit_app = typer.Typer(
    help="A community's toolkit: tools and case studies by stage, rated, linked to cycles."
)

CommunityArgument = typer.Argument(..., help="The community's id (`careloop community list`).")
ToolArgument = typer.Argument(
    ..., help="The toolkit item's key (`careloop community toolkit list ID`)."
)


def _fmt(value: str) -> str:
    if value not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {value!r}.")
    return value


def _print_tools(tools: list[ToolView]) -> None:
    print_rows(
        ["key", "kind", "title", "stages", "rating", "used by cycles"],
        [
            (t.key, t.kind, t.title, ", ".join(t.stages),
             f"{t.mean_rating} ({t.ratings})" if t.ratings else "", ", ".join(map(str, t.used_by)))
            for t in tools
        ],
    )  # fmt: skip


@toolkit_app.command("list")
def list_(
    community_id: int = CommunityArgument,
    stage: str | None = typer.Option(None, "--stage", help="Only items for this stage."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """The toolkit: each item with its stages, members' ratings and the cycles that used it."""
    with opened(settings_from(data_dir)) as registry:
        tools = list_toolkit(registry, operator(), community_id, stage=stage)
    if _fmt(fmt) == "json":
        print_json([asdict(t) for t in tools])
        return
    _print_tools(tools)


@toolkit_app.command("add")
def add(
    community_id: int = CommunityArgument,
    key: str = typer.Option(..., "--key", help="Its key: lower-case letters, digits, hyphens."),
    title: str = typer.Option(..., "--title"),
    summary: str = typer.Option(..., "--summary", help="What it is for, in a sentence."),
    stages: list[str] = typer.Option(
        ..., "--stage", help="A stage it supports (repeat): plan, do, study, act, capture, …"
    ),
    kind: str = typer.Option("tool", "--kind", help="tool or case_study."),
    body: str = typer.Option("", "--body", help="Its text (Markdown)."),
    body_file: Path | None = typer.Option(
        None, "--body-file", help="Read its text from this file instead."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Add a tool or case study to the community's toolkit."""
    if body_file is not None:
        if body:
            raise InputError("Give the text with --body or --body-file, not both.")
        try:
            body = body_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--body-file {body_file}: cannot read it ({exc}).") from None
    with opened(settings_from(data_dir)) as registry:
        made = add_tool(
            registry, operator(), community_id, key=key, kind=kind, title=title,
            stages=stages, summary=summary, body=body,
        )  # fmt: skip
    console.print(
        f"Added {made.key} ({made.kind}) to the toolkit of community {community_id}.",
        markup=False,
    )


@toolkit_app.command("rate")
def rate(
    community_id: int = CommunityArgument,
    tool: str = ToolArgument,
    stars: int = typer.Option(..., "--stars", help="1 to 5."),
    as_email: str = typer.Option(..., "--as", help="The member whose rating this is."),
    comment: str = typer.Option("", "--comment"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Record a member's rating of a toolkit item (rating again replaces theirs)."""
    with opened(settings_from(data_dir)) as registry:
        rated = rate_tool(
            registry, operator(), community_id, tool, stars=stars, comment=comment,
            on_behalf_of=as_email,
        )  # fmt: skip
    console.print(f"{rated.key}: {rated.mean_rating} from {rated.ratings} rating(s).", markup=False)


@toolkit_app.command("link")
def link(
    community_id: int = CommunityArgument,
    tool: str = ToolArgument,
    cycle_id: int = typer.Option(..., "--cycle", help="The cycle that used it."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Record that one of the community's cycles used a toolkit item."""
    with opened(settings_from(data_dir)) as registry:
        used = use_tool(registry, operator(), cycle_id, tool, community_id=community_id)
    console.print(f"Cycle {cycle_id} used: {', '.join(used)}.", markup=False)


@toolkit_app.command("starter")
def starter(community_id: int = CommunityArgument, data_dir: Path | None = DataDirOption) -> None:
    """Add the starter items the toolkit lacks (idempotent; edited items are kept)."""
    with opened(settings_from(data_dir)) as registry:
        added = load_starter_toolkit(registry, operator(), community_id)
    console.print(f"{len(added)} starter items added: {', '.join(added) or 'none'}.", markup=False)
