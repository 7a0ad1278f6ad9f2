"""The docs are a contract: settings, error codes, the policy and CLI commands are documented."""

from __future__ import annotations

from pathlib import Path

from careloop.core.errors import all_error_types
from careloop.core.settings import Settings
from careloop.trust.policy import policy_markdown

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_every_setting_is_documented_with_its_environment_variable():
    text = (DOCS / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"CARELOOP_{name.upper()}" in text, name


def test_every_error_code_is_documented():
    text = (DOCS / "errors.md").read_text()
    for cls in all_error_types():
        assert f"`{cls.code}`" in text, cls.code


def test_the_security_page_shows_the_current_policy_table():
    assert policy_markdown() in (DOCS / "security.md").read_text()


def test_the_readme_quickstart_is_the_two_commands():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quickstart", 1)[1].split("##", 1)[0]
    commands = [line.strip() for line in quick.splitlines() if line.strip().startswith("make ")]
    assert commands == ["make demo", "make test"]


def test_every_top_level_cli_command_is_in_the_readme():
    from careloop.cli.main import app

    text = (ROOT / "README.md").read_text()
    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    for name in names:
        assert f"careloop {name}" in text, name


def test_the_import_graph_page_shows_the_code_as_it_is():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
