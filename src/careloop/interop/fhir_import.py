"""``import_fhir``: FHIR R4 Bundles and NDJSON into the registry and the warehouse.

Patients become registry patients of one site (identified by their MRN);
Consent resources set their consent; Encounter, Condition, Observation,
MedicationRequest/MedicationStatement and Procedure become OMOP rows keyed to
the patient's person id; QuestionnaireResponses become registry form
responses through the capture layer (:mod:`careloop.capture.fhir_responses`,
keyed by patient + form + event date). Other resource types are validated,
counted and skipped. The mapping is in :mod:`careloop.interop.fhir_mapping`
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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import ibis
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import select

from careloop.capture.entry import ResponseToSave, save_responses
from careloop.capture.fhir_responses import (
    REPEAT_INSTANCE_EXTENSION,
    ResponseFromFhir,
    load_response_form,
    response_from_fhir,
)
from careloop.capture.forms import Form
from careloop.core.clock import utcnow
from careloop.core.errors import (
    ErrorDetail,
    InputError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from careloop.core.ids import pseudonym
from careloop.core.settings import Settings
from careloop.interop.fhir_codes import CODE_SYSTEMS
from careloop.interop.fhir_mapping import (
    CLINICAL_TABLES,
    EHR_TYPE_CONCEPT,
    FIELD_CONCEPT_NAMES,
    GENDER_CONCEPTS,
    ID_COLUMNS,
    LINK_SCHEMA,
    LINK_TABLE,
    MAPPED_TYPES,
    PRESCRIPTION_TYPE_CONCEPT,
    VISIT_CONCEPTS,
    Coded,
    ConsentState,
    MappedRow,
    check_resource,
    clinical_rows,
    consent_state,
    mapped_components,
    patient_fields,
    person_row,
    reference_key,
    reference_keys,
    stable_id,
    unmapped_elements,
)
from careloop.interop.fhir_read import (
    Skipped,
    SourceResource,
    read_path,
    resource_counts,
    validate,
)
from careloop.interop.sources import assemble, store_name, store_schemas, store_tables
from careloop.interop.warehouse import Warehouse, parse_warehouse_url, quiet_engine_warnings
from careloop.store.database import Registry
from careloop.store.models import ConsentRecord, Patient, Site
from careloop.trust.audit import AuditEvent, append_many
from careloop.trust.principal import Principal
from careloop.trust.provenance import InputRecord, record_provenance
from careloop.trust.work import Work, unit_of_work

RESPONSE_TYPE = "QuestionnaireResponse"
ImportMode = Literal["all_or_nothing", "row_level"]
IMPORT_MODES: tuple[ImportMode, ...] = ("all_or_nothing", "row_level")
MAX_REPORTED = 200
"""At most this many problems are listed in an error (the count says how many in all)."""


@dataclass(frozen=True)
class FhirImportReport:
    """What :func:`import_fhir` did."""

    site: str
    """The site the patients belong to."""
    mode: ImportMode
    """``all_or_nothing`` or ``row_level``."""
    inputs: tuple[InputRecord, ...]
    """Files read, with SHA-256 and resources per file."""
    resources_in: Mapping[str, int]
    """Resources read, by type."""
    rows_out: Mapping[str, int]
    """Warehouse rows written, by OMOP table."""
    patients_created: int
    """Registry patients registered by this import."""
    patients_updated: int
    """Registry patients already there (by MRN) whose details or consent changed."""
    skipped: tuple[Skipped, ...]
    """What was read and left out, each counted with the reason: resources of types
    careloop does not map (``ImagingStudy``), elements it does not keep
    (``Observation.referenceRange``), Observation components that could not become
    rows, and a Bulk Data export's log, error reports and deletions."""
    rejected: tuple[ErrorDetail, ...]
    """Row-level mode: the resources left out and why (empty in all-or-nothing mode)."""
    warnings: tuple[ErrorDetail, ...]
    """Imported with a caveat (e.g. a code that does not fit its code system)."""
    withheld_by_consent: int
    """Clinical resources not put in the warehouse because the patient's consent forbids it."""
    started_at: datetime
    finished_at: datetime
    provenance_id: int | None = None
    """The provenance record of this import."""
    seconds: float = 0.0
    """Wall-clock time of the import."""
    responses_created: int = 0
    """Registry form responses created from QuestionnaireResponses."""
    responses_updated: int = 0
    """Form responses already there (patient + form + event date) whose values or status changed."""
    responses_unchanged: int = 0
    """QuestionnaireResponses identical to the stored response (a re-import)."""
    components: int = 0
    """Observation components that became rows of their own (blood pressure and other
    panels), in the warehouse unless the patient's consent keeps them out."""

    def skipped_count(self, what: str) -> int:
        """How many of ``what`` (a type, element or file, as in :attr:`skipped`) were left out."""
        return sum(s.count for s in self.skipped if s.what == what)

    @property
    def responses_in(self) -> int:
        """QuestionnaireResponses imported (created, updated or unchanged)."""
        return self.responses_created + self.responses_updated + self.responses_unchanged

    @property
    def total_in(self) -> int:
        return sum(self.resources_in.values())

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rejected"] = [d.as_dict() for d in self.rejected]
        out["skipped"] = [s.as_dict() for s in self.skipped]
        out["warnings"] = [d.as_dict() for d in self.warnings]
        out["inputs"] = [i.__dict__ for i in self.inputs]
        out["started_at"] = self.started_at.isoformat()
        out["finished_at"] = self.finished_at.isoformat()
        return out


@dataclass
class _Checked:
    item: SourceResource
    codes: dict[str, Coded]
    patient_key: str | None = None


@dataclass
class _FormAnswer:
    """A QuestionnaireResponse read as a form response, with its patient."""

    item: SourceResource
    response: ResponseFromFhir
    patient_key: str | None
    """The import's patient it belongs to (``Patient/id``), or None: a registry patient."""
    registry_patient_id: int | None


@dataclass
class _Plan:
    """The validated import, before anything is written."""

    patients: dict[str, _Checked] = field(default_factory=dict)
    """Patient resource key (``Patient/id``) → the resource."""
    consents: dict[str, ConsentState] = field(default_factory=dict)
    """Patient key → consent state set by a Consent resource."""
    clinical: list[_Checked] = field(default_factory=list)
    responses: list[_Checked] = field(default_factory=list)
    """QuestionnaireResponses, valid FHIR; read against their forms in the transaction."""
    form_answers: list[_FormAnswer] = field(default_factory=list)
    """The responses that passed every check, ready to be saved."""
    skipped: dict[tuple[str, str], int] = field(default_factory=dict)
    """(what, reason) → how many: types, elements and components left out."""
    components: int = 0
    """Observation components that become rows."""
    zone: tzinfo | None = None
    """The site's time zone: warehouse dates and times are on its clock (set with the site)."""
    rejected: list[ErrorDetail] = field(default_factory=list)
    warnings: list[ErrorDetail] = field(default_factory=list)


def import_fhir(
    settings: Settings,
    registry: Registry,
    principal: Principal,
    path: Path,
    *,
    site: str | None = None,
    mode: ImportMode = "all_or_nothing",
) -> FhirImportReport:
    """Import a FHIR Bundle, an NDJSON file or a directory of them.

    Args:
        settings: The installation (warehouse URL, default consent).
        registry: The registry patients go into.
        principal: Who imports; needs ``patient.create`` and ``record.write`` at the site.
        path: A Bundle (``.json``: transaction, collection, searchset, batch), an
            NDJSON file (``.ndjson``, Bulk Data) or a directory of them.
        site: The site code patients belong to; default the installation's only site.
        mode: ``all_or_nothing`` or ``row_level`` (see the module docstring).

    Raises:
        ValidationFailed: all-or-nothing mode and some resource is invalid; the
            details name each (file, line or entry, FHIR path).
        InputError: the path or the site is not usable.
    """
    if mode not in IMPORT_MODES:
        raise InputError(f"--mode must be one of {', '.join(IMPORT_MODES)}, not {mode!r}.")
    clock = time.perf_counter()
    started = utcnow()
    # Parsing and validating make millions of small objects and no reference cycles;
    # pausing the cyclic collector meanwhile saves it rescanning them over and over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        read = read_path(Path(path), max_bytes=settings.max_input_bytes)
        plan = _plan(read.resources, read.errors)
    finally:
        if collecting:
            gc.enable()
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
        persons, created, updated = _upsert_patients(work, settings, site_row, plan)
        responses = _save_responses(work, plan, persons, Path(path))
        rows_out, withheld = _write_warehouse(settings, site_row.code, plan, persons)
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
        target=parse_warehouse_url(settings.resolved_warehouse_url).url,
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


def _failed(problems: list[ErrorDetail], total: int) -> ValidationFailed:
    shown = problems[:MAX_REPORTED]
    more = f" (the first {MAX_REPORTED} are listed)" if len(problems) > MAX_REPORTED else ""
    return ValidationFailed(
        f"{len(problems)} problem(s) in {total} FHIR resource(s); nothing was imported{more}. "
        "Fix them, or import with --mode row-level to leave the bad resources out.",
        details=shown,
    )


# ---------------------------------------------------------------- validation


def _plan(items: list[SourceResource], read_errors: list[ErrorDetail]) -> _Plan:
    plan = _Plan(rejected=list(read_errors))
    checked: list[_Checked] = []
    bad_patient_keys: set[str] = set()
    seen: dict[str, str] = {}
    for item in items:
        problems = validate(item)
        kind = str(item.resource.get("resourceType"))
        codes: dict[str, Coded] = {}
        if not problems:
            problems, warnings, codes = check_resource(item.resource, item.location)
            plan.warnings.extend(warnings)
        keyed = kind in MAPPED_TYPES or (kind == RESPONSE_TYPE and item.resource.get("id"))
        if keyed and not problems:
            key = f"{kind}/{item.resource.get('id')}"
            if key in seen:
                problems = [
                    ErrorDetail(
                        f"{item.location}: {kind}.id",
                        f"{key} appears twice in this import (also at {seen[key]})",
                    )
                ]
            seen[key] = item.location
        if problems:
            plan.rejected.extend(problems)
            if kind == "Patient" and item.resource.get("id"):
                bad_patient_keys.update(reference_keys(item.resource, item.full_url))
            continue
        if kind == "Patient":
            entry = _Checked(item, codes)
            for key in reference_keys(item.resource, item.full_url):
                plan.patients[key] = entry
            _count_unmapped(plan, item.resource, codes)
        elif kind in MAPPED_TYPES:
            checked.append(_Checked(item, codes))
        elif kind == RESPONSE_TYPE:
            plan.responses.append(_Checked(item, codes))
        else:
            why = _NOT_IMPORTED.get(kind, "careloop does not map this resource type")
            plan.skipped[(kind, why)] = plan.skipped.get((kind, why), 0) + 1
    canonical = {id(e): f"Patient/{e.item.resource['id']}" for e in plan.patients.values()}
    _response_patients(plan, canonical, bad_patient_keys)
    for entry in checked:
        resource = entry.item.resource
        kind = resource["resourceType"]
        field_name = "patient" if kind == "Consent" else "subject"
        ref = reference_key(resource.get(field_name))
        target = plan.patients.get(ref or "")
        if target is None:
            why = (
                "was rejected (see its own error)"
                if ref in bad_patient_keys
                else "is not in this import (import the Patient with it)"
            )
            plan.rejected.append(
                ErrorDetail(
                    f"{entry.item.location}: {kind}.{field_name}",
                    f"refers to patient {ref}, which {why}",
                    (resource.get(field_name) or {}).get("reference"),
                )
            )
            continue
        entry.patient_key = canonical[id(target)]
        if kind == "Consent":
            state = consent_state(resource)
            if state is not None:
                plan.consents[entry.patient_key] = state
        else:
            plan.clinical.append(entry)
            _count_unmapped(plan, resource, entry.codes)
            if kind == "Observation":
                plan.components += len(mapped_components(resource, entry.codes))
    return plan


_NOT_IMPORTED = {
    "Questionnaire": "a form definition: register forms with careloop forms import",
    "Bundle": "a Bundle inside a Bundle is not read",
}


def _count_unmapped(plan: _Plan, resource: Mapping[str, Any], codes: Mapping[str, Coded]) -> None:
    for what, why in unmapped_elements(resource, codes):
        plan.skipped[(what, why)] = plan.skipped.get((what, why), 0) + 1


def _response_patients(plan: _Plan, canonical: dict[int, str], bad_patient_keys: set[str]) -> None:
    """Point each QuestionnaireResponse at the import's patient it names, if any.

    By reference (``Patient/id`` or a fullUrl), else by ``subject.identifier``
    value = the patient's MRN. The rest must be registry patients (looked up
    in the transaction); a subject whose Patient was rejected is rejected too.
    """
    if not plan.responses:
        return
    by_local_id = {
        patient_fields(e.item.resource).local_id: canonical[id(e)] for e in plan.patients.values()
    }
    kept: list[_Checked] = []
    for entry in plan.responses:
        subject = entry.item.resource.get("subject") or {}
        ref = reference_key(subject)
        target = plan.patients.get(ref or "")
        if target is not None:
            entry.patient_key = canonical[id(target)]
        elif ref in bad_patient_keys:
            plan.rejected.append(
                ErrorDetail(
                    f"{entry.item.location}: {RESPONSE_TYPE}.subject",
                    f"refers to patient {ref}, which was rejected (see its own error)",
                    subject.get("reference"),
                )
            )
            continue
        else:
            entry.patient_key = by_local_id.get(str((subject.get("identifier") or {}).get("value")))
        kept.append(entry)
    plan.responses = kept


# ---------------------------------------------------------------- the registry


def _target_site(work: Work, principal: Principal, code: str | None) -> Site:
    sites = list(work.session.scalars(select(Site).order_by(Site.code)))
    if code is None:
        if len(sites) != 1:
            raise InputError(
                f"This installation has {len(sites)} sites "
                f"({', '.join(s.code for s in sites) or 'none'}); say which one the "
                "patients belong to with --site."
            )
        chosen = sites[0]
    else:
        found = [s for s in sites if s.code == code.strip().upper()]
        if not found:
            raise NotFound(f"There is no site with code {code!r}.")
        chosen = found[0]
    if not work.scope.allows_site(chosen.id) or work.scope.patient_ids is not None:
        raise NotFound(f"There is no site with code {chosen.code!r} whose patients you can add.")
    write = principal.scope_for("record.write")
    if not write.allows_site(chosen.id) or write.patient_ids is not None:
        raise PermissionDenied(
            f"Importing clinical data needs record.write at {chosen.code}; your roles "
            f"({principal.role_label() or 'none'}) do not give it."
        )
    return chosen


def _read_responses(work: Work, site: Site, plan: _Plan) -> None:
    """Read each QuestionnaireResponse against its registered form and find its patient.

    Problems go to ``plan.rejected`` (located at the resource's FHIR paths);
    the rest to ``plan.form_answers``. Nothing is written here.
    """
    if not plan.responses:
        return
    registry_ids = _registry_patients(
        work, site, [e for e in plan.responses if e.patient_key is None]
    )
    seen: dict[tuple[str | int, str, date, str, int], str] = {}
    forms: dict[str, Form] = {}
    for entry in plan.responses:
        item = entry.item
        if not item.resource.get("questionnaire"):
            # Valid FHIR (the element is optional), but nothing says which form the
            # answers belong to: left out and counted, as other unmapped resources are.
            why = "names no Questionnaire, so careloop cannot tell which form it answers"
            plan.skipped[(RESPONSE_TYPE, why)] = plan.skipped.get((RESPONSE_TYPE, why), 0) + 1
            continue
        try:
            canonical = str(item.resource.get("questionnaire"))
            form = forms.get(canonical)
            if form is None:
                _, _, form = load_response_form(work.session, item.resource, location=item.location)
                forms[canonical] = form
            response = response_from_fhir(item.resource, form, location=item.location)
        except ValidationFailed as exc:
            plan.rejected.extend(exc.details)
            continue
        patient_id = registry_ids.get(id(entry))
        owner: str | int | None = entry.patient_key or patient_id
        if owner is None:
            subject = item.resource.get("subject") or {}
            named = subject.get("reference") or (subject.get("identifier") or {}).get("value")
            plan.rejected.append(
                ErrorDetail(
                    f"{item.location}: {RESPONSE_TYPE}.subject",
                    f"refers to patient {named}, which is not in this import nor a patient of "
                    f"site {site.code} (import the Patient with it, or register the patient)",
                    named,
                )
            )
            continue
        key = (
            owner,
            response.form,
            response.event_date,
            response.event_name,
            response.repeat_instance,
        )
        if key in seen:
            plan.rejected.append(
                ErrorDetail(
                    f"{item.location}: {RESPONSE_TYPE}",
                    f"a second response of this patient to form {response.form!r} on "
                    f"{response.event_date.isoformat()} (also at {seen[key]}); careloop keeps "
                    "one per patient, form and event date (and REDCap event and repeat "
                    "instance: give a second one the repeat-instance extension "
                    f"{REPEAT_INSTANCE_EXTENSION})",
                )
            )
            continue
        seen[key] = item.location
        plan.form_answers.append(_FormAnswer(item, response, entry.patient_key, patient_id))


def _registry_patients(work: Work, site: Site, entries: list[_Checked]) -> dict[int, int]:
    """Registry patient id of each response whose subject the import does not hold.

    ``subject.reference`` ``Patient/<pseudonym>`` (what careloop exports), else
    ``subject.identifier.value`` as the local id (MRN), at the import's site.
    """
    pseudonyms: dict[int, str] = {}
    local_ids: dict[int, str] = {}
    for entry in entries:
        subject = entry.item.resource.get("subject") or {}
        ref = reference_key(subject)
        if ref and ref.startswith("Patient/"):
            pseudonyms[id(entry)] = ref.removeprefix("Patient/")
        value = (subject.get("identifier") or {}).get("value")
        if value:
            local_ids[id(entry)] = str(value)
    by_pseudonym: dict[str, int] = {}
    by_local_id: dict[str, int] = {}
    wanted_p, wanted_l = sorted(set(pseudonyms.values())), sorted(set(local_ids.values()))
    for start in range(0, max(len(wanted_p), len(wanted_l)), 500):
        chunk_p, chunk_l = wanted_p[start : start + 500], wanted_l[start : start + 500]
        for pid, pseudo, local_id in work.session.execute(
            select(Patient.id, Patient.pseudo_id, Patient.local_id).where(
                Patient.site_id == site.id,
                Patient.pseudo_id.in_(chunk_p) | Patient.local_id.in_(chunk_l),
            )
        ):
            by_pseudonym[pseudo] = pid
            by_local_id[local_id] = pid
    found: dict[int, int] = {}
    for entry in entries:
        key = id(entry)
        match = by_pseudonym.get(pseudonyms.get(key, "")) or by_local_id.get(local_ids.get(key, ""))
        if match is not None:
            found[key] = match
    return found


def _save_responses(
    work: Work, plan: _Plan, persons: dict[str, _Person], path: Path
) -> dict[str, int]:
    """Create or replace the form responses (capture's rules, audit entry each), in bulk."""
    ids = {
        a.registry_patient_id if a.patient_key is None else persons[a.patient_key].person_id
        for a in plan.form_answers
    }
    patients: dict[int, Patient] = {}
    wanted = sorted(i for i in ids if i is not None)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        patients.update(
            (p.id, p) for p in work.session.scalars(select(Patient).where(Patient.id.in_(chunk)))
        )
    items: list[ResponseToSave] = []
    for answer in plan.form_answers:
        pid = (
            persons[answer.patient_key].person_id
            if answer.patient_key is not None
            else answer.registry_patient_id
        )
        patient = patients.get(pid) if pid is not None else None
        if patient is None:  # pragma: no cover - found in this transaction
            raise NotFound(f"There is no patient {pid}.")
        r = answer.response
        items.append(
            ResponseToSave(
                r.form,
                patient,
                r.event_date,
                r.values,
                r.status,
                version=r.form_version,
                patient_entered=r.patient_entered,
                event_name=r.event_name,
                repeat_instance=r.repeat_instance,
                location=f"{answer.item.location}: QuestionnaireResponse",
            )
        )
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for saved in save_responses(
        work, items, reason=f"FHIR import of {path.name}", via="fhir-import"
    ):
        counts[saved.outcome] += 1
    return counts


@dataclass(frozen=True)
class _Person:
    person_id: int
    pseudo_id: str
    birth_date: date | None
    sex: str
    consent_state: str


def _upsert_patients(
    work: Work, settings: Settings, site: Site, plan: _Plan
) -> tuple[dict[str, _Person], int, int]:
    """Register new patients, update known ones (by MRN); person per patient key."""
    session = work.session
    unique = {f"Patient/{e.item.resource['id']}": e for e in plan.patients.values()}
    fields = {key: patient_fields(e.item.resource) for key, e in unique.items()}
    local_ids = [f.local_id for f in fields.values()]
    existing: dict[str, Patient] = {}
    for start in range(0, len(local_ids), 500):
        chunk = local_ids[start : start + 500]
        for p in session.scalars(
            select(Patient).where(Patient.site_id == site.id, Patient.local_id.in_(chunk))
        ):
            existing[p.local_id] = p
    # New patients are added together and flushed once (ids for their consent records
    # and audit entries); the audit entries go in with one multi-row INSERT.
    new: dict[str, tuple[Patient, bool]] = {}
    records: list[ConsentRecord] = []
    events: list[AuditEvent] = []
    updated = 0
    for key, f in fields.items():
        wanted_consent = plan.consents.get(key)
        patient = existing.get(f.local_id)
        if patient is None:
            patient = Patient(
                site_id=site.id,
                local_id=f.local_id,
                pseudo_id=pseudonym(),
                given_name=f.given_name,
                family_name=f.family_name,
                birth_date=f.birth_date,
                sex=f.sex,
                consent_state=wanted_consent or settings.default_consent,
            )
            existing[f.local_id] = patient
            new[key] = (patient, wanted_consent is not None)
            continue
        changed = [
            name
            for name in ("given_name", "family_name", "birth_date", "sex")
            if getattr(patient, name) != getattr(f, name)
        ]
        for name in changed:
            setattr(patient, name, getattr(f, name))
        consent_changed = bool(wanted_consent) and wanted_consent != patient.consent_state
        if consent_changed:
            assert wanted_consent is not None
            events.append(
                work.event(
                    "update",
                    "consent",
                    patient=patient,
                    site_code=site.code,
                    details={"from": patient.consent_state, "to": wanted_consent, "method": "fhir"},
                )
            )
            patient.consent_state = wanted_consent
            records.append(
                ConsentRecord(
                    site_id=site.id,
                    patient_id=patient.id,
                    state=wanted_consent,
                    method="fhir",
                    recorded_by_user_id=work.principal.user_id,
                    recorded_at=utcnow(),
                )
            )
        if changed:
            events.append(
                work.event(
                    "update",
                    "demographics",
                    patient=patient,
                    site_code=site.code,
                    reason="FHIR import",
                    details={"fields": changed, "source": "fhir"},
                )
            )
        if changed or consent_changed:
            updated += 1
    session.add_all([patient for patient, _ in new.values()])
    session.flush()
    for patient, from_fhir in new.values():
        records.append(
            ConsentRecord(
                site_id=site.id,
                patient_id=patient.id,
                state=patient.consent_state,
                method="fhir" if from_fhir else "default",
                recorded_by_user_id=work.principal.user_id,
            )
        )
        events.append(
            work.event(
                "create",
                "demographics",
                patient=patient,
                site_code=site.code,
                details={"source": "fhir"},
            )
        )
    session.add_all(records)
    session.flush()
    append_many(session, events)
    persons = {
        key: _Person(p.id, p.pseudo_id, p.birth_date, p.sex, p.consent_state)
        for key, p in ((key, existing[f.local_id]) for key, f in fields.items())
    }
    return persons, len(new), updated


# ---------------------------------------------------------------- the warehouse


def _lookup_concepts(
    warehouse: Warehouse, plan: _Plan, units: set[str]
) -> tuple[dict[tuple[str, str], int], dict[int, int]]:
    """(vocabulary, code) → concept id, and which standard concepts exist."""
    wanted: set[tuple[str, str]] = {("UCUM", u) for u in units}
    for entry in plan.clinical:
        for coded in entry.codes.values():
            if coded.vocabulary_id is not None:
                wanted.add((coded.vocabulary_id, coded.code))
        for component in entry.item.resource.get("component") or []:
            unit = (component.get("valueQuantity") or {}).get("code")
            if isinstance(unit, str) and unit:
                wanted.add(("UCUM", unit))
    fixed = {*GENDER_CONCEPTS.values(), *VISIT_CONCEPTS.values()}
    fixed |= {EHR_TYPE_CONCEPT, PRESCRIPTION_TYPE_CONCEPT}
    concept = warehouse.table("concept")
    found: dict[tuple[str, str], int] = {}
    with quiet_engine_warnings():
        if wanted:
            vocabularies = sorted({v for v, _ in wanted})
            codes = sorted({c for _, c in wanted})
            frame = (
                concept.filter(
                    concept.vocabulary_id.isin(vocabularies) & concept.concept_code.isin(codes)
                )
                .select("concept_id", "vocabulary_id", "concept_code")
                .execute()
            )
            for cid, vocabulary, code in frame.itertuples(index=False):
                if (vocabulary, code) in wanted:
                    found[(vocabulary, code)] = int(cid)
        if plan.components:
            # The CDM field concepts a component row names its panel row with: looked
            # up by name, as the vocabulary's own codes for them are not fixed.
            names = sorted(FIELD_CONCEPT_NAMES.values())
            fields = (
                concept.filter(
                    concept.vocabulary_id.isin(["CDM"]) & concept.concept_name.isin(names)
                )
                .select("concept_id", "concept_name")
                .execute()
            )
            for cid, name in fields.itertuples(index=False):
                found[("CDM", name)] = int(cid)
        present = concept.filter(concept.concept_id.isin(sorted(fixed))).concept_id.execute()
    standard = {int(c): int(c) for c in present}
    return found, standard


def _write_warehouse(
    settings: Settings, site_code: str, plan: _Plan, persons: dict[str, _Person]
) -> tuple[dict[str, int], int]:
    """Put the persons and clinical rows into the warehouse in one transaction."""
    loaded_at = utcnow().replace(tzinfo=None)
    allowed = {
        key
        for key, person in persons.items()
        if person.consent_state == "improvement_and_research" and person.birth_date is not None
    }
    withheld_persons = {p.person_id for k, p in persons.items() if k not in allowed}
    units = {
        str(u)
        for e in plan.clinical
        for u in [(e.item.resource.get("valueQuantity") or {}).get("code")]
        if u
    }
    with Warehouse.from_settings(settings) as warehouse:
        warehouse.create_schema(tables=["person", *CLINICAL_TABLES, "concept"])
        warehouse.ensure_table(LINK_TABLE, LINK_SCHEMA)
        concepts, standard = _lookup_concepts(warehouse, plan, units)

        def concept(coded: Coded | None) -> int:
            if coded is None or coded.vocabulary_id is None:
                return 0
            return concepts.get((coded.vocabulary_id, coded.code), 0)

        def unit_concept(unit: str | None) -> int:
            return concepts.get(("UCUM", unit), 0) if unit else 0

        gender = {("Gender", s): standard.get(c, 0) for s, c in GENDER_CONCEPTS.items()}
        rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ("person", *CLINICAL_TABLES)}
        links: list[dict[str, Any]] = []
        for key in sorted(allowed):
            p = persons[key]
            assert p.birth_date is not None
            rows["person"].append(person_row(p.person_id, p.pseudo_id, p.birth_date, p.sex, gender))
        visits: dict[str, int] = {}
        for entry in plan.clinical:
            resource = entry.item.resource
            if resource["resourceType"] == "Encounter":
                vid = stable_id(site_code, "Encounter", str(resource["id"]))
                for ref in reference_keys(resource, entry.item.full_url):
                    visits[ref] = vid
        withheld = 0
        for entry in plan.clinical:
            if entry.patient_key not in allowed:
                withheld += 1
                continue
            resource = entry.item.resource
            mapped: MappedRow
            for mapped in clinical_rows(
                resource,
                site_code=site_code,
                person_id=persons[entry.patient_key].person_id,
                visit_id=visits.get(reference_key(resource.get("encounter")) or ""),
                codes={k: v for k, v in entry.codes.items()},
                concept=concept,
                unit_concept=unit_concept,
                standard=standard,
                loaded_at=loaded_at,
                zone=plan.zone,
            ):
                rows[mapped.table].append(mapped.row)
                links.append(mapped.link)
        counts = _replace_rows(warehouse, rows, links, withheld_persons)
    return counts, withheld


def _replace_rows(
    warehouse: Warehouse,
    rows: dict[str, list[dict[str, Any]]],
    links: list[dict[str, Any]],
    withheld_persons: set[int],
) -> dict[str, int]:
    """Upsert by resource into the FHIR source's store, then assemble the CDM tables; one swap.

    A resource imported again replaces every row it gave before (a panel sent
    again with fewer components keeps no stale component row); rows of
    ``withheld_persons`` (consent no longer allows the warehouse) go. The rows
    other sources hold (the registry's, loaded OMOP files') are left as they
    are (:mod:`careloop.interop.sources`).
    """
    stores = store_tables(warehouse)
    mine = sorted(stores["fhir"] | set(rows))
    stores["fhir"] = set(mine)
    public = sorted({t for tables in stores.values() for t in tables} | {"observation_period"})
    names = [*(store_name("fhir", t) for t in mine), LINK_TABLE, *public]
    counts: dict[str, int] = {}
    gone = sorted(withheld_persons)
    with warehouse.replacing(names, schemas=store_schemas("fhir", mine)) as swap:
        # The links first: the resources imported now, and the rows they gave before
        # (read now: the staged link table is filled further below).
        replaced: dict[str, list[int]] = {}
        if links:
            swap.insert(LINK_TABLE, pa.Table.from_pylist(links))
        if warehouse.has_table(LINK_TABLE):
            old_links = warehouse.table(LINK_TABLE)
            keep_links = old_links
            if links:
                again = _resources(warehouse.table(swap.stage(LINK_TABLE))).distinct()
                old = _resources(old_links)
                with quiet_engine_warnings():
                    stale = old.semi_join(again, RESOURCE_KEY).select("cdm_table", "cdm_id")
                    for table, cdm_id in stale.execute().itertuples(index=False):
                        replaced.setdefault(str(table), []).append(int(cdm_id))
                keep_links = old.anti_join(again, RESOURCE_KEY).drop(*_RESOURCE_PARTS)
            if gone:
                keep_links = keep_links.filter(~keep_links.person_id.isin(gone))
            swap.insert(LINK_TABLE, keep_links)
        for name in mine:
            data = rows.get(name, [])
            key = ID_COLUMNS.get(name)
            target = store_name("fhir", name)
            if data:
                swap.insert(target, pa.Table.from_pylist(data))
            counts[name] = len(data)
            if not warehouse.has_table(target):
                continue
            keep = warehouse.table(target)
            if data and key:
                keep = keep.anti_join(warehouse.table(swap.stage(target)), key)
            if replaced.get(name) and key:
                keep = keep.filter(~keep[key].isin(replaced[name]))
            if gone:
                keep = keep.filter(~keep.person_id.isin(gone))
            swap.insert(target, keep)
        assemble(warehouse, swap, public, stores)
    return counts


_RESOURCE_PARTS = ("careloop_resource_type", "careloop_resource_id")
RESOURCE_KEY = [*_RESOURCE_PARTS, "person_id"]
"""A resource within one patient (resource ids are per site, and so are person ids)."""


def _resources(links: ibis.Table) -> ibis.Table:
    """Links with the resource each row came from: an Observation's components
    (``Observation.component``, ``<id>/<n>``) belong to the Observation itself."""
    return links.mutate(
        careloop_resource_type=links.resource_type.re_extract(r"^([^.]*)", 1),
        careloop_resource_id=links.resource_id.re_extract(r"^([^/]*)", 1),
    )


def known_code_systems() -> list[str]:
    """The code systems careloop maps to OMOP vocabularies (for docs and errors)."""
    return sorted(CODE_SYSTEMS)
