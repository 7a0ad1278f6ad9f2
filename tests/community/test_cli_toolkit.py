"""`careloop community toolkit list|add|rate|link|starter ID …` at the command line.

On a real installation (tests/foundation.py) with the small community of
tests/community/helpers.py, and a second community whose cycle the first
may not link to. The operator runs the commands; ratings are recorded for a
member with ``--as``; refusals change nothing and are audited.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from careloop.cli.main import app
from careloop.community import CycleInput, CycleMeasureInput, add_cycle
from careloop.trust.installation import open_registry
from tests.community.helpers import KNOWN_MEASURES, audit_rows, make_community, principal
from tests.foundation import Installation, build_installation, make_settings

runner = CliRunner()


def _setup(tmp_path: Path) -> tuple[Installation, int, int, int]:
    """The installation, the community, its cycle and another community's cycle."""
    inst = build_installation(make_settings(tmp_path, None))
    try:
        ids = []
        for _ in range(2):
            cid = make_community(inst).community.id
            cycle = add_cycle(
                inst.registry,
                principal(inst, "clinician@A"),
                cid,
                CycleInput(
                    title=f"Huddles in {cid}",
                    kind="process",
                    do_start=date(2024, 2, 1),
                    determination_kind="qi_determination",
                    determination_ref="QI-1",
                    measures=(CycleMeasureInput("remission-prevalence"),),
                ),
                known_measures=KNOWN_MEASURES,
            )
            ids += [cid, cycle.id]
    finally:
        inst.registry.close()
    return inst, ids[0], ids[1], ids[3]


def _run(inst: Installation, *args: object) -> str:
    result = runner.invoke(
        app, [str(a) for a in args] + ["--data-dir", str(inst.settings.data_dir)]
    )
    assert result.exit_code == 0, result.output
    return result.output


def _refused(inst: Installation, *args: object) -> str:
    result = runner.invoke(
        app, [str(a) for a in args] + ["--data-dir", str(inst.settings.data_dir)]
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error:"), result.output
    return result.output


def _tools(inst: Installation, cid: int, *options: str) -> dict[str, dict[str, object]]:
    listed = json.loads(
        _run(inst, "community", "toolkit", "list", cid, "--format", "json", *options)
    )
    return {t["key"]: t for t in listed}


def test_an_item_is_added_rated_by_members_and_linked_to_a_cycle(tmp_path):
    inst, cid, cycle, _ = _setup(tmp_path)
    body = tmp_path / "huddle.md"
    body.write_text("Ten minutes at 8:30: yesterday's flares, today's plan.\n", encoding="utf-8")
    added = _run(
        inst, "community", "toolkit", "add", cid, "--key", "daily-huddle",
        "--title", "Daily huddle card", "--summary", "How the clinic team huddles each morning.",
        "--stage", "do", "--stage", "study", "--body-file", body,
    )  # fmt: skip
    assert "Added daily-huddle (tool)" in added
    item = _tools(inst, cid)["daily-huddle"]
    assert (item["stages"], item["source"], item["kind"]) == (["do", "study"], "community", "tool")
    assert item["body"] == "Ten minutes at 8:30: yesterday's flares, today's plan."

    e = inst.emails
    _run(
        inst,
        "community",
        "toolkit",
        "rate",
        cid,
        "daily-huddle",
        "--stars",
        4,
        "--as",
        e["carer@B"],
    )
    _run(
        inst,
        "community",
        "toolkit",
        "rate",
        cid,
        "daily-huddle",
        "--stars",
        2,
        "--as",
        e["patient@A"],
    )
    # Rating again replaces the member's rating: (5 + 2) / 2 = 3.5 from two ratings.
    shown = _run(
        inst, "community", "toolkit", "rate", cid, "daily-huddle", "--stars", 5,
        "--as", e["carer@B"], "--comment", "We use it daily",
    )  # fmt: skip
    assert "daily-huddle: 3.5 from 2 rating(s)." in shown
    rated = _tools(inst, cid)["daily-huddle"]
    assert (rated["ratings"], rated["mean_rating"]) == (2, 3.5)

    assert f"Cycle {cycle} used: daily-huddle." in _run(
        inst, "community", "toolkit", "link", cid, "daily-huddle", "--cycle", cycle
    )
    assert _tools(inst, cid, "--stage", "study")["daily-huddle"]["used_by"] == [cycle]
    assert "daily-huddle" not in _tools(inst, cid, "--stage", "plan")

    inst.registry = open_registry(inst.settings)
    try:
        rates = audit_rows(inst, "community.toolkit_rate")
        # The operator recorded the ratings; the audit trail names the member too.
        assert [(r[1], r[2]["rated_by"]) for r in rates] == [
            ("success", e["carer@B"]),
            ("success", e["patient@A"]),
            ("success", e["carer@B"]),
        ]
        assert [r[1] for r in audit_rows(inst, "community.toolkit_add")] == ["success"]
    finally:
        inst.registry.close()


def test_bad_toolkit_input_is_refused_clearly_changes_nothing_and_is_audited(tmp_path):
    inst, cid, _, elsewhere = _setup(tmp_path)
    e = inst.emails
    before = _tools(inst, cid)
    add = ["community", "toolkit", "add", cid, "--title", "T", "--summary", "S"]
    out = _refused(inst, *add, "--key", "a-card", "--stage", "someday")
    assert "nothing was added" in out and "stages[0]: Use one of plan, do, study" in out
    out = _refused(inst, *add, "--key", "pdsa-template", "--stage", "plan")
    assert "already has an item" in out
    out = _refused(inst, *add, "--key", "Bad Key!", "--stage", "plan", "--kind", "poster")
    assert "key: 2–80 lower-case letters" in out and "kind: tool or case_study" in out
    out = _refused(inst, *add, "--key", "a-card", "--stage", "plan", "--body", "x",
                   "--body-file", tmp_path / "none.md")  # fmt: skip
    assert "not both" in out
    rate = ["community", "toolkit", "rate", cid]
    out = _refused(inst, *rate, "pdsa-template", "--stars", 7, "--as", e["carer@B"])
    assert "1 to 5" in out and "stars" in out
    out = _refused(inst, *rate, "no-such-tool", "--stars", 3, "--as", e["carer@B"])
    assert "no item 'no-such-tool'" in out and "toolkit list" in out
    out = _refused(inst, *rate, "pdsa-template", "--stars", 3, "--as", e["site_lead@B"])
    assert "not a member" in out
    # A cycle of another community cannot use this community's toolkit.
    out = _refused(inst, "community", "toolkit", "link", cid, "pdsa-template", "--cycle", elsewhere)
    assert f"no learning cycle {elsewhere}" in out
    out = _refused(inst, "community", "toolkit", "list", cid, "--stage", "someday")
    assert "stage" in out
    out = _refused(inst, "community", "toolkit", "list", 9999)
    assert "9999" in out and "careloop community list" in out

    assert _tools(inst, cid) == before  # nothing was added, rated or linked
    inst.registry = open_registry(inst.settings)
    try:
        assert [r[1] for r in audit_rows(inst, "community.toolkit_add")] == ["failure"] * 3
        rates = [r[1] for r in audit_rows(inst, "community.toolkit_rate")]
        assert rates == ["failure", "not_found", "denied"]
        assert [r[1] for r in audit_rows(inst, "cycle.tool")] == ["not_found"]
    finally:
        inst.registry.close()
