"""Clinical resources ↔ OMOP rows: Encounter, Condition, Observation, medications, Procedure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from careloop.fhir.codes import (
    LOCAL_SYSTEM_PREFIX,
    VOCABULARY_SYSTEMS,
)
from careloop.fhir.mapping.common import (
    ACT_CODE_SYSTEM,
    CONDITION_CLINICAL_SYSTEM,
    EHR_TYPE_CONCEPT,
    ID_COLUMNS,
    PRESCRIPTION_TYPE_CONCEPT,
    VISIT_CONCEPTS,
    Coded,
    _get,
    _is_missing,
    event_when,
    format_when,
    parse_when,
    stable_id,
)

# ---------------------------------------------------------------- clinical resources → rows


@dataclass
class MappedRow:
    """One OMOP row and its link row."""

    table: str
    row: dict[str, Any]
    link: dict[str, Any]


ConceptLookup = Callable[[Coded | None], int]

COMPONENT = "Observation.component"
"""``resource_type`` of the link rows of Observation components (``resource_id`` ``<id>/<i>``)."""
FIELD_CONCEPT_NAMES = {
    "measurement": "measurement.measurement_id",
    "observation": "observation.observation_id",
}
"""The OMOP CDM field concepts (vocabulary ``CDM``) that name a component's panel row."""
NUMBER_VALUES = ("valueQuantity", "valueInteger")
"""Observation values that become ``measurement`` rows; the rest become ``observation`` rows."""


def field_concept(concept: ConceptLookup, table: str) -> int:
    """The concept id of ``<table>.<table>_id`` when the warehouse's vocabulary has it, else 0."""
    return concept(Coded("", FIELD_CONCEPT_NAMES[table], None, "CDM"))


def clinical_rows(
    resource: Mapping[str, Any],
    *,
    site_code: str,
    person_id: int,
    visit_id: int | None,
    codes: Mapping[str, Coded],
    concept: ConceptLookup,
    unit_concept: Callable[[str | None], int],
    standard: Mapping[int, int],
    loaded_at: datetime,
    zone: tzinfo | None = None,
) -> list[MappedRow]:
    """The OMOP rows of one validated clinical resource (Encounter … Procedure).

    One row per resource, and for an Observation one more per component
    (blood pressure and other panels) that has a code careloop knows and a
    value: each component row has its own code, value and unit, and points
    at the panel's row (``measurement_event_id``/``observation_event_id``,
    with the CDM field concept of the panel row's id when the vocabulary has
    it). Dates and times are on the site's clock (``zone``; see
    :func:`parse_when`).
    """
    kind = resource["resourceType"]
    rid = str(resource["id"])
    row_id = stable_id(site_code, kind, rid)
    start_day, start_at = event_when(resource, zone)
    assert start_day is not None  # checked by check_resource
    link: dict[str, Any] = {
        "cdm_id": row_id,
        "person_id": person_id,
        "resource_type": kind,
        "resource_id": rid,
        "status": resource.get("status"),
        "loaded_at": loaded_at,
        "code_system": None,
        "code": None,
        "display": None,
        "value_system": None,
        "value_code": None,
        "value_display": None,
    }
    ehr = standard.get(EHR_TYPE_CONCEPT, 0)
    common = _RowContext(person_id, visit_id, start_day, start_at, ehr, concept, unit_concept)
    if kind == "Encounter":
        return _visit_rows(resource, common, row_id=row_id, link=link, zone=zone, standard=standard)
    code_path = (
        f"{kind}.medicationCodeableConcept" if kind.startswith("Medication") else f"{kind}.code"
    )
    coded = codes.get(code_path)
    if coded is not None:
        link.update(code_system=coded.system, code=coded.code, display=coded.display)
    source = coded.code[:50] if coded else None
    concept_id = concept(coded)
    coded_as = (row_id, link, concept_id, source)
    if kind == "Condition":
        return _condition_rows(resource, common, *coded_as, zone=zone)
    if kind == "Procedure":
        return _procedure_rows(resource, common, *coded_as, zone=zone)
    if kind in ("MedicationRequest", "MedicationStatement"):
        return _drug_rows(resource, common, *coded_as, zone=zone, kind=kind, standard=standard)
    return _observation_rows(resource, common, *coded_as, codes=codes, site_code=site_code)


def _visit_rows(
    resource: Mapping[str, Any],
    common: _RowContext,
    *,
    row_id: int,
    link: dict[str, Any],
    zone: tzinfo | None,
    standard: Mapping[int, int],
) -> list[MappedRow]:
    """The visit_occurrence row of an Encounter."""
    end_day, end_at = parse_when(_get(resource, "period.end"), zone)
    klass = (resource.get("class") or {}).get("code")
    link.update(code_system=(resource.get("class") or {}).get("system"), code=klass)
    row = {
        "visit_occurrence_id": row_id,
        "person_id": common.person_id,
        "visit_concept_id": standard.get(VISIT_CONCEPTS.get(klass or "", -1), 0),
        "visit_start_date": common.day,
        "visit_start_datetime": common.moment,
        "visit_end_date": end_day or common.day,
        "visit_end_datetime": end_at,
        "visit_type_concept_id": common.ehr,
        "visit_source_value": klass,
    }
    return [MappedRow("visit_occurrence", row, {**link, "cdm_table": "visit_occurrence"})]


def _condition_rows(
    resource: Mapping[str, Any],
    common: _RowContext,
    row_id: int,
    link: dict[str, Any],
    concept_id: int,
    source: str | None,
    *,
    zone: tzinfo | None,
) -> list[MappedRow]:
    """The condition_occurrence row of a Condition."""
    end_day, end_at = parse_when(
        resource.get("abatementDateTime") or _get(resource, "abatementPeriod.end"), zone
    )
    statuses: list[dict[str, Any]] = (resource.get("clinicalStatus") or {}).get("coding") or []
    clinical = statuses[0].get("code") if statuses else None
    row = {
        "condition_occurrence_id": row_id,
        "person_id": common.person_id,
        "condition_concept_id": concept_id,
        "condition_start_date": common.day,
        "condition_start_datetime": common.moment,
        "condition_end_date": end_day,
        "condition_end_datetime": end_at,
        "condition_type_concept_id": common.ehr,
        "visit_occurrence_id": common.visit_id,
        "condition_source_value": source,
        "condition_source_concept_id": concept_id,
        "condition_status_source_value": clinical,
    }
    return [MappedRow("condition_occurrence", row, {**link, "cdm_table": "condition_occurrence"})]


def _procedure_rows(
    resource: Mapping[str, Any],
    common: _RowContext,
    row_id: int,
    link: dict[str, Any],
    concept_id: int,
    source: str | None,
    *,
    zone: tzinfo | None,
) -> list[MappedRow]:
    """The procedure_occurrence row of a Procedure."""
    end_day, end_at = parse_when(_get(resource, "performedPeriod.end"), zone)
    row = {
        "procedure_occurrence_id": row_id,
        "person_id": common.person_id,
        "procedure_concept_id": concept_id,
        "procedure_date": common.day,
        "procedure_datetime": common.moment,
        "procedure_end_date": end_day,
        "procedure_end_datetime": end_at,
        "procedure_type_concept_id": common.ehr,
        "visit_occurrence_id": common.visit_id,
        "procedure_source_value": source,
        "procedure_source_concept_id": concept_id,
    }
    return [MappedRow("procedure_occurrence", row, {**link, "cdm_table": "procedure_occurrence"})]


def _drug_rows(
    resource: Mapping[str, Any],
    common: _RowContext,
    row_id: int,
    link: dict[str, Any],
    concept_id: int,
    source: str | None,
    *,
    zone: tzinfo | None,
    kind: str,
    standard: Mapping[int, int],
) -> list[MappedRow]:
    """The drug_exposure row of a MedicationRequest or MedicationStatement."""
    end_day, end_at = parse_when(_get(resource, "effectivePeriod.end"), zone)
    dosage = (resource.get("dosageInstruction") or resource.get("dosage") or [{}])[0]
    row = {
        "drug_exposure_id": row_id,
        "person_id": common.person_id,
        "drug_concept_id": concept_id,
        "drug_exposure_start_date": common.day,
        "drug_exposure_start_datetime": common.moment,
        # OMOP requires an end date; without one the exposure is taken as one day.
        "drug_exposure_end_date": end_day or common.day,
        "drug_exposure_end_datetime": end_at,
        "drug_type_concept_id": standard.get(PRESCRIPTION_TYPE_CONCEPT, 0)
        if kind == "MedicationRequest"
        else common.ehr,
        "sig": dosage.get("text"),
        "visit_occurrence_id": common.visit_id,
        "drug_source_value": source,
        "drug_source_concept_id": concept_id,
    }
    return [MappedRow("drug_exposure", row, {**link, "cdm_table": "drug_exposure"})]


def _observation_rows(
    resource: Mapping[str, Any],
    common: _RowContext,
    row_id: int,
    link: dict[str, Any],
    concept_id: int,
    source: str | None,
    *,
    codes: Mapping[str, Coded],
    site_code: str,
) -> list[MappedRow]:
    """The rows of an Observation: the panel's, then one per mapped component."""
    rid = str(resource["id"])
    # Observation: a number goes to measurement, anything else to observation. A panel
    # without a value of its own goes where its components' numbers go.
    components = mapped_components(resource, codes)
    numeric = any(key in resource for key in NUMBER_VALUES) or (
        not has_observation_value(resource)
        and any(any(key in c for key in NUMBER_VALUES) for _, c in components)
    )
    panel = _observation_row(
        resource,
        "measurement" if numeric else "observation",
        common,
        row_id=row_id,
        concept_id=concept_id,
        source=source,
        value=codes.get("Observation.valueCodeableConcept"),
        link=link,
        event=None,
    )
    rows = [panel]
    for index, component in components:
        coded_part = codes[f"Observation.component[{index}].code"]
        part_id = stable_id(site_code, COMPONENT, f"{rid}/{index}")
        part_link = {
            **link,
            "cdm_id": part_id,
            "resource_type": COMPONENT,
            "resource_id": f"{rid}/{index}",
            "code_system": coded_part.system,
            "code": coded_part.code,
            "display": coded_part.display,
        }
        part_concept = common.concept(coded_part)
        rows.append(
            _observation_row(
                component,
                "measurement" if any(k in component for k in NUMBER_VALUES) else "observation",
                common,
                row_id=part_id,
                concept_id=part_concept,
                source=coded_part.code[:50],
                value=codes.get(f"Observation.component[{index}].valueCodeableConcept"),
                link=part_link,
                event=(
                    panel.row[ID_COLUMNS[panel.table]],
                    field_concept(common.concept, panel.table),
                ),
            )
        )
    return rows


def has_observation_value(item: Mapping[str, Any]) -> bool:
    """Whether an Observation (or a component) carries a value careloop maps."""
    return any(key in item for key in (*NUMBER_VALUES, "valueCodeableConcept", "valueString"))


def mapped_components(
    resource: Mapping[str, Any], codes: Mapping[str, Coded]
) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, component) of the components that become rows: a known code and a value."""
    out: list[tuple[int, Mapping[str, Any]]] = []
    for index, component in enumerate(resource.get("component") or []):
        if not isinstance(component, dict) or f"Observation.component[{index}].code" not in codes:
            continue
        if _component_problem(index, component, codes) is None:
            out.append((index, component))
    return out


def _component_problem(
    index: int, component: Any, codes: Mapping[str, Coded]
) -> tuple[str, str] | None:
    """Why a component does not become a row, as (element, reason); None when it does."""
    path = f"Observation.component[{index}]"
    if not isinstance(component, dict):
        return "Observation.component", "not an element careloop can read"
    if f"{path}.code" not in codes:
        return (
            "Observation.component",
            "its code has no coding in a code system careloop knows",
        )
    if "dataAbsentReason" in component and not has_observation_value(component):
        return "Observation.component", "no value (dataAbsentReason)"
    quantity = component.get("valueQuantity")
    if quantity is not None and quantity.get("value") is None:
        return "Observation.component", "a valueQuantity without a value"
    if "valueCodeableConcept" in component and f"{path}.valueCodeableConcept" not in codes:
        return (
            "Observation.component",
            "its coded value has no coding in a code system careloop knows",
        )
    other = next((k for k in component if k.startswith("value")), None)
    if not has_observation_value(component):
        if other is not None:
            return f"Observation.component.{other}", "a value of this type is not mapped"
        return "Observation.component", "no value"
    return None


_NOT_KEPT = "not mapped to OMOP"
UNMAPPED_ELEMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "Patient": (
        ("deceasedBoolean", "death is not recorded yet (OMOP death table)"),
        ("deceasedDateTime", "death is not recorded yet (OMOP death table)"),
        ("address", "not kept: identifying (the registry keeps MRN, name, birth date, sex)"),
        ("telecom", "not kept: identifying (the registry keeps MRN, name, birth date, sex)"),
        ("maritalStatus", _NOT_KEPT),
        ("communication", _NOT_KEPT),
        ("multipleBirthBoolean", _NOT_KEPT),
        ("multipleBirthInteger", _NOT_KEPT),
        ("extension", "extensions (e.g. US Core race, ethnicity, birth sex) are not read"),
    ),
    "Encounter": (
        ("reasonCode", _NOT_KEPT),
        ("diagnosis", _NOT_KEPT),
        ("hospitalization", "admission source and discharge disposition are not mapped"),
        ("type", "the visit keeps its class (AMB, IMP, EMER, HH) only"),
    ),
    "Condition": (
        ("severity", _NOT_KEPT),
        ("bodySite", _NOT_KEPT),
        ("stage", _NOT_KEPT),
        ("evidence", _NOT_KEPT),
    ),
    "Observation": (
        ("valueBoolean", "a value of this type is not mapped (the row keeps code and date)"),
        ("valueDateTime", "a value of this type is not mapped (the row keeps code and date)"),
        ("valueTime", "a value of this type is not mapped (the row keeps code and date)"),
        ("valuePeriod", "a value of this type is not mapped (the row keeps code and date)"),
        ("valueRange", "a value of this type is not mapped (the row keeps code and date)"),
        ("valueRatio", "a value of this type is not mapped (the row keeps code and date)"),
        ("valueSampledData", "a value of this type is not mapped (the row keeps code and date)"),
        ("dataAbsentReason", "no value: the row keeps code and date"),
        ("interpretation", _NOT_KEPT),
        ("referenceRange", _NOT_KEPT),
        ("bodySite", _NOT_KEPT),
        ("hasMember", "member Observations are imported as rows of their own, not linked"),
    ),
    "MedicationRequest": (
        ("dispenseRequest", _NOT_KEPT),
        ("reasonCode", _NOT_KEPT),
    ),
    "MedicationStatement": (("reasonCode", _NOT_KEPT),),
    "Procedure": (
        ("bodySite", _NOT_KEPT),
        ("reasonCode", _NOT_KEPT),
        ("outcome", _NOT_KEPT),
        ("complication", _NOT_KEPT),
    ),
}
"""Elements with clinical content that careloop reads but does not keep: counted, never silent."""


def unmapped_elements(
    resource: Mapping[str, Any], codes: Mapping[str, Coded]
) -> list[tuple[str, str]]:
    """(element, reason) of what a mapped resource holds that careloop does not keep.

    Besides the elements of :data:`UNMAPPED_ELEMENTS`: Observation components
    that do not become rows, and dosage instructions after the first (whose
    text becomes ``sig``).
    """
    kind = resource["resourceType"]
    out = [
        (f"{kind}.{name}", reason)
        for name, reason in UNMAPPED_ELEMENTS.get(kind, ())
        if resource.get(name) not in (None, [], {})
    ]
    if kind == "Observation":
        for index, component in enumerate(resource.get("component") or []):
            problem = _component_problem(index, component, codes)
            if problem is not None:
                out.append(problem)
    if kind == "Patient":
        others = len(resource.get("identifier") or []) - 1
        out.extend(
            [("Patient.identifier", "not kept: only the MRN is kept (as local id)")] * others
        )
    if kind in ("MedicationRequest", "MedicationStatement"):
        name = "dosageInstruction" if kind == "MedicationRequest" else "dosage"
        extra = len(resource.get(name) or []) - 1
        out.extend([(f"{kind}.{name}", "only the first dosage's text is kept (as sig)")] * extra)
    return out


@dataclass(frozen=True)
class _RowContext:
    """What an Observation's rows share: patient, visit, when, type and concept lookups."""

    person_id: int
    visit_id: int | None
    day: date
    moment: datetime | None
    ehr: int
    concept: ConceptLookup
    unit_concept: Callable[[str | None], int]


def _observation_row(
    item: Mapping[str, Any],
    table: str,
    context: _RowContext,
    *,
    row_id: int,
    concept_id: int,
    source: str | None,
    value: Coded | None,
    link: dict[str, Any],
    event: tuple[int, int] | None,
) -> MappedRow:
    """The row of an Observation or of one of its components (``item``) in ``table``.

    ``event`` is (panel row id, CDM field concept of that id) for a component.
    Every row of a table has the same columns, components or not.
    """
    link = {**link, "cdm_table": table}
    if table == "measurement":
        quantity = item.get("valueQuantity")
        number = quantity.get("value") if quantity else item.get("valueInteger")
        unit = (quantity or {}).get("code") or (quantity or {}).get("unit")
        if quantity is None and "valueInteger" in item:
            link["value_system"] = "integer"
        row = {
            "measurement_id": row_id,
            "person_id": context.person_id,
            "measurement_concept_id": concept_id,
            "measurement_date": context.day,
            "measurement_datetime": context.moment,
            "measurement_type_concept_id": context.ehr,
            "value_as_number": float(number) if number is not None else None,
            "unit_concept_id": context.unit_concept(unit),
            "unit_source_value": unit,
            "visit_occurrence_id": context.visit_id,
            "measurement_source_value": source,
            "measurement_source_concept_id": concept_id,
            "measurement_event_id": event[0] if event else None,
            "meas_event_field_concept_id": event[1] if event else None,
        }
        return MappedRow("measurement", row, link)
    row = {
        "observation_id": row_id,
        "person_id": context.person_id,
        "observation_concept_id": concept_id,
        "observation_date": context.day,
        "observation_datetime": context.moment,
        "observation_type_concept_id": context.ehr,
        "value_as_string": item.get("valueString"),
        "value_as_concept_id": context.concept(value) if value is not None else None,
        "visit_occurrence_id": context.visit_id,
        "observation_source_value": source,
        "observation_source_concept_id": concept_id,
        "value_source_value": value.code[:50] if value else None,
        "observation_event_id": event[0] if event else None,
        "obs_event_field_concept_id": event[1] if event else None,
    }
    if value is not None:
        link.update(value_system=value.system, value_code=value.code, value_display=value.display)
    return MappedRow("observation", row, link)


# ---------------------------------------------------------------- rows → resources


def _coding(system: Any, code: Any, display: Any) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if isinstance(display, str) and display:
        out["display"] = display
    return out


def row_coding(
    link: Mapping[str, Any], concept_id: Any, vocab: Mapping[int, tuple[str, str, str]]
) -> dict[str, Any] | None:
    """The coding of an OMOP row: as sent (link table), else its concept, else local."""
    if isinstance(link.get("code"), str):
        return _coding(link["code_system"], link["code"], link.get("display"))
    known = vocab.get(int(concept_id)) if concept_id and not _is_missing(concept_id) else None
    if known is not None:
        vocabulary_id, code, name = known
        system = VOCABULARY_SYSTEMS.get(vocabulary_id, f"{LOCAL_SYSTEM_PREFIX}{vocabulary_id}")
        return _coding(system, code, name)
    return None


def _opt(value: Any) -> Any:
    return None if value is None or _is_missing(value) else value


def resource_of_row(
    table: str,
    row: Mapping[str, Any],
    link: Mapping[str, Any],
    *,
    patient_id: str,
    vocab: Mapping[int, tuple[str, str, str]],
    visit_resource_ids: Mapping[int, str],
    zone: tzinfo,
) -> dict[str, Any]:
    """An OMOP row (with its link row, if any) as a FHIR resource.

    Long because it is one branch per OMOP table, each building that table's FHIR
    resource from its columns, the inverse of clinical_rows.

    Rows that did not come from FHIR get ids such as ``measurement-42``;
    times get the offset of ``zone``, the patient's site's time zone.
    """
    id_column = ID_COLUMNS[table]
    rid = link.get("resource_id") or f"{table.replace('_', '-')}-{int(row[id_column])}"
    subject = {"reference": f"Patient/{patient_id}"}
    visit = _opt(row.get("visit_occurrence_id"))
    encounter = {}
    if visit is not None:
        visit_id = visit_resource_ids.get(int(visit), f"visit-occurrence-{int(visit)}")
        encounter = {"encounter": {"reference": f"Encounter/{visit_id}"}}
    if table == "visit_occurrence":
        period = {
            "start": format_when(
                row["visit_start_date"], _opt(row.get("visit_start_datetime")), zone=zone
            ),
            "end": format_when(
                row["visit_end_date"], _opt(row.get("visit_end_datetime")), zone=zone
            ),
        }
        klass = _opt(link.get("code")) or _opt(row.get("visit_source_value")) or "AMB"
        return {
            "resourceType": "Encounter",
            "id": rid,
            "status": _opt(link.get("status")) or "finished",
            "class": {"system": _opt(link.get("code_system")) or ACT_CODE_SYSTEM, "code": klass},
            "subject": subject,
            "period": {k: v for k, v in period.items() if v},
        }
    if table == "condition_occurrence":
        out: dict[str, Any] = {
            "resourceType": "Condition",
            "id": rid,
            "subject": subject,
            **encounter,
            "onsetDateTime": format_when(
                row["condition_start_date"], _opt(row.get("condition_start_datetime")), zone=zone
            ),
        }
        coding = row_coding(link, row.get("condition_concept_id"), vocab)
        out["code"] = {"coding": [coding]} if coding else {"text": "unknown"}
        status = _opt(row.get("condition_status_source_value"))
        if status:
            out["clinicalStatus"] = {
                "coding": [{"system": CONDITION_CLINICAL_SYSTEM, "code": status}]
            }
        end = format_when(
            _opt(row.get("condition_end_date")), _opt(row.get("condition_end_datetime")), zone=zone
        )
        if end:
            out["abatementDateTime"] = end
        return out
    if table in ("measurement", "observation"):
        prefix = "measurement" if table == "measurement" else "observation"
        out = {
            "resourceType": "Observation",
            "id": rid,
            "status": _opt(link.get("status")) or "final",
            "subject": subject,
            **encounter,
            "effectiveDateTime": format_when(
                row[f"{prefix}_date"], _opt(row.get(f"{prefix}_datetime")), zone=zone
            ),
        }
        coding = row_coding(link, row.get(f"{prefix}_concept_id"), vocab)
        out["code"] = {"coding": [coding]} if coding else {"text": "unknown"}
        number = _opt(row.get("value_as_number"))
        if table == "measurement" and number is not None:
            if link.get("value_system") == "integer":
                out["valueInteger"] = int(number)
            else:
                unit = _opt(row.get("unit_source_value"))
                quantity: dict[str, Any] = {"value": float(number)}
                if unit:
                    quantity.update(unit=unit, system="http://unitsofmeasure.org", code=unit)
                out["valueQuantity"] = quantity
        elif isinstance(link.get("value_code"), str):
            out["valueCodeableConcept"] = {
                "coding": [
                    _coding(link["value_system"], link["value_code"], link.get("value_display"))
                ]
            }
        elif _opt(row.get("value_as_string")) is not None:
            out["valueString"] = row["value_as_string"]
        elif number is not None:
            out["valueQuantity"] = {"value": float(number)}
        return out
    if table == "drug_exposure":
        kind = (
            "MedicationRequest"
            if link.get("resource_type") != "MedicationStatement"
            else ("MedicationStatement")
        )
        coding = row_coding(link, row.get("drug_concept_id"), vocab)
        start = format_when(
            row["drug_exposure_start_date"],
            _opt(row.get("drug_exposure_start_datetime")),
            zone=zone,
        )
        out = {
            "resourceType": kind,
            "id": rid,
            "status": _opt(link.get("status"))
            or ("completed" if kind.endswith("Statement") else "active"),
            "subject": subject,
            "medicationCodeableConcept": {"coding": [coding]} if coding else {"text": "unknown"},
        }
        if kind == "MedicationRequest":
            out.update(intent="order", authoredOn=start, **encounter)
        else:
            out["effectiveDateTime"] = start
        return out
    out = {
        "resourceType": "Procedure",
        "id": rid,
        "status": _opt(link.get("status")) or "completed",
        "subject": subject,
        **encounter,
        "performedDateTime": format_when(
            row["procedure_date"], _opt(row.get("procedure_datetime")), zone=zone
        ),
    }
    coding = row_coding(link, row.get("procedure_concept_id"), vocab)
    out["code"] = {"coding": [coding]} if coding else {"text": "unknown"}
    return out
