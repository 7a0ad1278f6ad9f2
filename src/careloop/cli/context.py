"""What every CLI command needs: the settings, the registry and the operator."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from careloop.core.content import activate
from careloop.core.errors import InputError
from careloop.core.settings import Settings, load_settings
from careloop.store.database import Registry
from careloop.trust.installation import open_registry
from careloop.trust.principal import Principal

DataDirOption = typer.Option(
    None, "--data-dir", help="Data directory (default: CARELOOP_DATA_DIR or ./careloop-data)."
)


def settings_from(data_dir: Path | None) -> Settings:
    settings = load_settings(data_dir=data_dir)
    activate(settings.content)  # the content packages the commands work with
    return settings


def operator() -> Principal:
    """The person at this terminal, who controls the data directory."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "operator"
    return Principal.operator(name)


@contextmanager
def opened(settings: Settings) -> Iterator[Registry]:
    registry = open_registry(settings, create=False)
    try:
        yield registry
    finally:
        registry.close()


def read_password(*, env: str, stdin: bool, prompt: str) -> str:
    """A password from standard input, an environment variable or a hidden prompt."""
    if stdin:
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise InputError("No password arrived on standard input.")
        return line
    if os.environ.get(env):
        return os.environ[env]
    if not sys.stdin.isatty():
        raise InputError(
            f"No password given: pipe it with --password-stdin or set {env}. "
            "careloop never uses a default password."
        )
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return value
