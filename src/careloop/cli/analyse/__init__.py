"""`careloop analyse …`: statistical analyses of CSV files from the command line.

Each analysis family keeps its commands in its own module of this package
(``its``, ``spc``, ``risk_qual``, ``evaluation``) with a ``register(app)``
function; the list below wires them in, in the order ``--help`` shows them.
"""

from __future__ import annotations

import typer

from careloop.cli.analyse import evaluation, its, risk_qual, spc

analyse_app = typer.Typer(
    help="Analyse a CSV file: SPC charts, time series, evaluation designs.",
    no_args_is_help=True,
)

# One entry per analysis family; each module adds its commands to analyse_app.
for _family in (its, spc, risk_qual, evaluation):
    _family.register(analyse_app)

__all__ = ["analyse_app"]
