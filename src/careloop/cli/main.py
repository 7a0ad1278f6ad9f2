"""The `careloop` command.

Every command is a thin wrapper: it parses options, builds the settings,
calls one domain function and prints the result. A :class:`CareloopError`
becomes ``Error: …`` on standard error and a non-zero exit status; a
traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import sys

import typer

from careloop.cli import admin, audit, serve
from careloop.cli.analyse import analyse_app
from careloop.cli.output import err_console
from careloop.core.errors import CareloopError

app = typer.Typer(
    name="careloop",
    help="careloop: a learning health system platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
admin.register(app)
audit.register(app)
serve.register(app)
app.add_typer(analyse_app, name="analyse")

_debug = {"on": False}


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    _debug["on"] = debug


def run() -> None:
    """Entry point of the `careloop` console script."""
    try:
        app(standalone_mode=False)
    except CareloopError as exc:
        if _debug["on"]:
            raise
        err_console.print(f"Error: {exc}", markup=False, highlight=False)
        sys.exit(2)
    except typer.Abort:
        err_console.print("Aborted.")
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click's usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
