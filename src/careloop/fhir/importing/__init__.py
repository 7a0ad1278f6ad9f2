"""``import_fhir``: FHIR R4 Bundles and NDJSON into the registry and the warehouse.

Patients become registry patients of one site (identified by their MRN);
Consent resources set their consent; Encounter, Condition, Observation,
MedicationRequest/MedicationStatement and Procedure become OMOP rows keyed to
the patient's person id; QuestionnaireResponses become registry form
responses through the capture layer (:mod:`careloop.capture.fhir_responses`,
keyed by patient + form + event date). Other resource types are validated,
counted and skipped. The mapping is in :mod:`careloop.fhir.mapping`
and docs/fhir.md.

Two modes, as for CSV imports:

- ``all_or_nothing`` (default): one invalid resource, or one that refers to a
  patient the import does not hold, fails the whole import with every
  problem located; nothing is written.
- ``row_level``: invalid resources (and resources of a rejected patient) are
  left out and listed in the report's ``rejected``; the rest is imported.

Either way the registry and the warehouse are written in one transaction
each, the warehouse first and inside the registry's transaction, so a failure
in either leaves both as they were.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from careloop.core.clock import utcnow
from careloop.core.errors import (
    InputError,
)
from careloop.core.limits import DEFAULT_MAX_INPUT_BYTES
from careloop.fhir.importing.plan import (
    IMPORT_MODES,
    MAX_REPORTED,
    RESPONSE_TYPE,
    FhirImportReport,
    ImportMode,
    _failed,
    _Plan,
    _plan,
)
from careloop.fhir.importing.registry import (
    _read_responses,
    _save_responses,
    _target_site,
    _upsert_patients,
)
from careloop.fhir.importing.rows import (
    RESOURCE_KEY,
    _write_warehouse,
    known_code_systems,
)
from careloop.fhir.mapping import (
    ConsentState,
)
from careloop.fhir.read import (
    ReadResult,
    Skipped,
    read_path,
    resource_counts,
)
from careloop.store.database import Registry
from careloop.trust.principal import Principal
from careloop.trust.provenance import record_provenance
from careloop.trust.work import unit_of_work
from careloop.warehouse.connection import Warehouse

__all__ = [
    "IMPORT_MODES",
    "MAX_REPORTED",
    "RESOURCE_KEY",
    "RESPONSE_TYPE",
    "FhirImportReport",
    "ImportMode",
    "import_fhir",
    "known_code_systems",
]


def import_fhir(
    registry: Registry,
    warehouse: Warehouse,
    principal: Principal,
    path: Path,
    *,
    site: str | None = None,
    mode: ImportMode = "all_or_nothing",
    default_consent: ConsentState = "improvement_and_research",
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> FhirImportReport:
    """Import a FHIR Bundle, an NDJSON file or a directory of them.

    Long because it documents its options and runs the import's steps, each a helper, in
    order inside one unit of work, then reports their counts to the audit trail, the
    provenance record and the caller.

    Args:
        registry: The registry patients go into.
        warehouse: The warehouse their rows go into (opened for writing).
        principal: Who imports; needs ``patient.create`` and ``record.write`` at the site.
        path: A Bundle (``.json``: transaction, collection, searchset, batch), an
            NDJSON file (``.ndjson``, Bulk Data) or a directory of them.
        site: The site code patients belong to; default the installation's only site.
        mode: ``all_or_nothing`` or ``row_level`` (see the module docstring).
        default_consent: Consent of patients who arrive without a Consent
            (the installation's ``CARELOOP_DEFAULT_CONSENT``).
        max_input_bytes: The largest input read (``CARELOOP_MAX_INPUT_MB``).

    Raises:
        ValidationFailed: all-or-nothing mode and some resource is invalid; the
            details name each (file, line or entry, FHIR path).
        InputError: the path or the site is not usable.
    """
    if mode not in IMPORT_MODES:
        raise InputError(f"--mode must be one of {', '.join(IMPORT_MODES)}, not {mode!r}.")
    clock = time.perf_counter()
    started = utcnow()
    read, plan = _read_and_plan(Path(path), max_input_bytes)
    with unit_of_work(registry, principal, "patient.create") as work:
        site_row = _target_site(work, principal, site)
        plan.zone = ZoneInfo(site_row.time_zone)
        work.expect(
            "import",
            "clinical",
            site_code=site_row.code,
            details={"path": str(path), "mode": mode, "problems": len(plan.rejected)},
        )
        _read_responses(work, site_row, plan)
        if mode == "all_or_nothing" and plan.rejected:
            # Raised inside the unit of work so that the refused attempt is audited.
            raise _failed(plan.rejected, len(read.resources))
        if mode == "row_level":
            plan.rejected.sort(key=lambda d: d.location)
        persons, created, updated = _upsert_patients(work, default_consent, site_row, plan)
        responses = _save_responses(work, plan, persons, Path(path))
        rows_out, withheld = _write_warehouse(warehouse, site_row.code, plan, persons)
        finished = utcnow()
        work.audit(
            "import",
            "clinical",
            site_code=site_row.code,
            details={
                "path": str(path),
                "mode": mode,
                "resources": len(read.resources),
                "rejected": len(plan.rejected),
                "patients_created": created,
                "patients_updated": updated,
                "rows_out": rows_out,
                "form_responses": responses,
            },
        )
    provenance = record_provenance(
        registry,
        principal,
        activity="fhir.import",
        target=warehouse.url,
        started_at=started,
        ended_at=finished,
        parameters={"path": str(path), "site": site_row.code, "mode": mode},
        inputs=read.inputs,
        outputs={
            "rows": rows_out,
            "patients_created": created,
            "patients_updated": updated,
            "form_responses": responses,
        },
        rows_in=len(read.resources),
        rows_out=sum(rows_out.values()) + responses["created"] + responses["updated"],
        rows_rejected=len(plan.rejected),
    )
    return FhirImportReport(
        site=site_row.code,
        mode=mode,
        inputs=tuple(read.inputs),
        resources_in=resource_counts(read.resources),
        rows_out=rows_out,
        patients_created=created,
        patients_updated=updated,
        skipped=(
            *read.skipped,
            *(Skipped(what, n, why) for (what, why), n in sorted(plan.skipped.items())),
        ),
        rejected=tuple(plan.rejected),
        warnings=tuple(plan.warnings),
        withheld_by_consent=withheld,
        started_at=started,
        finished_at=finished,
        provenance_id=provenance.id,
        seconds=time.perf_counter() - clock,
        responses_created=responses["created"],
        responses_updated=responses["updated"],
        responses_unchanged=responses["unchanged"],
        components=plan.components,
    )


def _read_and_plan(path: Path, max_input_bytes: int) -> tuple[ReadResult, _Plan]:
    """Read the input and plan what each resource becomes (rejecting invalid ones)."""
    # Parsing and validating make millions of small objects and no reference cycles;
    # pausing the cyclic collector meanwhile saves it rescanning them over and over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        read = read_path(path, max_bytes=max_input_bytes)
        return read, _plan(read.resources, read.errors)
    finally:
        if collecting:
            gc.enable()
