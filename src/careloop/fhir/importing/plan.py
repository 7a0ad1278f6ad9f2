"""What an import will do: the report, the plan of validated resources, why one is refused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal

from careloop.capture.fhir_responses import (
    ResponseFromFhir,
)
from careloop.core.errors import (
    ErrorDetail,
    ValidationFailed,
)
from careloop.fhir.mapping import (
    MAPPED_TYPES,
    Coded,
    ConsentState,
    check_resource,
    consent_state,
    mapped_components,
    patient_fields,
    reference_key,
    reference_keys,
    unmapped_elements,
)
from careloop.fhir.read import (
    Skipped,
    SourceResource,
    validate,
)
from careloop.trust.provenance import InputRecord

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
