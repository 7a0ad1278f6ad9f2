"""``export_fhir``: the caller's patients and their warehouse rows as Bulk Data NDJSON.

One file per resource type (``Patient.ndjson``, ``Observation.ndjson`` …) and
a ``manifest.json`` in the shape of a FHIR Bulk Data export manifest. Patients
and their consent come from the registry, clinical resources from the OMOP
warehouse (through :mod:`careloop.fhir.mapping`), so an export
imported into an empty installation gives back what the mapping covers.
Every resource is validated with fhir.resources before it is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from sqlalchemy import select

from careloop.core.clock import iso_utc, utcnow
from careloop.core.errors import IntegrityFailure
from careloop.core.private_files import open_private, private_dir, write_private_text
from careloop.fhir.mapping import (
    CLINICAL_TABLES,
    COMPONENT,
    ID_COLUMNS,
    LINK_TABLE,
    MAPPED_TYPES,
    consent_resource,
    patient_resource,
    resource_of_row,
)
from careloop.fhir.read import model_class
from careloop.store.database import Registry
from careloop.store.models import AuditEntry, Patient, Site
from careloop.trust.principal import Principal
from careloop.trust.provenance import as_fhir, list_provenance
from careloop.trust.work import Work, unit_of_work
from careloop.warehouse.connection import (
    Warehouse,
    WarehouseOpener,
    quiet_engine_warnings,
)

EXPORT_TYPES = (*MAPPED_TYPES, "Questionnaire", "QuestionnaireResponse", "Provenance", "AuditEvent")
"""What an export holds: every type the mapping covers, the forms and answers, the
provenance and the audit trail, in that order."""


@dataclass(frozen=True)
class FhirExportReport:
    """What :func:`export_fhir` wrote."""

    out_dir: Path
    """The directory holding the NDJSON files and ``manifest.json``."""
    counts: Mapping[str, int]
    """Resources written, by type."""
    files: Mapping[str, Path] = field(default_factory=dict)
    """The NDJSON file of each type written."""
    exported_at: datetime = field(default_factory=utcnow)
    skipped_forms: tuple[str, ...] = ()
    """Forms left out because their stored definition cannot be read (and why)."""


@dataclass(frozen=True)
class ScopedPatient:
    """A registry patient as the FHIR layer needs them."""

    id: int
    pseudo_id: str
    site_code: str
    local_id: str
    given_name: str | None
    family_name: str | None
    birth_date: Any
    sex: str
    consent_state: str
    time_zone: str = "UTC"
    """The IANA time zone of the patient's site: their warehouse times are on its clock."""


def _scoped(p: Patient, sites: Mapping[int, tuple[str, str]]) -> ScopedPatient:
    code, zone = sites.get(p.site_id, ("?", "UTC"))
    return ScopedPatient(
        p.id,
        p.pseudo_id,
        code,
        p.local_id,
        p.given_name,
        p.family_name,
        p.birth_date,
        p.sex,
        p.consent_state,
        zone,
    )


def scoped_patients(work: Work) -> list[ScopedPatient]:
    """Every patient the work's scoped session can see."""
    sites = {s.id: (s.code, s.time_zone) for s in work.session.scalars(select(Site))}
    return [_scoped(p, sites) for p in work.session.scalars(select(Patient).order_by(Patient.id))]


def scoped_patient(work: Work, patient: Patient) -> ScopedPatient:
    """One patient the work's session has loaded, as the FHIR layer needs them."""
    site = work.session.get(Site, patient.site_id)
    sites = {site.id: (site.code, site.time_zone)} if site is not None else {}
    return _scoped(patient, sites)


def fhir_patient(p: ScopedPatient, *, identifiable: bool) -> dict[str, Any]:
    return patient_resource(
        pseudo_id=p.pseudo_id,
        site_code=p.site_code,
        local_id=p.local_id,
        given_name=p.given_name,
        family_name=p.family_name,
        birth_date=p.birth_date,
        sex=p.sex,
        identifiable=identifiable,
    )


# The confirmed persons (id → pseudonym), their rows by table, their FHIR links
# and the vocabulary of the concepts the rows use.
_PersonRows: TypeAlias = tuple[
    dict[int, str],
    dict[str, list[dict[str, Any]]],
    list[dict[str, Any]],
    dict[int, tuple[str, str, str]],
]


def clinical_resources(
    warehouse: Warehouse,
    persons: Mapping[int, str],
    *,
    time_zones: Mapping[int, str],
    tables: Iterable[str] = CLINICAL_TABLES,
) -> list[dict[str, Any]]:
    """FHIR resources of the warehouse rows of ``persons`` (person id → pseudonym).

    A person counts only when the warehouse's person row carries the same
    pseudonym (``person_source_value``), so rows loaded from elsewhere whose
    ids happen to match a registry patient are never attributed to them.
    ``time_zones`` (person id → the IANA zone of their site) gives the offset
    of their times, which the warehouse keeps on the site's clock. Rows of
    Observation components are put back into their panel's ``component``.
    """
    if not persons:
        return []
    present = set(warehouse.list_tables())
    if "person" not in present:
        return []
    read = _read_person_rows(warehouse, persons, tables, present)
    if read is None:
        return []
    owners, frames, links, vocab = read
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    for record in links:
        by_key[(record["cdm_table"], int(record["cdm_id"]))] = record
    # Encounter ids of the visits rows refer to, whether or not visits are being read.
    visits = {
        cdm_id: str(record["resource_id"])
        for (table, cdm_id), record in by_key.items()
        if table == "visit_occurrence"
    }
    zones = {pid: ZoneInfo(time_zones.get(pid, "UTC")) for pid in owners}
    out: list[dict[str, Any]] = []
    parts: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for name in tables:
        frame = frames.get(name)
        if frame is None:
            continue
        id_column = ID_COLUMNS[name]
        for row in frame:
            link_row = by_key.get((name, int(row[id_column])), {})
            person = int(row["person_id"])
            resource = resource_of_row(
                name,
                row,
                link_row,
                patient_id=owners[person],
                vocab=vocab,
                visit_resource_ids=visits,
                zone=zones[person],
            )
            if link_row.get("resource_type") == COMPONENT:
                panel, _, index = str(link_row["resource_id"]).rpartition("/")
                parts.setdefault(panel, []).append((int(index), resource))
            else:
                out.append(resource)
    _fold_components(out, parts)
    return out


def _read_person_rows(
    warehouse: Warehouse, persons: Mapping[int, str], tables: Iterable[str], present: set[str]
) -> _PersonRows | None:
    """Read the confirmed persons' rows of ``tables``, their links and the vocabulary.

    Returns None when no person of ``persons`` is confirmed by its pseudonym.
    """
    ids = sorted(persons)
    with quiet_engine_warnings():
        person = warehouse.table("person")
        confirmed = (
            person.filter(person.person_id.isin(ids))
            .select("person_id", "person_source_value")
            .execute()
        )
        owners = {
            int(pid): persons[int(pid)]
            for pid, pseudo in confirmed.itertuples(index=False)
            if persons.get(int(pid)) == pseudo
        }
        if not owners:
            return None
        wanted = sorted(owners)
        # Arrow, not pandas: pandas turns nullable BIGINT ids into floats, which
        # cannot hold 63-bit ids exactly.
        frames: dict[str, list[dict[str, Any]]] = {}
        for name in tables:
            if name in present:
                t = warehouse.table(name)
                frames[name] = t.filter(t.person_id.isin(wanted)).to_pyarrow().to_pylist()
        links: list[dict[str, Any]] = []
        if LINK_TABLE in present:
            link = warehouse.table(LINK_TABLE)
            links = link.filter(link.person_id.isin(wanted)).to_pyarrow().to_pylist()
        vocab = _vocabulary(warehouse, frames, present)
    return owners, frames, links, vocab


_GENERATED_ID = re.compile(r"^(measurement|observation)-([0-9]{1,19})$")
_MAX_ROW_ID = 2**63 - 1


def observation_persons(warehouse: Warehouse, resource_id: str) -> set[int]:
    """The persons whose warehouse rows may be the Observation ``resource_id``.

    An Observation's id is its FHIR id when it was imported from FHIR (the
    link table keeps it, and ``<panel>/<i>`` for a panel's components), or
    ``measurement-<n>``/``observation-<n>`` for other rows. This finds
    candidates only, reading no clinical values: the caller builds the
    candidates' resources (:func:`clinical_resources`) and picks the one.
    """
    present = set(warehouse.list_tables())
    persons: set[int] = set()
    panel = resource_id.rsplit("-component-", 1)[0]
    with quiet_engine_warnings():
        if LINK_TABLE in present:
            link = warehouse.table(LINK_TABLE)
            rows = (
                link.filter(
                    (link.resource_id == resource_id)
                    | (link.resource_id == panel)
                    | link.resource_id.startswith(panel + "/")
                )
                .select("person_id")
                .to_pyarrow()
                .to_pylist()
            )
            persons.update(int(r["person_id"]) for r in rows)
        generated = _GENERATED_ID.match(resource_id)
        if generated and generated.group(1) in present:
            table, row_id = generated.group(1), int(generated.group(2))
            if row_id <= _MAX_ROW_ID:
                t = warehouse.table(table)
                rows = (
                    t.filter(t[ID_COLUMNS[table]] == row_id)
                    .select("person_id")
                    .to_pyarrow()
                    .to_pylist()
                )
                persons.update(int(r["person_id"]) for r in rows)
    return persons


def _fold_components(
    resources: list[dict[str, Any]], parts: dict[str, list[tuple[int, dict[str, Any]]]]
) -> None:
    """Put component rows back into their panel Observation, in their original order.

    A component whose panel is not among ``resources`` stays an Observation of
    its own (id ``<panel>-component-<i>``), so nothing read is dropped.
    """
    if not parts:
        return
    panels = {r["id"]: r for r in resources if r["resourceType"] == "Observation"}
    for panel_id, items in parts.items():
        panel = panels.get(panel_id)
        for index, item in sorted(items, key=lambda pair: pair[0]):
            if panel is None:
                resources.append({**item, "id": f"{panel_id}-component-{index}"[:64]})
                continue
            component = {k: v for k, v in item.items() if k == "code" or k.startswith("value")}
            panel.setdefault("component", []).append(component)


def _vocabulary(
    warehouse: Warehouse, frames: Mapping[str, list[dict[str, Any]]], present: set[str]
) -> dict[int, tuple[str, str, str]]:
    """concept id → (vocabulary, code, name) for the concepts the rows use."""
    if "concept" not in present:
        return {}
    ids: set[int] = set()
    for name, frame in frames.items():
        column = {
            "visit_occurrence": "visit_concept_id",
            "condition_occurrence": "condition_concept_id",
            "measurement": "measurement_concept_id",
            "observation": "observation_concept_id",
            "drug_exposure": "drug_concept_id",
            "procedure_occurrence": "procedure_concept_id",
        }[name]
        ids.update(int(r[column]) for r in frame if r[column])
    if not ids:
        return {}
    concept = warehouse.table("concept")
    frame = (
        concept.filter(concept.concept_id.isin(sorted(ids)))
        .select("concept_id", "vocabulary_id", "concept_code", "concept_name")
        .execute()
    )
    return {int(c): (v, code, n) for c, v, code, n in frame.itertuples(index=False)}


def audit_event_resource(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as a FHIR AuditEvent (who, what, outcome; never clinical values)."""
    outcome = {"success": "0", "failure": "8", "denied": "4", "not_found": "4"}
    action = {"create": "C", "read": "R", "update": "U", "delete": "D"}
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"careloop-audit-{entry.seq}",
        "type": {
            "system": "urn:careloop:audit-category",
            "code": entry.category,
        },
        "subtype": [{"system": "urn:careloop:audit-action", "code": entry.action}],
        "action": action.get(entry.action, "E"),
        "recorded": entry.occurred_at.replace("Z", "+00:00"),
        "outcome": outcome.get(entry.outcome, "8"),
        "agent": [
            {
                "who": {"display": entry.user_email or "unknown"},
                "requestor": True,
                **(
                    {"network": {"address": entry.client_addr, "type": "2"}}
                    if entry.client_addr
                    else {}
                ),
            }
        ],
        "source": {"observer": {"display": "careloop"}},
    }
    if entry.patient_pseudo_id:
        resource["entity"] = [{"what": {"reference": f"Patient/{entry.patient_pseudo_id}"}}]
    return resource


def _add_forms(
    registry: Registry, principal: Principal, resources: dict[str, list[dict[str, Any]]]
) -> list[str]:
    """Questionnaires of the registry's forms and the responses the caller may export.

    Returns the forms left out because they cannot be read, each with the reason.

    Responses come from the capture layer's own FHIR export
    (``export_records(..., fmt="fhir")``), which audits each patient's export.
    """
    from careloop.capture.forms_store import get_form, list_forms
    from careloop.capture.questionnaire import form_to_questionnaire
    from careloop.capture.records_io import export_records

    skipped: list[str] = []
    for summary in list_forms(registry, principal):
        if summary.problem:
            # One unreadable form must not stop the export of every other.
            skipped.append(f"{summary.name}: {summary.problem}")
            continue
        stored = get_form(registry, principal, summary.name)
        questionnaire = form_to_questionnaire(stored.form)
        resources["Questionnaire"].append(questionnaire.model_dump(mode="json", exclude_none=True))
        exported = export_records(registry, principal, summary.name, fmt="fhir")
        resources["QuestionnaireResponse"].extend(
            json.loads(line) for line in exported.text.splitlines() if line.strip()
        )
    return skipped


def export_fhir(
    registry: Registry, warehouse: WarehouseOpener, principal: Principal, out_dir: Path
) -> FhirExportReport:
    """Export the caller's patients and their data as Bulk Data NDJSON files.

    ``warehouse`` opens the warehouse (``warehouse_opener(settings)``); with none
    yet, the export holds patients, consent and provenance only.

    Needs ``record.export`` (site leads of their sites; the operator: all).
    AuditEvents are included only for callers who may read the audit trail
    (auditors cannot export records, so in practice: the operator).

    Raises:
        PermissionDenied: the caller may not export records.
    """
    out_dir = Path(out_dir)
    if not out_dir.exists():
        private_dir(out_dir)  # an existing folder keeps its mode; the files are 600 anyway
    resources: dict[str, list[dict[str, Any]]] = {t: [] for t in EXPORT_TYPES}
    # Read before the unit of work: SQLite allows one transaction at a time.
    provenance = list_provenance(registry, limit=10_000)
    with unit_of_work(registry, principal, "record.export") as work:
        patients = scoped_patients(work)
        for p in patients:
            resources["Patient"].append(fhir_patient(p, identifiable=True))
            resources["Consent"].append(consent_resource(p.pseudo_id, p.consent_state))
        opened = warehouse()
        if opened is not None:
            with opened:
                for resource in clinical_resources(
                    opened,
                    {p.id: p.pseudo_id for p in patients},
                    time_zones={p.id: p.time_zone for p in patients},
                ):
                    resources[resource["resourceType"]].append(resource)
        sites = {p.site_code for p in patients}
        everywhere = work.scope.site_ids is None and work.scope.patient_ids is None
        for entry in provenance:
            if everywhere or entry.parameters.get("site") in sites:
                resources["Provenance"].append(as_fhir(entry))
        if principal.is_operator or (
            principal.scope_for("audit.read").site_ids is None and (principal.may("audit.read"))
        ):
            for audit_row in work.session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
                resources["AuditEvent"].append(audit_event_resource(audit_row))
        counts = {t: len(v) for t, v in resources.items() if v}
        work.audit(
            "export",
            "clinical",
            details={
                "out_dir": str(out_dir),
                "counts": counts,
                "patient_ids": [p.id for p in patients],
            },
        )
    # After the unit of work: capture's services open transactions of their own.
    skipped_forms = _add_forms(registry, principal, resources)
    counts = {t: len(v) for t, v in resources.items() if v}
    files = _write_ndjson(out_dir, resources)
    exported_at = utcnow()
    manifest = {
        "transactionTime": iso_utc(exported_at),
        "request": "careloop fhir export",
        "requiresAccessToken": False,
        "output": [
            {"type": kind, "url": path.name, "count": counts[kind]} for kind, path in files.items()
        ],
        "error": [],
    }
    write_private_text(out_dir / "manifest.json", json.dumps(manifest, indent=2))
    return FhirExportReport(
        out_dir=out_dir,
        counts=counts,
        files=files,
        exported_at=exported_at,
        skipped_forms=tuple(skipped_forms),
    )


def _write_ndjson(out_dir: Path, resources: dict[str, list[dict[str, Any]]]) -> dict[str, Path]:
    """Write one NDJSON file per resource type, each resource checked against its model."""
    files: dict[str, Path] = {}
    for kind, items in resources.items():
        if not items:
            continue
        model = model_class(kind)
        path = out_dir / f"{kind}.ndjson"
        with open_private(path) as handle:
            for item in items:
                try:
                    model.model_validate(item)
                except ValueError as exc:  # pydantic's ValidationError is a ValueError
                    raise IntegrityFailure(
                        f"careloop built an invalid {kind} {item.get('id')}: {exc}"
                    ) from exc
                handle.write(json.dumps(item, separators=(",", ":"), ensure_ascii=False) + "\n")
        files[kind] = path
    return files
