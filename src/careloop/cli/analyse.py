"""`careloop analyse …`: statistical analyses of CSV files from the command line.

Each analysis family keeps its commands in its own module
(``careloop.cli.analyse_<family>``) with a ``register(app)`` function; the
list below wires them in.
"""

from __future__ import annotations

import typer

analyse_app = typer.Typer(
    help="Analyse a CSV file: SPC charts, time series, evaluation designs.",
    no_args_is_help=True,
)

# One line per analysis family; each module adds its commands to analyse_app.
_FAMILIES: list[str] = ["its", "spc", "risk_qual", "evaluation"]


def _register_families() -> None:
    import importlib

    for name in _FAMILIES:
        module = importlib.import_module(f"careloop.cli.analyse_{name}")
        module.register(analyse_app)


_register_families()
