"""One spelling of --mode in help and docs (all-or-nothing, row-level); both read everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from careloop.capture import example_file
from careloop.cli.main import app
from careloop.cli.modes import import_mode
from careloop.core.errors import InputError
from tests.capture.registry_helpers import VISIT, records_csv, visit_rows
from tests.foundation import build_installation, make_settings

FHIR_SMALL = Path(__file__).resolve().parents[1] / "data" / "fhir_small"


@pytest.mark.parametrize(
    ("given", "mode"),
    [
        ("all-or-nothing", "all-or-nothing"),
        ("all_or_nothing", "all-or-nothing"),
        ("Row-Level", "row-level"),
        ("row_level", "row-level"),
    ],
)
def test_either_spelling_of_a_mode_is_read(given, mode):
    assert import_mode(given) == mode


def test_an_unknown_mode_names_both():
    with pytest.raises(InputError, match="all-or-nothing or row-level, not 'rows'"):
        import_mode("rows")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    inst = build_installation(make_settings(tmp_path_factory.mktemp("modes"), None),
                              with_users=False)  # fmt: skip
    inst.registry.close()
    return ["--data-dir", str(inst.settings.data_dir)]


def _run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def test_both_commands_take_both_spellings_and_document_the_hyphenated_one(data_dir, tmp_path):
    forms = tmp_path / "ibd.yaml"
    forms.write_bytes(example_file("yaml"))
    assert _run("forms", "import", str(forms), *data_dir).exit_code == 0
    visits = tmp_path / "visits.csv"
    visits.write_bytes(records_csv(VISIT, visit_rows(4, prefix="MODE", patients=2)))
    for spelling in ("row_level", "row-level"):
        result = _run("records", "import", VISIT, str(visits), "--site", "A",
                      "--mode", spelling, *data_dir)  # fmt: skip
        assert result.exit_code == 0, result.output
    for spelling in ("all_or_nothing", "all-or-nothing", "row-level"):
        result = _run("fhir", "import", str(FHIR_SMALL), "--site", "A", "--mode", spelling,
                      "--json", *data_dir)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["site"] == "A"
    for command in (("records", "import"), ("fhir", "import")):
        shown = _run(*command, "--help")
        assert "all-or-nothing" in shown.output and "all_or_nothing" not in shown.output
