"""What careloop's read-only FHIR R4 REST API serves: read and search, scoped and audited.

The web layer (``careloop.web.fhir_api``) only translates HTTP; these
functions decide what the caller may see:

- Patient: the care team (``patient.read``) gets identifiable Patients of
  their sites; analysts (``patient.read_pseudonymised``) get pseudonymised
  ones (no identifier, no name, year of birth only) and may not search by
  identifier, name or birth date. A Patient's id is its pseudonym.
- Observation: the care team (``record.read``) and analysts read the
  warehouse rows of the patients they may see.
- Questionnaire: every signed-in user with a role reads the form definitions.

A resource of another site answers "not found", exactly as one that does not
exist. Identifiable reads and searches write an audit entry naming the
patients returned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from careloop import __version__
from careloop.core.errors import InputError, NotFound, PermissionDenied, StoredFormUnreadable
from careloop.fhir.exporting import (
    ScopedPatient,
    clinical_resources,
    fhir_patient,
    observation_persons,
    scoped_patient,
    scoped_patients,
)
from careloop.fhir.mapping import parse_when
from careloop.store.database import Registry
from careloop.store.models import Patient
from careloop.store.scoping import Scope
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work
from careloop.warehouse.connection import WarehouseOpener

if TYPE_CHECKING:
    from careloop.capture.entry import ResponseWithSubject

ResourceType = Literal["Patient", "Observation", "Questionnaire", "QuestionnaireResponse"]
SERVED_TYPES: tuple[ResourceType, ...] = (
    "Patient",
    "Observation",
    "Questionnaire",
    "QuestionnaireResponse",
)
SEARCH_PARAMS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "Patient": (
        ("_id", "token", "The pseudonymous id."),
        ("identifier", "token", "The MRN: [system|]value."),
        ("family", "string", "Family name (starts with, any case)."),
        ("birthdate", "date", "Date of birth, with eq/ne/lt/le/gt/ge prefixes."),
    ),
    "Observation": (
        ("_id", "token", "The Observation's id."),
        ("patient", "reference", "Patient/<pseudonym> or the pseudonym."),
        ("subject", "reference", "Same as patient."),
        ("code", "token", "[system|]code."),
        ("date", "date", "effective date, with eq/ne/lt/le/gt/ge prefixes."),
    ),
    "Questionnaire": (
        ("_id", "token", "The Questionnaire's id."),
        ("name", "string", "The form's name."),
        ("url", "uri", "urn:careloop:form:<name>."),
    ),
    "QuestionnaireResponse": (
        ("_id", "token", "response-<n>."),
        ("patient", "reference", "Patient/<pseudonym> or the pseudonym."),
        ("subject", "reference", "Same as patient."),
        ("questionnaire", "reference", "urn:careloop:form:<name>[|version]."),
    ),
}
# Result parameters clients send that do not change which resources match (ignored).
COMMON_PARAMS = ("_count", "_format", "_summary", "_total", "_totalMethod", "_pretty", "_elements")
DEFAULT_COUNT = 100
MAX_COUNT = 1000
MAX_ROW_ID = 2**63 - 1
"""The largest id a registry row can have (a signed 64-bit integer)."""


@dataclass(frozen=True)
class SearchResult:
    """The resources a search matched, for a searchset Bundle."""

    resource_type: str
    """The type searched."""
    total: int
    """How many matched in all."""
    resources: tuple[dict[str, Any], ...]
    """The first ``_count`` of them."""


Params = Mapping[str, Sequence[str]]


def _patient_access(principal: Principal) -> tuple[str, bool]:
    """The action to read Patients under, and whether the caller sees identifiers."""
    if principal.scope_for("patient.read") != Scope.nothing():
        return "patient.read", True
    return "patient.read_pseudonymised", False


def _clinical_action(principal: Principal) -> str:
    if principal.scope_for("record.read") != Scope.nothing():
        return "record.read"
    return "patient.read_pseudonymised"


def _count(params: Params) -> int:
    raw = (params.get("_count") or [str(DEFAULT_COUNT)])[-1]
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"_count must be a whole number, not {raw!r}.") from None
    return max(0, min(value, MAX_COUNT))


def _unknown_params(kind: str, params: Params) -> None:
    allowed = {name for name, _, _ in SEARCH_PARAMS[kind]} | set(COMMON_PARAMS)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InputError(
            f"careloop does not support the {kind} search parameter(s) {', '.join(unknown)}; "
            f"use {', '.join(sorted(allowed))}."
        )


_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge")


def date_matches(value: date | None, criterion: str) -> bool:
    """FHIR date search on a day: ``ge2021-01-01``, ``2021``, ``lt2022-03`` …"""
    prefix = criterion[:2] if criterion[:2] in _PREFIXES else "eq"
    text = criterion[2:] if criterion[:2] in _PREFIXES else criterion
    try:
        low, _ = parse_when(text)
    except ValueError:
        raise InputError(
            f"{criterion!r} is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)."
        ) from None
    assert low is not None
    if len(text) == 4:
        high = date(low.year, 12, 31)
    elif len(text) == 7:
        following = date(low.year + low.month // 12, low.month % 12 + 1, 1)
        high = date.fromordinal(following.toordinal() - 1)
    else:
        high = low
    if value is None:
        return False
    return {
        "eq": low <= value <= high,
        "ne": not low <= value <= high,
        "lt": value < low,
        "le": value <= high,
        "gt": value > high,
        "ge": value >= low,
    }[prefix]


def _token(criterion: str) -> tuple[str | None, str]:
    system, bar, code = criterion.partition("|")
    return (system or None, code) if bar else (None, criterion)


# ---------------------------------------------------------------- Patient


def _patient_matches(p: ScopedPatient, params: Params, identifiable: bool) -> bool:
    if not identifiable:
        for name in ("identifier", "family", "birthdate"):
            if name in params:
                raise PermissionDenied(
                    f"Searching Patients by {name} needs identifiable access (patient.read); "
                    "your role sees pseudonymised patients only."
                )
    for value in params.get("_id", []):
        if p.pseudo_id not in value.split(","):
            return False
    for value in params.get("identifier", []):
        system, code = _token(value)
        if code != p.local_id or (system not in (None, f"urn:careloop:site:{p.site_code}:mrn")):
            return False
    for value in params.get("family", []):
        if not (p.family_name or "").lower().startswith(value.lower()):
            return False
    return all(date_matches(p.birth_date, value) for value in params.get("birthdate", []))


def search_patients(registry: Registry, principal: Principal, params: Params) -> SearchResult:
    """Patients the caller may see that match ``params`` (FHIR search semantics, AND)."""
    _unknown_params("Patient", params)
    count = _count(params)
    action, identifiable = _patient_access(principal)
    with unit_of_work(registry, principal, action) as work:
        matched = [p for p in scoped_patients(work) if _patient_matches(p, params, identifiable)]
        if identifiable:
            work.audit(
                "read",
                "demographics",
                details={
                    "fhir_search": "Patient",
                    "params": sorted(params),
                    "results": len(matched),
                    "patient_ids": [p.id for p in matched[:count]],
                },
            )
        return SearchResult(
            "Patient",
            len(matched),
            tuple(fhir_patient(p, identifiable=identifiable) for p in matched[:count]),
        )


def read_patient(registry: Registry, principal: Principal, pseudo_id: str) -> dict[str, Any]:
    """One Patient by id (its pseudonym); NotFound when it does not exist or is out of scope."""
    action, identifiable = _patient_access(principal)
    with unit_of_work(registry, principal, action) as work:
        if identifiable:
            work.expect("read", "demographics", details={"fhir_read": f"Patient/{pseudo_id}"})
        row = work.session.scalar(select(Patient).where(Patient.pseudo_id == pseudo_id))
        if row is None:
            raise NotFound(f"There is no Patient/{pseudo_id} that you can see.")
        found = scoped_patient(work, row)
        if identifiable:
            work.audit(
                "read",
                "demographics",
                patient=row,
                site_code=found.site_code,
                details={"fhir_read": f"Patient/{pseudo_id}", "patient_ids": [found.id]},
            )
        return fhir_patient(found, identifiable=identifiable)


# ---------------------------------------------------------------- Observation


def _observation_matches(resource: Mapping[str, Any], params: Params) -> bool:
    for value in params.get("_id", []):
        if resource["id"] not in value.split(","):
            return False
    for value in params.get("code", []):
        options = [_token(v) for v in value.split(",")]
        codings = resource.get("code", {}).get("coding", [])
        if not any(
            c.get("code") == code and (system is None or c.get("system") == system)
            for system, code in options
            for c in codings
        ):
            return False
    when = resource.get("effectiveDateTime")
    day = parse_when(when)[0] if isinstance(when, str) else None
    return all(date_matches(day, value) for value in params.get("date", []))


def _patient_filter(params: Params) -> set[str] | None:
    wanted: set[str] | None = None
    for name in ("patient", "subject"):
        for value in params.get(name, []):
            ids = {v.rsplit("/", 1)[-1] for v in value.split(",")}
            wanted = ids if wanted is None else wanted & ids
    return wanted


def search_observations(
    warehouse: WarehouseOpener, registry: Registry, principal: Principal, params: Params
) -> SearchResult:
    """Observations of the patients the caller may see that match ``params``."""
    _unknown_params("Observation", params)
    count = _count(params)
    action = _clinical_action(principal)
    with unit_of_work(registry, principal, action) as work:
        patients = scoped_patients(work)
        wanted = _patient_filter(params)
        if wanted is not None:
            patients = [p for p in patients if p.pseudo_id in wanted]
        resources = _observations(warehouse, patients)
        matched = [r for r in resources if _observation_matches(r, params)]
        shown = matched[:count]
        if action == "record.read":
            by_pseudo = {p.pseudo_id: p.id for p in patients}
            work.audit(
                "read",
                "clinical",
                details={
                    "fhir_search": "Observation",
                    "params": sorted(params),
                    "results": len(matched),
                    "patient_ids": sorted(
                        {by_pseudo[r["subject"]["reference"].split("/")[1]] for r in shown}
                    ),
                },
            )
        return SearchResult("Observation", len(matched), tuple(shown))


def read_observation(
    warehouse: WarehouseOpener, registry: Registry, principal: Principal, resource_id: str
) -> dict[str, Any]:
    """One Observation by id; NotFound when it does not exist or is out of scope.

    Only the rows of the patient the id belongs to are read (not every
    patient's), and the audit entry names that patient.
    """
    action = _clinical_action(principal)
    missing = NotFound(f"There is no Observation/{resource_id} that you can see.")
    with unit_of_work(registry, principal, action) as work:
        if action == "record.read":
            work.expect("read", "clinical", details={"fhir_read": f"Observation/{resource_id}"})
        opened = warehouse()
        if opened is None:
            raise missing
        with opened:
            for person_id in sorted(observation_persons(opened, resource_id)):
                row = work.session.get(Patient, person_id)
                if row is None:
                    continue  # not a patient the caller may see
                patient = scoped_patient(work, row)
                resource = next(
                    (
                        r
                        for r in clinical_resources(
                            opened,
                            {patient.id: patient.pseudo_id},
                            time_zones={patient.id: patient.time_zone},
                            tables=("measurement", "observation"),
                        )
                        if r["resourceType"] == "Observation" and r["id"] == resource_id
                    ),
                    None,
                )
                if resource is None:
                    continue
                if action == "record.read":
                    work.audit(
                        "read",
                        "clinical",
                        patient=row,
                        site_code=patient.site_code,
                        details={
                            "fhir_read": f"Observation/{resource_id}",
                            "patient_ids": [patient.id],
                        },
                    )
                return resource
        raise missing


def _observations(
    warehouse: WarehouseOpener, patients: Sequence[ScopedPatient]
) -> list[dict[str, Any]]:
    opened = warehouse() if patients else None
    if opened is None:
        return []
    with opened:
        return clinical_resources(
            opened,
            {p.id: p.pseudo_id for p in patients},
            time_zones={p.id: p.time_zone for p in patients},
            tables=("measurement", "observation"),
        )


# ---------------------------------------------------------------- Questionnaire


def _questionnaires(registry: Registry, principal: Principal) -> list[dict[str, Any]]:
    from careloop.capture.forms_store import get_form, list_forms
    from careloop.capture.questionnaire import form_to_questionnaire

    out = []
    for summary in list_forms(registry, principal):
        if summary.problem:
            continue  # cannot be read (forms list says why): the others are still served
        stored = get_form(registry, principal, summary.name)
        model = form_to_questionnaire(stored.form)
        out.append(model.model_dump(mode="json", exclude_none=True))
    return out


def search_questionnaires(registry: Registry, principal: Principal, params: Params) -> SearchResult:
    """The registry's forms as Questionnaires, matching ``_id``, ``name`` or ``url``."""
    _unknown_params("Questionnaire", params)
    count = _count(params)
    matched = []
    for q in _questionnaires(registry, principal):
        ok = all(q["id"] in v.split(",") for v in params.get("_id", []))
        ok = ok and all(
            q.get("name", "").lower().startswith(v.lower()) for v in params.get("name", [])
        )
        ok = ok and all(q.get("url") == v.split("|")[0] for v in params.get("url", []))
        if ok:
            matched.append(q)
    return SearchResult("Questionnaire", len(matched), tuple(matched[:count]))


def read_questionnaire(
    registry: Registry, principal: Principal, resource_id: str
) -> dict[str, Any]:
    """One Questionnaire by id (the form's name with ``-`` for ``_``).

    Only that form is read; an id cut to FHIR's 64 characters from a longer
    name is looked for among all forms.
    """
    from careloop.capture.forms_store import get_form
    from careloop.capture.questionnaire import form_to_questionnaire

    if len(resource_id) < 64:
        try:
            stored = get_form(registry, principal, resource_id.replace("-", "_"))
        except (NotFound, StoredFormUnreadable):
            stored = None
        if stored is not None:
            found = form_to_questionnaire(stored.form).model_dump(mode="json", exclude_none=True)
            if found["id"] == resource_id:
                return dict(found)
        raise NotFound(f"There is no Questionnaire/{resource_id}.")
    result = search_questionnaires(registry, principal, {"_id": [resource_id]})
    if not result.resources:
        raise NotFound(f"There is no Questionnaire/{resource_id}.")
    return result.resources[0]


# ---------------------------------------------------------------- QuestionnaireResponse


def search_questionnaire_responses(
    registry: Registry, principal: Principal, params: Params
) -> SearchResult:
    """Form responses of the patients the caller may see (``record.read``), as FHIR.

    The resources are built by the capture layer's own FHIR export code, so
    the API and ``careloop fhir export`` give the same QuestionnaireResponse.
    Only the first ``_count`` responses are built, and the search's one audit
    entry names the patients of those.
    """
    from careloop.capture.entry import find_responses

    _unknown_params("QuestionnaireResponse", params)
    count = _count(params)
    forms_wanted: set[str] | None = None
    for value in params.get("questionnaire", []):
        names = {v.split("|")[0].removeprefix("urn:careloop:form:") for v in value.split(",")}
        forms_wanted = names if forms_wanted is None else forms_wanted & names
    ids: set[int] | None = None
    for value in params.get("_id", []):
        numbers = {n for n in map(_response_number, value.split(",")) if n is not None}
        ids = numbers if ids is None else ids & numbers
    matches = find_responses(
        registry,
        principal,
        forms=forms_wanted,
        patients=_patient_filter(params),
        response_ids=ids,
        limit=count,
        details={"fhir_search": "QuestionnaireResponse", "params": sorted(params)},
    )
    return SearchResult(
        "QuestionnaireResponse",
        matches.total,
        tuple(_questionnaire_response(found) for found in matches.found),
    )


def _response_number(resource_id: str) -> int | None:
    """n of ``response-<n>``; None for any other id (no response has it)."""
    number = resource_id.removeprefix("response-")
    if number == resource_id or not number.isascii() or not number.isdigit():
        return None
    value = int(number)
    return value if 0 < value <= MAX_ROW_ID else None


def _questionnaire_response(found: ResponseWithSubject) -> dict[str, Any]:
    # The capture layer's builder: one QuestionnaireResponse shape in careloop.
    from careloop.capture.fhir_responses import ResponseSubject, response_to_fhir

    view = found.view
    subject = ResponseSubject(pseudo_id=found.pseudo_id, site=view.site, local_id=found.local_id)
    resource = response_to_fhir(
        view, form=found.form, form_version=view.form_version, subject=subject
    )
    out: dict[str, Any] = json.loads(resource.model_dump_json(exclude_none=True))
    return out


def read_questionnaire_response(
    registry: Registry, principal: Principal, resource_id: str
) -> dict[str, Any]:
    """One QuestionnaireResponse by id (``response-<n>``): that response only is read."""
    from careloop.capture.entry import get_response_with_subject

    missing = NotFound(f"There is no QuestionnaireResponse/{resource_id} that you can see.")
    number = _response_number(resource_id)
    if number is None:
        raise missing
    try:
        found = get_response_with_subject(
            registry,
            principal,
            number,
            details={"fhir_read": f"QuestionnaireResponse/{resource_id}"},
        )
    except NotFound:
        raise missing from None
    return _questionnaire_response(found)


# ---------------------------------------------------------------- dispatch and metadata


def read_resource(
    warehouse: WarehouseOpener,
    registry: Registry,
    principal: Principal,
    kind: str,
    resource_id: str,
) -> dict[str, Any]:
    """Read one resource of a served type."""
    if kind == "Patient":
        return read_patient(registry, principal, resource_id)
    if kind == "Observation":
        return read_observation(warehouse, registry, principal, resource_id)
    if kind == "Questionnaire":
        return read_questionnaire(registry, principal, resource_id)
    if kind == "QuestionnaireResponse":
        return read_questionnaire_response(registry, principal, resource_id)
    raise _unsupported(kind)


def search(
    warehouse: WarehouseOpener, registry: Registry, principal: Principal, kind: str, params: Params
) -> SearchResult:
    """Search one served type."""
    if kind == "Patient":
        return search_patients(registry, principal, params)
    if kind == "Observation":
        return search_observations(warehouse, registry, principal, params)
    if kind == "Questionnaire":
        return search_questionnaires(registry, principal, params)
    if kind == "QuestionnaireResponse":
        return search_questionnaire_responses(registry, principal, params)
    raise _unsupported(kind)


def _unsupported(kind: str) -> NotFound:
    return NotFound(
        f"careloop's FHIR API does not serve {kind}; it serves {', '.join(SERVED_TYPES)}."
    )


def capability_statement(base_url: str, *, now: datetime) -> dict[str, Any]:
    """The server's CapabilityStatement (validated by fhir.resources)."""
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    resources = [
        {
            "type": kind,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": name, "type": kind_, "documentation": doc}
                for name, kind_, doc in SEARCH_PARAMS[kind]
            ],
        }
        for kind in SERVED_TYPES
    ]
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.isoformat(),
        "kind": "instance",
        "software": {"name": "careloop", "version": __version__},
        "implementation": {"description": "careloop read-only FHIR R4 API", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Bearer tokens (careloop token create); results are "
                    "limited to the caller's sites and role.",
                },
                "resource": resources,
            }
        ],
    }
    CapabilityStatement.model_validate(statement)
    return statement
