"""The acceptance journey at the command line on a small installation (tests/foundation.py)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from careloop.cli.main import app
from careloop.knowledge import add_version, submit
from tests.foundation import build_installation, make_settings
from tests.knowledge.test_library import package

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_the_community_journey_at_the_command_line(tmp_path):
    inst = build_installation(make_settings(tmp_path, None))
    data = ["--data-dir", str(inst.settings.data_dir)]
    try:
        lead = inst.operator
        add_version(inst.registry, lead, package("cli-ko"), reason="draft")
        submit(inst.registry, lead, "cli-ko@1.0.0", reason="ready")
    finally:
        inst.registry.close()
    e = inst.emails
    run(
        "community", "create", "--name", "IBD network", "--purpose", "Remission for every child",
        "--problem", "Too many children on steroids", "--site", "A", "--site", "B",
        "--measure", "remission-prevalence", "--facilitator", e["clinician@A"],
        "--rule", "majority", "--patient-reviewer", *data,
    )  # fmt: skip
    for key, role in (("patient@A", "patient"), ("carer@B", "carer"), ("clinician@B", "clinician")):
        out = run("community", "invite", "1", e[key], "--role", role, *data)
        invitation = out.split()[1].rstrip(":")
        run("community", "join", invitation, "--as", e[key], *data)
    listed = json.loads(run("community", "list", "--format", "json", *data))
    assert [(c["name"], c["patients_and_carers"]) for c in listed] == [("IBD network", 2)]
    shown = json.loads(run("community", "show", "1", "--format", "json", *data))
    assert {m["email"]: m["roles"] for m in shown["members"]}[e["carer@B"]] == ["carer"]
    assert shown["charter"]["decision_rule"] == "majority"
    assert shown["charter"]["requires_patient_reviewer"] is True

    run(
        "cycle", "add", "--community", "1", "--title", "Change package", "--kind", "change_package",
        "--aim", "More remission", "--start", "2024-02-01", "--site", "A",
        "--measure", "remission-prevalence:outcome", "--measure", "steroid-exposure:balancing",
        "--determination", "qi_determination:QI-1", *data,
    )  # fmt: skip
    cycles = json.loads(run("cycle", "list", "--community", "1", "--format", "json", *data))
    assert [(c["title"], c["do"]["start"], c["do"]["sites"]) for c in cycles] == [
        ("Change package", "2024-02-01", ["A"])
    ]
    one = json.loads(run("cycle", "show", "1", "--format", "json", *data))
    # No measure results in this installation yet: the Study says why it is missing.
    assert one["study"] is None and "warehouse" in one["study_unavailable"]
    assert [(p["measure_id"], p["starts"]) for p in one["phases"]] == [
        ("remission-prevalence", "2024-02-01"),
        ("steroid-exposure", "2024-02-01"),
    ]
    run("cycle", "act", "1", "--decision", "adopt", "--rationale", "It worked", *data)
    assert json.loads(run("cycle", "show", "1", "--format", "json", *data))["act"]["decision"] == (
        "adopt"
    )

    run("community", "own", "1", "cli-ko", "--pilot-site", "A", *data)
    run("community", "propose", "1", "--kind", "knowledge_approval", "--title", "Approve",
        "--knowledge", "cli-ko@1.0.0", *data)  # fmt: skip
    for key in ("clinician@A", "carer@B", "clinician@B"):
        run("community", "vote", "1", "yes", "--as", e[key], *data)
    closed = json.loads(run("community", "close", "1", "--format", "json", *data))
    assert closed["status"] == "passed"
    ko = json.loads(run("knowledge", "show", "cli-ko@1.0.0", "--format", "json", *data))
    assert ko["version"]["status"] == "approved"
    assert ko["community_approval"]["community"] == "IBD network"
    assert ko["community_approval"]["proposal_id"] == 1


def test_bad_input_at_the_command_line_is_an_error_line_not_a_traceback(tmp_path):
    inst = build_installation(make_settings(tmp_path, None), with_users=False)
    inst.registry.close()
    data = ["--data-dir", str(inst.settings.data_dir)]
    run("community", "create", "--name", "N", "--purpose", "p", "--facilitator",
        "admin@example.org", *data)  # fmt: skip
    bad = runner.invoke(
        app,
        ["cycle", "add", "--community", "1", "--title", "t", "--start", "2024-03-01",
         "--end", "2024-02-01", "--measure", "nope", *data],
    )  # fmt: skip
    assert bad.exit_code == 2
    assert bad.output.startswith("Error: The cycle is not valid")
    assert "do_end" in bad.output and "measures[0]" in bad.output
    assert "Traceback" not in bad.output
    missing = runner.invoke(app, ["community", "vote", "9", "yes", "--as", "x@example.org", *data])
    assert missing.exit_code == 2 and "no proposal 9" in missing.output
