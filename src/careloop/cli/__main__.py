"""`python -m careloop.cli` runs the careloop command."""

from careloop.cli.main import run

run()
