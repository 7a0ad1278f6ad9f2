"""One provenance chain: from a decision-support card back to the source files it came from.

The whole cycle on a real installation (SQLite, and PostgreSQL when
available): a FHIR import of real files, a warehouse refresh, a measure run,
a knowledge object citing the run as its evidence, its deployment, a card
from the CDS Hooks service over HTTP, then the chain walked from the card.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from typer.testing import CliRunner

from careloop.cli.main import app
from careloop.core.errors import NotFound
from careloop.measures import load_catalog, run_measures, store_run
from careloop.measures.provenance import record_measure_run
from careloop.practice.lineage import card_lineage
from careloop.store.models import Site
from careloop.store.models.knowledge import CdsCard
from careloop.trust.principal import Grant, Principal
from careloop.trust.provenance import file_sha256, full_url
from careloop.warehouse.connection import Warehouse
from careloop.warehouse.refresh import warehouse_provenance
from tests.foundation import fhir_import, refresh_installation
from tests.practice.cds_support import (
    auth,
    deploy,
    ec_client,
    hook_request,
    ibd_package,
    ibd_prefetch,
    trust,
)

FHIR_SMALL = Path(__file__).resolve().parents[1] / "data" / "fhir_small"
SERVICE = "traced-steroid-review"


@pytest.fixture(scope="module")
def cycle(installation, tmp_path_factory):
    """Run the cycle once; returns (card uuid, measure run provenance id)."""
    inst = installation
    fhir_import(inst, inst.operator, FHIR_SMALL, site="A")
    refresh_installation(inst)
    catalog = load_catalog(entry_points=False)
    with Warehouse.from_settings(inst.settings) as warehouse:
        run = run_measures(
            warehouse, catalog.measures, start=date(2015, 1, 1), end=date(2024, 12, 31)
        )
        store_run(warehouse, run)
        measured = record_measure_run(
            inst.registry,
            inst.operator,
            run,
            warehouse_url=warehouse.url,
            parent_ids=warehouse_provenance(inst.registry),
        )
    package = ibd_package(SERVICE)
    data = package.to_dict()
    data["metadata"]["evidence"] = [{"ref": f"provenance:{measured.id}", "title": "the run"}]
    from careloop.knowledge.package import package_from_dict

    deploy(inst, package_from_dict(data), sites=["A"])
    keys = ec_client("https://ehr-lineage.example.org/")
    trust(inst, keys, tmp_path_factory.mktemp("jwks"), site="A")
    return inst, keys, measured.id


def _a_card(api, cycle) -> str:
    _inst, keys, _ = cycle
    path = f"/cds-services/{SERVICE}"
    body = hook_request(
        "patient-view",
        {"userId": "Practitioner/dr-a", "patientId": "p1"},
        prefetch=ibd_prefetch(),
    )
    response = api.post(path, json=body, headers=auth(keys, path))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert cards, "the knowledge object should fire on this patient"
    return str(cards[0]["uuid"])


def test_a_card_is_traced_through_its_knowledge_object_and_the_measure_run_to_the_fhir_files(
    api, cycle
):
    inst, _, run_id = cycle
    card = _a_card(api, cycle)
    traced = card_lineage(inst.registry, inst.operator, card)
    activities = [e.activity for e in traced.chain]
    assert activities[:4] == [
        "knowledge.deploy",
        "knowledge.version",
        "measures.run",
        "warehouse.refresh",
    ]
    assert "fhir.import" in activities[4:]
    assert run_id in [e.id for e in traced.chain]
    assert traced.card["site"] == "A" and traced.card["knowledge_object"] == SERVICE
    # The chain ends in the very files imported, named with their SHA-256.
    files = dict(traced.files)
    for path in sorted(FHIR_SMALL.glob("*.*json")):
        assert files[str(path)] == file_sha256(path)


def test_a_card_at_another_site_is_not_found_for_a_clinician_there_and_the_refusal_is_audited(
    api, cycle
):
    inst, _, _ = cycle
    card = _a_card(api, cycle)
    with inst.registry.transaction() as session:
        site_b = session.scalar(select(Site.id).where(Site.code == "B"))
    clinician_b = Principal(None, "dr-b@example.org", (Grant("clinician", site_b, "B"),))
    with pytest.raises(NotFound, match="no card"):
        card_lineage(inst.registry, clinician_b, card)
    from careloop.store.models import AuditEntry

    with inst.registry.transaction() as session:
        refused = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "provenance.read")
        ).all()
    assert any(e.user_email == "dr-b@example.org" and e.outcome != "success" for e in refused)


def test_the_command_shows_the_chain_as_a_fhir_bundle_that_resolves_on_its_own(api, cycle):
    inst, _, run_id = cycle
    card = _a_card(api, cycle)
    with inst.registry.transaction() as session:
        assert session.scalar(select(CdsCard.id).where(CdsCard.uuid == card)) is not None
    runner = CliRunner()
    data_dir = str(inst.settings.data_dir)
    env = {"CARELOOP_DATABASE_URL": inst.settings.database_url or ""}
    done = runner.invoke(
        app,
        ["provenance", "show", f"card:{card}", "--format", "fhir", "--data-dir", data_dir],
        env=env,
    )
    assert done.exit_code == 0, done.output
    bundle = json.loads(done.stdout)
    Bundle.model_validate(bundle)
    urls = {e["fullUrl"] for e in bundle["entry"]}
    assert full_url(run_id) in urls
    derived = [
        entity["what"]["reference"]
        for e in bundle["entry"]
        for entity in e["resource"].get("entity", [])
        if entity["role"] == "derivation"
    ]
    assert derived and set(derived) <= urls  # every parent is inside the Bundle
    table = runner.invoke(
        app, ["provenance", "show", str(run_id), "--chain", "--format", "table", "--data-dir", data_dir],
        env=env,
    )  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "measures.run" in table.stdout and "fhir.import" in table.stdout
    assert "handwritten.ndjson" in table.stdout


def test_a_provenance_id_that_is_not_a_number_is_a_clear_error(cycle):
    inst, _, _ = cycle
    done = CliRunner().invoke(
        app,
        ["provenance", "show", "twelve", "--data-dir", str(inst.settings.data_dir)],
        env={"CARELOOP_DATABASE_URL": inst.settings.database_url or ""},
    )
    assert done.exit_code != 0
    assert "is not a provenance record" in done.output and "Traceback" not in done.output
