"""The `careloop` command.

Every command is a thin wrapper: it parses options, builds the settings,
calls one domain function and prints the result. A :class:`CareloopError`
becomes ``Error: …`` on standard error and exit status 2; a traceback is
shown only with ``--debug``.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from careloop.cli import (
    admin,
    alerts,
    audit,
    capture,
    community,
    fhir,
    knowledge,
    measures,
    patients,
    proms,
    report,
    serve,
    warehouse,
)
from careloop.cli.analyse import analyse_app
from careloop.cli.output import err_console
from careloop.core.errors import CareloopError

ERROR_EXIT_STATUS = 2


class CareloopGroup(TyperGroup):
    """The top-level command group: turns careloop errors into `Error: …` and a status."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except CareloopError as exc:
            if ctx.meta.get("careloop_debug"):
                raise
            err_console.print(f"Error: {exc}", markup=False, highlight=False, soft_wrap=True)
            ctx.exit(ERROR_EXIT_STATUS)


app = typer.Typer(
    name="careloop",
    help="careloop: a learning health system platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=CareloopGroup,
)
admin.register(app)
audit.register(app)
serve.register(app)
warehouse.register(app)
capture.register(app)
knowledge.register(app)
community.register(app)
fhir.register(app)
measures.register(app)
patients.register(app)
proms.register(app)
report.register(app)
alerts.register(app)
app.add_typer(analyse_app, name="analyse")


@app.callback()
def _main(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    ctx.meta["careloop_debug"] = debug


def run() -> None:
    """Entry point of the `careloop` console script."""
    app()
