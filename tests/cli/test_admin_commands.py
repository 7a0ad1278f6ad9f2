"""The CLI runs an installation end to end: init, sites, users, tokens, audit."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from careloop.cli.main import app

PASSWORD = "a long enough password"


def _run(runner, *args, input=None):
    return runner.invoke(app, list(args), input=input)


def test_an_operator_sets_up_an_installation_from_the_command_line(tmp_path):
    runner = CliRunner()
    d = ["--data-dir", str(tmp_path / "data")]
    r = _run(
        runner,
        "init",
        *d,
        "--admin-email",
        "Admin@Example.org",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert r.exit_code == 0, r.output
    assert "First admin: admin@example.org" in r.output
    assert "An admin already exists" in _run(runner, "init", *d).output
    r = _run(
        runner,
        "site",
        "add",
        "rch",
        "--name",
        "Royal Children's",
        "--country",
        "au",
        "--time-zone",
        "Australia/Melbourne",
        *d,
    )
    assert r.exit_code == 0, r.output
    assert "RCH" in _run(runner, "site", "list", *d).output
    r = _run(
        runner,
        "user",
        "add",
        "nurse@example.org",
        "--role",
        "clinician@RCH",
        "--password-stdin",
        *d,
        input=PASSWORD + "\n",
    )
    assert r.exit_code == 0, r.output
    r = _run(runner, "user", "grant", "nurse@example.org", "data_entry@RCH", *d)
    assert r.exit_code == 0, r.output
    listing = _run(runner, "user", "list", *d).output
    assert "clinician@RCH" in listing and "data_entry@RCH" in listing
    r = _run(runner, "token", "create", "--user", "nurse@example.org", "--name", "export", *d)
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[-1]
    assert token.startswith("cl_")
    assert _run(runner, "token", "revoke", "1", *d).exit_code == 0
    assert _run(runner, "user", "disable", "nurse@example.org", *d).exit_code == 0
    report = _run(runner, "audit", "report", "--format", "json", "--action", "privilege_change", *d)
    entries = json.loads(report.output)
    assert {e["details"] for e in entries} >= {'{"granted":"clinician","user":"nurse@example.org"}'}
    verify = _run(runner, "audit", "verify", *d)
    assert verify.exit_code == 0 and "intact" in verify.output
    head = _run(runner, "audit", "head", *d).output.strip()
    assert _run(runner, "audit", "verify", "--expect-head", head, *d).exit_code == 0


def test_cli_errors_print_one_line_and_exit_non_zero(tmp_path):
    runner = CliRunner()
    d = ["--data-dir", str(tmp_path / "data")]
    _run(
        runner,
        "init",
        *d,
        "--admin-email",
        "a@example.org",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    r = _run(
        runner,
        "site",
        "add",
        "X",
        "--name",
        "X",
        "--country",
        "Britain",
        "--time-zone",
        "Europe/London",
        *d,
    )
    assert r.exit_code == 2
    assert r.output.startswith("Error: The site was not added.")
    assert "country" in r.output and "Traceback" not in r.output
    r = _run(
        runner,
        "user",
        "add",
        "x@example.org",
        "--role",
        "clinician@NOPE",
        "--password-stdin",
        *d,
        input=PASSWORD + "\n",
    )
    assert r.exit_code == 2 and "There is no site with code 'NOPE'" in r.output


def test_the_policy_table_prints(tmp_path):
    r = _run(CliRunner(), "policy", "show")
    assert r.exit_code == 0 and "| `patient.read` |" in r.output


def test_site_add_says_which_countries_and_time_zones_are_valid(tmp_path):
    runner = CliRunner()
    d = ["--data-dir", str(tmp_path / "data")]
    r = _run(runner, "init", *d, "--admin-email", "a@example.org", "--password-stdin",
             input=PASSWORD + "\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    missing = _run(runner, "site", "add", "RCH", "--name", "Royal", *d)
    assert missing.exit_code == 2 and missing.output.startswith("Error: careloop site add RCH")
    assert "--country: the ISO 3166-1 two-letter country code, e.g. GB" in missing.output
    assert "--time-zone: an IANA time zone name (Area/Location), e.g. Europe/London" in (
        missing.output
    )
    only_zone = _run(runner, "site", "add", "RCH", "--name", "Royal", "--country", "AU", *d)
    assert "--time-zone" in only_zone.output and "--country:" not in only_zone.output
    wrong = _run(runner, "site", "add", "RCH", "--name", "Royal", "--country", "UK",
                 "--time-zone", "Melbourne", *d)  # fmt: skip
    assert wrong.exit_code != 0
    assert "did you mean GB" in wrong.output and "did you mean Australia/Melbourne?" in wrong.output
    assert "RCH" not in _run(runner, "site", "list", *d).output
