"""Provenance entries are stored, chained and rendered as valid FHIR Provenance."""

from __future__ import annotations

from careloop.core.clock import utcnow
from careloop.trust.installation import open_registry
from careloop.trust.principal import Principal
from careloop.trust.provenance import (
    InputRecord,
    as_fhir,
    file_sha256,
    get_provenance,
    lineage,
    record_provenance,
)
from tests.foundation import make_settings


def test_a_chain_of_activities_can_be_walked_back_to_its_inputs(tmp_path, database_url):
    registry = open_registry(make_settings(tmp_path, database_url))
    source = tmp_path / "person.csv"
    source.write_text("person_id\n1\n2\n")
    # sha256 of b"person_id\n1\n2\n", computed independently with `sha256sum`.
    assert file_sha256(source) == "7ecaa87dbf1dc3c748779d795dd0efc7a621d19e9b17d7ee1ba95f5d07cb4e57"
    who = Principal.operator("tester")
    load = record_provenance(
        registry,
        who,
        activity="warehouse.load_omop",
        target="warehouse",
        started_at=utcnow(),
        inputs=[InputRecord(str(source), file_sha256(source), 2)],
        rows_in=2,
        rows_out=2,
        rows_rejected=0,
    )
    run = record_provenance(
        registry,
        who,
        activity="measures.run",
        target="careloop_measure_result",
        started_at=utcnow(),
        parameters={"measure": "remission-prevalence"},
        parent_ids=[load.id],
    )
    assert get_provenance(registry, run.id).parameters == {"measure": "remission-prevalence"}
    assert [p.activity for p in lineage(registry, run.id)] == [
        "measures.run",
        "warehouse.load_omop",
    ]
    fhir = as_fhir(run)
    assert fhir["entity"] == [
        {"role": "derivation", "what": {"reference": f"Provenance/careloop-{load.id}"}}
    ]
    assert as_fhir(load)["entity"][0]["what"]["identifier"]["value"] == file_sha256(source)
    registry.close()
