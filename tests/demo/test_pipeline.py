"""The main job: the whole learning cycle on the synthetic network recovers what was planted."""

from __future__ import annotations

import json

import pytest

from careloop.demo.pipeline import DEFAULT_SEED, prepare_demo_dir, run_demo
from careloop.measures import load_results
from careloop.trust.principal import Principal
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings
from tests.foundation import make_settings


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("demo"), None)
    return settings, run_demo(
        settings, Principal.operator("tester"), scale="small", seed=DEFAULT_SEED
    )


def test_every_planted_effect_lies_inside_its_confidence_interval_for_the_default_seed(demo):
    _settings, result = demo
    assert result.recoveries, "no effect was estimated"
    for r in result.recoveries:
        assert r.recovered, r.as_dict()
    summary = json.loads(result.summary.read_text())
    assert summary["all_recovered"] is True and summary["seed"] == DEFAULT_SEED
    assert {e["name"] for e in summary["planted_effects"]} == {r.name for r in result.recoveries}


def test_withdrawn_and_direct_care_only_patients_appear_nowhere_in_the_warehouse(demo):
    settings, _result = demo
    from careloop.demo.network import generate_network
    from careloop.trust.installation import open_registry
    from careloop.trust.patients import list_pseudonymised

    registry = open_registry(settings)
    everyone = list_pseudonymised(registry, Principal.operator("tester"), limit=100_000)
    registry.close()
    # Out: whoever does not agree to quality improvement (the young person who said no to
    # research only stays in).
    improvement = {"improvement_and_research", "improvement_only"}
    excluded = {p.pseudo_id for p in everyone if p.consent_state not in improvement}
    assert excluded
    with Warehouse.from_settings(settings, read_only=True) as wh, quiet_engine_warnings():
        in_warehouse = set(wh.table("person").person_source_value.execute())
        sql_ids = set(wh.ibis.sql("SELECT DISTINCT person_id FROM measurement").execute().person_id)
        person_ids = set(wh.table("person").person_id.execute())
    assert not excluded & in_warehouse
    assert sql_ids <= person_ids
    network = generate_network("small", DEFAULT_SEED)
    assert len(in_warehouse) == (network.patients.consent_state == "improvement_and_research").sum()


def test_decision_support_was_served_over_http_and_its_feedback_measured(demo):
    _settings, result = demo
    acceptance = next(r for r in result.recoveries if r.name == "Decision-support cards accepted")
    assert acceptance.scale == "proportion" and "CDS Hooks feedback on" in acceptance.method
    shown = int(acceptance.method.split(" on ")[1].split()[0])
    assert shown >= 60  # one card per simulated visit at the deployed sites


def test_a_card_is_traced_back_through_the_analysis_and_the_measure_run_to_the_registry(demo):
    _settings, result = demo
    traced = result.traced_card
    assert traced is not None and traced.card["shown"] is True
    assert [e.activity for e in traced.chain] == [
        "knowledge.deploy",
        "knowledge.version",
        "analysis.its",
        "measures.run",
        "warehouse.refresh",
    ]
    summary = json.loads(result.summary.read_text())
    assert summary["traced_card"]["card"]["uuid"] == traced.card["uuid"]
    assert summary["traced_card"]["files"] == ["registry snapshot"]


def test_the_report_and_its_charts_are_written(demo):
    _settings, result = demo
    page = result.report.read_text()
    assert "Learning report" in page and "What changed, and the measured effect" in page
    for name in ("network_remission.png", "change_its.png", "excursion.png", "knowledge_its.png"):
        assert (result.out_dir / name).stat().st_size > 10_000
        assert name in page
    # The community's report beside it: its cycles with their Study charts, nothing loaded.
    assert result.community_report == result.out_dir / "community-report.html"
    community = result.community_report.read_text()
    assert "community-report.html" in page
    assert "IBD network learning community" in community and "<script" not in community
    assert community.count("<svg") >= 2 and 'data-phase-start="' in community


def test_the_demo_data_directory_and_its_databases_are_private(demo):
    # Issue 14: the demo left the data directory 755 and the databases 644.
    import stat

    settings, _result = demo
    data = settings.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("registry.sqlite3", "warehouse.duckdb", "secret_key", "demo-credentials.txt"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name


def test_the_demo_refuses_to_wipe_a_directory_that_is_not_a_demo(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    from careloop.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        prepare_demo_dir(tmp_path)
    assert (tmp_path / "precious.txt").exists()


def test_the_knowledge_pages_show_the_deployment_its_impact_and_a_sites_feedback(demo):
    settings, _result = demo
    from fastapi.testclient import TestClient

    from careloop.demo.network import generate_network
    from careloop.trust import identity
    from careloop.trust.installation import open_registry
    from careloop.web.app import create_app

    truth = generate_network("small", DEFAULT_SEED).truth
    lead_site = truth.ko_sites[0]
    registry = open_registry(settings)
    token = identity.create_token(
        registry,
        Principal.operator("tester"),
        name="t",
        for_user=f"clinician.{lead_site.lower()}@demo.careloop.invalid",
    ).token
    registry.close()
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as client:
        library = client.get("/knowledge", headers=headers)
        assert library.status_code == 200 and "ibd-steroid-review" in library.text
        assert truth.ko_date.isoformat() in library.text
        impact = client.get(
            "/knowledge/ibd-steroid-review/impact?measure=steroid-at-visit", headers=headers
        )
        assert impact.status_code == 200, impact.text[:500]
        # Inside the app's layout, under its strict CSP: the charts are SVG, no script.
        csp = impact.headers["content-security-policy"]
        assert "<svg" in impact.text and "<script" not in impact.text
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        own = client.get(
            f"/sites/{lead_site}/feedback?measure=remission-prevalence", headers=headers
        )
        assert own.status_code == 200 and "<svg" in own.text
        other = client.get("/sites/S002/feedback?measure=remission-prevalence", headers=headers)
        assert other.status_code == 404
    with Warehouse.from_settings(settings, read_only=True) as wh, quiet_engine_warnings():
        cards = wh.table("careloop_cds_card").execute()
    assert len(cards) >= 60 and set(cards.site_code) <= set(truth.ko_sites)
    assert "patient_ref" not in cards.columns


def test_a_narrow_measure_run_keeps_every_measure_on_the_pages(demo):
    # Last in this module: it stores one more run in the shared demo warehouse.
    settings, _result = demo
    from fastapi.testclient import TestClient

    from careloop.demo.pipeline import DEMO_MEASURES
    from careloop.measures import data_extent, load_catalog, run_measures, store_run
    from careloop.trust import identity
    from careloop.trust.installation import open_registry
    from careloop.web.app import create_app

    catalog = load_catalog(measures_dir=DEMO_MEASURES, entry_points=False)
    with Warehouse.from_settings(settings) as wh:
        before = set(load_results(wh).measure_id)
        extent = data_extent(wh)
        assert extent is not None
        narrow = run_measures(  # one measure, network only
            wh, catalog.select(["steroid-at-visit"]), start=extent[0], end=extent[1]
        )
        store_run(wh, narrow)
        assert set(load_results(wh).measure_id) == before
    registry = open_registry(settings)
    token = identity.create_token(
        registry, Principal.operator("tester"), name="t2", for_user="admin@demo.careloop.invalid"
    ).token
    registry.close()
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as client:
        overview = client.get("/measures", headers=headers)
        assert overview.status_code == 200
        assert all(m in overview.text for m in before)
        impact = client.get(
            "/knowledge/ibd-steroid-review/impact?measure=steroid-at-visit", headers=headers
        )
        assert impact.status_code == 200, impact.text[:300]


def test_the_demo_runs_a_learning_community_with_patients_and_carers_and_its_cycles(demo):
    from typer.testing import CliRunner

    from careloop.cli.main import app

    settings, _result = demo
    data = ["--data-dir", str(settings.data_dir)]
    runner = CliRunner()

    def run(*args: str) -> object:
        done = runner.invoke(app, [*args, "--format", "json", *data])
        assert done.exit_code == 0, done.output
        return json.loads(done.output)

    (listed,) = run("community", "list")
    assert listed["name"] == "IBD network learning community"
    # The advisory council's patient and parent, and the two families who joined careloop.
    assert listed["patients_and_carers"] == 4
    shown = run("community", "show", str(listed["id"]))
    roles = {r for m in shown["members"] for r in m["roles"]}
    assert {"patient", "carer", "clinician", "facilitator"} <= roles
    assert shown["charter"]["decision_rule"] == "majority"
    assert shown["charter"]["requires_patient_reviewer"] is True

    cycles = run("cycle", "list", "--community", str(listed["id"]))
    network = next(c for c in cycles if c["kind"] == "change_package")
    sites = [c for c in cycles if c["parent_id"] == network["id"]]
    truth = _result_truth(settings)
    assert network["do"]["start"] == truth["change_date"]
    assert sorted((c["do"]["sites"][0], c["do"]["start"]) for c in sites) == truth["site_changes"]
    assert network["act"]["decision"] == "adopt"
    from careloop.content.ibd import DEMO_MEASURES

    one = run("cycle", "show", str(network["id"]), "--measures-dir", str(DEMO_MEASURES))
    assert {(p["measure_id"], p["role"]) for p in one["phases"]} == {
        ("remission-at-visit", "outcome"),
        ("steroid-at-visit", "balancing"),
    }
    # The Study, computed from the stored measure results: the change's odds ratio with its
    # interval covers the planted one, and the chart's new phase starts at the change month.
    studied = {m["measure_id"]: m for m in one["study"]["measures"]}
    remission = studied["remission-at-visit"]
    planted = generate_network_truth().change_odds_ratio
    assert remission["effect"]["ci_low"] <= planted <= remission["effect"]["ci_high"]
    assert remission["phase"]["starts"][:10] == truth["change_date"]
    site = sites[0]
    site_study = run("cycle", "show", str(site["id"]), "--measures-dir", str(DEMO_MEASURES))
    assert site_study["earlier"] == [truth["change_date"]]
    assert site_study["study"]["change"]["sites"] == site["do"]["sites"]
    deployment = next(c for c in cycles if c["kind"] == "knowledge_deployment")
    ko = run("knowledge", "show", deployment["knowledge_ref"])
    approval = ko["community_approval"]
    assert approval["community"] == "IBD network learning community"
    assert approval["outcome"]["passed"] is True
    assert approval["outcome"]["patients_and_carers"]["yes"] == 2
    # The card's wording is randomised: deployed under its cycle's QI determination.
    assert deployment["randomised"] is True
    assert {(d["cycle_id"], d["consent_purpose"]) for d in ko["deployments"]} == {
        (deployment["id"], "quality_improvement")
    }
    # The coded focus groups are in the change package's Study, and engagement is counted.
    (findings,) = one["qualitative_findings"]
    themes = {t["name"]: t["participants"] for t in findings["summary"]["themes"]}
    assert themes == {"Arriving prepared": 4, "Being asked": 2, "Not everyone was reached": 4}
    assert {a["coders"][0] for a in findings["summary"]["agreement"]} == {"coder A"}
    engaged = run("community", "engagement", str(listed["id"]))
    assert engaged["total"] > 0 and engaged["patient_and_carer_contributions"] > 0


def test_the_demo_community_assessed_nasss_with_three_members_and_rated_its_maturity(demo):
    from typer.testing import CliRunner

    from careloop.cli.main import app

    settings, _result = demo
    data = ["--data-dir", str(settings.data_dir)]
    runner = CliRunner()

    def run(*args: str) -> object:
        done = runner.invoke(app, [*args, "--format", "json", *data])
        assert done.exit_code == 0, done.output
        return json.loads(done.output)

    (listed,) = run("community", "list")
    cid = str(listed["id"])
    cycles = run("cycle", "list", "--community", cid)
    ko = next(c for c in cycles if c["kind"] == "knowledge_deployment")["knowledge_ref"]
    (nasss,) = run("community", "nasss", cid)
    assert nasss["subject"] == ko.partition("@")[0] and len(nasss["raters"]) == 3
    by = {d["domain"]: d for d in nasss["domains"]}
    # The carer and the site lead rate the technology simple, the analyst complex: two steps.
    assert by["technology"]["counts"] == {"simple": 2, "complicated": 0, "complex": 1}
    assert (by["technology"]["spread"], by["technology"]["disagreement"]) == (2, True)
    assert by["adopter_system"]["counts"]["complex"] == 1 and not by["condition"]["disagreement"]
    maturity = run("community", "maturity", cid)
    (rated,) = maturity["rounds"]
    assert len(rated["raters"]) == 3
    scores = {d["domain"]: d for d in rated["domains"]}
    # The demo's record, by hand: cycles, one with a change date and measures, one Act, not
    # three -> QI evidence 4; proposals decided, a log, knowledge approved, a failure
    # discussed -> governance 5; the data-quality checks ran this month -> data 2.
    assert scores["quality_improvement"]["evidence"]["level"] == 4
    assert scores["governance_and_management"]["evidence"]["level"] == 5
    assert scores["data_and_analytics"]["evidence"]["level"] == 2
    assert scores["leadership"]["ratings"] == [3, 3, 4] and scores["leadership"]["evidence"] is None
    assert maturity["next_steps"][0]["domain"] == "research"


def generate_network_truth():
    from careloop.demo.network import generate_network

    return generate_network("small", DEFAULT_SEED).truth


def _result_truth(settings) -> dict[str, object]:
    from careloop.demo.network import generate_network

    truth = generate_network("small", DEFAULT_SEED).truth
    return {
        "change_date": truth.change_date.isoformat(),
        "site_changes": sorted((s, d.isoformat()) for s, (d, _) in truth.site_changes.items()),
    }


def test_families_join_by_email_fill_a_reminded_prom_and_one_says_no_to_research(demo):
    import email
    import email.policy
    import re
    import stat

    from careloop.demo.mailbox import MAILBOX_DIR
    from careloop.demo.seed import read_credentials
    from careloop.trust.installation import open_registry
    from careloop.trust.patients import list_pseudonymised

    settings, result = demo
    summary = json.loads(result.summary.read_text())["patients_and_carers"]
    assert summary["prom_emails"] == 2 and summary["prom_reminders"] == 2
    assert summary["proms_completed_from_a_link"] == 1
    (month,) = summary["prom_completion"]
    assert (month["invited"], month["completed"], month["pending"]) == (1, 1, 1)
    # The credentials file lists the family accounts with their roles.
    roles = {
        login.email: login.role
        for login in read_credentials(settings.data_dir / "demo-credentials.txt")
    }
    young = summary["research_withdrawn_by"]
    assert roles[young] == "patient" and "carer" in {
        role for email_, role in roles.items() if email_.startswith("parent.")
    }
    # Two invitations, two first requests and two reminders, each a private .eml file
    # with no clinical words in it.
    everything = sorted((settings.data_dir / MAILBOX_DIR).glob("*.eml"))
    mails = [m for m in everything if "young-person" in m.name or "parent" in m.name]
    assert len(mails) == 6
    # The staff's alerts came as one e-mail per person, however many alerts it lists.
    staff = [m.name.split("-", 1)[1] for m in everything if m not in mails]
    assert staff and len(staff) == len(set(staff))
    for path in mails:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",)).get_content().lower()
        # The site's own name is the sender's (here "... Children's IBD Centre 1").
        text = re.sub(r"synthetic children's ibd centre \d+", "the site", text)
        for word in ("ibd", "crohn", "colitis", "tummy", "poo", "score", "symptom"):
            assert word not in text, (path.name, word)
    # The young person said no to research and yes to improvement: still in the warehouse.
    registry = open_registry(settings)
    everyone = list_pseudonymised(registry, Principal.operator("tester"), limit=100_000)
    registry.close()
    (changed,) = [p for p in everyone if p.consent_state == "improvement_only"]
    # improvement_only: yes to care and to making care better, no to research.
    with Warehouse.from_settings(settings, read_only=True) as wh, quiet_engine_warnings():
        in_warehouse = set(wh.table("person").person_source_value.execute())
    assert changed.pseudo_id in in_warehouse
