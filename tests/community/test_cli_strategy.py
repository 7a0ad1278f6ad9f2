"""`careloop community aims|nasss|maturity|toolkit` and `careloop cycle tool|design`.

The toolkit's own commands (add, rate, link, bad input) are tests/community/test_cli_toolkit.py."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from careloop.cli.main import app
from tests.community.helpers import make_community
from tests.foundation import build_installation, make_settings

runner = CliRunner()
DOMAINS = (
    "condition",
    "technology",
    "value_proposition",
    "adopter_system",
    "organisation",
    "wider_system",
    "embedding_and_adaptation",
)
SIX = (
    "leadership",
    "governance_and_management",
    "quality_improvement",
    "community_building_and_engagement",
    "data_and_analytics",
    "research",
)


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_strategy_nasss_maturity_and_toolkit_at_the_command_line(tmp_path):
    inst = build_installation(make_settings(tmp_path, None))
    try:
        cid = str(make_community(inst).community.id)
    finally:
        inst.registry.close()
    e, data = inst.emails, ["--data-dir", str(inst.settings.data_dir)]

    aim = tmp_path / "aim.json"
    aim.write_text(json.dumps({
        "what": "More children in remission", "how_much": "60% to 75%", "by_when": "2026-12-31",
        "measures": [{"measure_id": "remission-prevalence", "baseline": 0.6, "target": 0.75}],
    }))  # fmt: skip
    run("community", "aims", cid, "--set", str(aim), *data)
    aims = json.loads(run("community", "aims", cid, "--format", "json", *data))
    assert aims[0]["measures"][0]["improvement"] == "up"

    for key, condition in (("carer@B", "simple"), ("patient@A", "complex"), ("analyst", "complex")):
        rates = [f"{d}=complicated" for d in DOMAINS if d != "condition"]
        run("community", "nasss", cid, "cli-ko", "--as", e[key],
            "--rate", f"condition={condition}:as {key} sees it",
            *[x for r in rates for x in ("--rate", r)], *data)  # fmt: skip
    profile = json.loads(run("community", "nasss", cid, "--format", "json", *data))
    condition = profile[0]["domains"][0]
    assert condition["counts"] == {"simple": 1, "complicated": 0, "complex": 2}
    assert condition["disagreement"] is True and len(condition["notes"]) == 3
    assert "cli-ko" in run("community", "nasss", cid, *data)

    rates = [x for d in SIX for x in ("--rate", f"{d}=3")]
    run("community", "maturity", cid, "--round", "2024-06", "--as", e["carer@B"], *rates, *data)
    matured = json.loads(run("community", "maturity", cid, "--format", "json", *data))
    assert matured["rounds"][0]["raters"] == [e["carer@B"]]
    bad = runner.invoke(
        app, ["community", "maturity", cid, "--round", "r", "--as", e["carer@B"],
              *rates, "--rate", "leadership=7", *data],
    )  # fmt: skip
    assert bad.exit_code == 2 and "ratings.leadership" in bad.output
    outsider = runner.invoke(
        app, ["community", "maturity", cid, "--round", "r", "--as", e["site_lead@B"], *rates, *data]
    )
    assert outsider.exit_code == 2 and "not a member" in outsider.output
    again = json.loads(run("community", "maturity", cid, "--format", "json", *data))
    assert again == matured  # the refused ratings changed nothing

    tools = json.loads(run("community", "toolkit", "list", cid, "--format", "json", *data))
    assert len(tools) == 8
    assert "0 starter items added" in run("community", "toolkit", "starter", cid, *data)
    run(
        "cycle", "add", "--community", cid, "--title", "Huddles", "--kind", "process",
        "--start", "2024-02-01", "--measure", "remission-prevalence:outcome",
        "--determination", "qi_determination:QI-1", *data,
    )  # fmt: skip
    cycle = str(json.loads(run("cycle", "list", "--format", "json", *data))[0]["id"])
    run("cycle", "tool", cycle, "pdsa-template", *data)
    run("cycle", "design", cycle, "--behaviour", "Huddle daily", "--com-b", "opportunity_social",
        "--function", "modelling", *data)  # fmt: skip
    used = json.loads(
        run("community", "toolkit", "list", cid, "--stage", "act", "--format", "json", *data)
    )
    assert {t["key"]: t["used_by"] for t in used}["pdsa-template"] == [int(cycle)]
