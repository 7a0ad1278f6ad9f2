"""A knowledge object that randomises card variants is deployed only under a cycle with its
determination; the consent purpose of the test follows from the cycle."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from careloop.cli.main import app
from careloop.core.errors import ValidationFailed
from careloop.knowledge import activate, add_version, approve, submit
from careloop.knowledge.library import deployments, list_versions
from tests.community.helpers import audit_rows
from tests.foundation import build_installation, make_settings
from tests.practice.cds_support import ibd_package, trial_cycle

runner = CliRunner()


def approved(inst, identifier: str) -> str:
    package = ibd_package(identifier)
    assert package.trials(), "the IBD knowledge object carries a card-variant test"
    ref = f"{identifier}@{package.version}"
    op = inst.operator
    add_version(inst.registry, op, package, reason="test")
    submit(inst.registry, op, ref, reason="test")
    approve(inst.registry, op, ref, reason="test")
    return ref


def status_of(inst, identifier: str) -> str:
    (version,) = list_versions(inst.registry, inst.operator, search=identifier)
    return version.status


def test_a_randomised_test_without_a_cycle_or_determination_is_refused_and_changes_nothing(
    installation,
):
    inst = installation
    ref = approved(inst, "trial-refused")
    bare = trial_cycle(inst, determination=None)
    audited = len(audit_rows(inst, "knowledge.activate"))
    for cycle_id, words in (
        (None, "Name that cycle"),
        (bare, "no determination on record"),
        (999_999, "no learning cycle 999999"),
    ):
        with pytest.raises(ValidationFailed, match=words) as refused:
            activate(inst.registry, inst.operator, ref, reason="go", cycle_id=cycle_id)
        if cycle_id != 999_999:
            assert "careloop cycle determine" in refused.value.details[0].message
    assert status_of(inst, "trial-refused") == "approved"
    assert deployments(inst.registry, identifier="trial-refused") == []
    outcomes = [o for _, o, _ in audit_rows(inst, "knowledge.activate")[audited:]]
    assert outcomes == ["failure"] * 3


def test_the_consent_purpose_follows_from_the_cycle_quality_improvement_or_research(
    installation,
):
    inst = installation
    qi = trial_cycle(inst)
    research = trial_cycle(inst, purpose="research", determination=("ethics_approval", "REC-7"))
    for identifier, cycle_id, purpose in (
        ("trial-qi", qi, "quality_improvement"),
        ("trial-research", research, "research"),
    ):
        ref = approved(inst, identifier)
        dep = activate(inst.registry, inst.operator, ref, reason="go", cycle_id=cycle_id)
        assert (dep.cycle_id, dep.consent_purpose) == (cycle_id, purpose)
        assert deployments(inst.registry, identifier=identifier)[-1].consent_purpose == purpose
    deployed = [d for _, o, d in audit_rows(inst, "knowledge.deploy") if d.get("cycle") == research]
    assert deployed[-1]["determination"] == "ethics_approval:REC-7"
    assert deployed[-1]["consent_purpose"] == "research"


def test_at_the_command_line_the_refusal_says_how_to_fix_it_and_the_fix_works(tmp_path):
    inst = build_installation(make_settings(tmp_path, None))
    try:
        ref = approved(inst, "trial-cli")
        cycle_id = trial_cycle(inst, determination=None)
    finally:
        inst.registry.close()
    data = ["--data-dir", str(inst.settings.data_dir)]
    go = ["knowledge", "activate", ref, "--reason", "pilot", "--cycle", str(cycle_id), *data]
    refused = runner.invoke(app, go)
    assert refused.exit_code != 0
    assert f"careloop cycle determine {cycle_id}" in refused.output
    fixed = runner.invoke(
        app,
        ["cycle", "determine", str(cycle_id), "--purpose", "qi",
         "--determination", "qi_determination:QI-9", *data],
    )  # fmt: skip
    assert fixed.exit_code == 0, fixed.output
    done = runner.invoke(app, go)
    assert done.exit_code == 0, done.output
    assert "quality improvement" in done.output
    shown = json.loads(
        runner.invoke(app, ["cycle", "show", str(cycle_id), "--format", "json", *data]).output
    )
    assert shown["determination"] == {"kind": "qi_determination", "reference": "QI-9"}
