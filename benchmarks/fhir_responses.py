"""Benchmark: importing form responses from FHIR QuestionnaireResponses vs pure validation.

The small synthetic IBD network of the demo (552 patients, ~13,000 visit and
PROM responses) is recorded through the capture layer and exported with
``careloop fhir export``. Its Patient, Consent and QuestionnaireResponse
files are then, in the same run:

- baseline: validated with fhir.resources R4B (``model_validate_json`` of every
  line), nothing else;
- careloop: imported with ``import_fhir`` into a fresh installation that has the
  registry forms: read, validate, check codes, register patients, check every
  response against its form, write the responses with one audit entry each,
  record provenance.

Also printed, for scale: the capture layer's bulk CSV import of the same
responses (``careloop records import``), which is how registries usually load.

Prints resources per CPU-second and the ratio. CPU time, not wall-clock time,
because the machine is shared.

    .venv/bin/python benchmarks/fhir_responses.py
"""

from __future__ import annotations

import re
import tempfile
import time
import warnings
from pathlib import Path

from careloop.capture import forms_store
from careloop.capture.examples import example_file
from careloop.capture.records_io import import_records
from careloop.core.settings import Settings, load_settings
from careloop.demo.load import PROM_FORM, VISIT_FORM, load_network, records_csv
from careloop.demo.network import generate_network
from careloop.demo.seed import init_demo_installation
from careloop.fhir.exporting import export_fhir
from careloop.fhir.importing import import_fhir
from careloop.fhir.read import model_class
from careloop.store.database import Registry
from careloop.trust import identity, patients
from careloop.trust.installation import open_registry
from careloop.trust.principal import Principal
from careloop.warehouse.connection import Warehouse, warehouse_opener

KEEP = ("Patient", "Consent", "QuestionnaireResponse")
_TYPE = re.compile(rb'"resourceType":"(\w+)"')
OPERATOR = Principal.operator("bench")


def _fresh(workdir: Path) -> tuple[Settings, Registry]:
    settings = load_settings(data_dir=workdir)
    init_demo_installation(settings, OPERATOR)
    registry = open_registry(settings)
    identity.add_site(
        registry, OPERATOR, code="ALL", name="All", country="GB", time_zone="Europe/London"
    )
    forms_store.import_forms(
        registry, OPERATOR, example_file("yaml"), fmt="yaml", name="ibd_registry.yaml"
    )
    return settings, registry


def validate_only(folder: Path) -> tuple[float, int]:
    start = time.process_time()
    n = 0
    for kind in KEEP:
        with (folder / f"{kind}.ndjson").open("rb") as handle:
            for line in handle:
                match = _TYPE.search(line)
                assert match is not None
                model_class(match.group(1).decode()).model_validate_json(line)
                n += 1
    return time.process_time() - start, n


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    network = generate_network("small", 4)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source_settings = load_settings(data_dir=work / "source")
        init_demo_installation(source_settings, OPERATOR)
        source = open_registry(source_settings)
        try:
            load_network(source, OPERATOR, network)
            export_fhir(source, warehouse_opener(source_settings), OPERATOR, work / "export")
        finally:
            source.close()
        folder = work / "bundle"
        folder.mkdir()
        for kind in KEEP:
            (folder / f"{kind}.ndjson").write_bytes(
                (work / "export" / f"{kind}.ndjson").read_bytes()
            )
        responses = sum(1 for _ in (folder / "QuestionnaireResponse.ndjson").open())
        validate_only(folder)  # warm the model classes and the file cache
        base_seconds, total = validate_only(folder)

        settings, registry = _fresh(work / "target")
        try:
            start = time.process_time()
            with Warehouse.from_settings(settings) as warehouse:
                report = import_fhir(registry, warehouse, OPERATOR, folder, site="ALL")
            ours_seconds = time.process_time() - start
        finally:
            registry.close()
        assert report.responses_created == responses, report

        _settings, registry = _fresh(work / "csv")
        try:
            patients.register_patients(
                registry,
                OPERATOR,
                site="ALL",
                patients=[
                    patients.NewPatient(
                        local_id=str(r.local_id),
                        birth_date=r.birth_date,
                        sex=str(r.sex),
                        consent_state=str(r.consent_state),
                        given_name=str(r.given_name),
                        family_name=str(r.family_name),
                    )
                    for r in network.patients.itertuples()
                ],
            )
            visit_form = forms_store.get_form(registry, OPERATOR, VISIT_FORM).form
            prom_form = forms_store.get_form(registry, OPERATOR, PROM_FORM).form
            files = [
                (VISIT_FORM, records_csv(visit_form, network.visits)),
                (PROM_FORM, records_csv(prom_form, network.proms)),
            ]
            start = time.process_time()
            csv_rows = 0
            for name, data in files:
                result = import_records(registry, OPERATOR, name, data, "ALL", mode="row-level")
                csv_rows += result.created
            csv_seconds = time.process_time() - start
        finally:
            registry.close()

    base_rate, our_rate = total / base_seconds, total / ours_seconds
    print(
        f"{total:,} resources ({responses:,} QuestionnaireResponses, "
        f"{total - responses:,} Patients and Consents)"
    )
    print(f"fhir.resources validation only:     {base_rate:10,.0f} resources per CPU-second")
    print(f"careloop import_fhir → registry:    {our_rate:10,.0f} resources per CPU-second")
    print(f"ratio careloop / validation:        {our_rate / base_rate:10.2f}")
    print(
        f"for scale, capture's CSV import:    {csv_rows / csv_seconds:10,.0f} responses per "
        f"CPU-second ({csv_rows:,} responses)"
    )


if __name__ == "__main__":
    main()
