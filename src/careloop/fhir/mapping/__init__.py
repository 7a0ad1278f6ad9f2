"""The mapping between FHIR R4 resources and careloop: registry patients and OMOP rows.

One function per direction and resource type, on plain dicts (the JSON of a
resource that fhir.resources has already validated), so the same code serves
the importer, the exporter and the REST API. docs/fhir.md has the table.

Stable keys: a clinical resource's OMOP id is a 63-bit hash of (site code,
resource type, resource id), so importing the same resource again replaces
its row instead of adding one. ``careloop_fhir_link`` (a careloop table in
the warehouse) keeps, per OMOP row, the resource type and id it came from and
the coding as sent (system, code, display), which OMOP's ``*_source_value``
columns cannot hold; the exporter reads it back.
"""

from careloop.fhir.mapping.clinical import (
    COMPONENT,
    FIELD_CONCEPT_NAMES,
    NUMBER_VALUES,
    UNMAPPED_ELEMENTS,
    ConceptLookup,
    MappedRow,
    clinical_rows,
    field_concept,
    has_observation_value,
    mapped_components,
    resource_of_row,
    row_coding,
    unmapped_elements,
)
from careloop.fhir.mapping.common import (
    ACT_CODE_SYSTEM,
    CLINICAL_TABLES,
    CONDITION_CLINICAL_SYSTEM,
    CONSENT_STATES,
    EHR_TYPE_CONCEPT,
    GENDER_CONCEPTS,
    ID_COLUMNS,
    LINK_SCHEMA,
    LINK_TABLE,
    MAPPED_TYPES,
    PRESCRIPTION_TYPE_CONCEPT,
    VISIT_CONCEPTS,
    Coded,
    ConsentState,
    PatientFields,
    check_resource,
    choose_coding,
    coded_fields,
    component_coded_fields,
    consent_state,
    event_when,
    format_when,
    parse_when,
    patient_fields,
    reference_key,
    reference_keys,
    stable_id,
)
from careloop.fhir.mapping.patients import (
    consent_resource,
    patient_resource,
    person_row,
)

__all__ = [
    "ACT_CODE_SYSTEM",
    "CLINICAL_TABLES",
    "COMPONENT",
    "CONDITION_CLINICAL_SYSTEM",
    "CONSENT_STATES",
    "EHR_TYPE_CONCEPT",
    "FIELD_CONCEPT_NAMES",
    "GENDER_CONCEPTS",
    "ID_COLUMNS",
    "LINK_SCHEMA",
    "LINK_TABLE",
    "MAPPED_TYPES",
    "NUMBER_VALUES",
    "PRESCRIPTION_TYPE_CONCEPT",
    "UNMAPPED_ELEMENTS",
    "VISIT_CONCEPTS",
    "Coded",
    "ConceptLookup",
    "ConsentState",
    "MappedRow",
    "PatientFields",
    "check_resource",
    "choose_coding",
    "clinical_rows",
    "coded_fields",
    "component_coded_fields",
    "consent_resource",
    "consent_state",
    "event_when",
    "field_concept",
    "format_when",
    "has_observation_value",
    "mapped_components",
    "parse_when",
    "patient_fields",
    "patient_resource",
    "person_row",
    "reference_key",
    "reference_keys",
    "resource_of_row",
    "row_coding",
    "stable_id",
    "unmapped_elements",
]
