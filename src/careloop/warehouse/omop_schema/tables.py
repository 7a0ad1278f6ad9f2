"""The CDM 5.4 tables parsed, the clinical event tables, and CDM 5.3 compatibility."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import ibis

from careloop.core.errors import NotFound
from careloop.warehouse.omop_schema.cdm54 import _SPEC
from careloop.warehouse.omop_schema.model import CDM_VERSION, CdmType, OmopColumn, OmopTable

_VARCHAR = re.compile(r"varchar\((\d+|max)\)", re.IGNORECASE)


def _parse_column(line: str) -> OmopColumn:
    name, raw_type, *flags = line.split()
    max_length: int | None = None
    cdm_type: CdmType
    if match := _VARCHAR.fullmatch(raw_type):
        cdm_type = "string"
        max_length = None if match.group(1).lower() == "max" else int(match.group(1))
    elif raw_type in ("integer", "float", "date", "datetime"):
        cdm_type = raw_type  # type: ignore[assignment]
    else:  # pragma: no cover - guards the table text above
        raise ValueError(f"unknown CDM type {raw_type!r} for {name}")
    options = dict(flag.split("=", 1) for flag in flags if "=" in flag)
    return OmopColumn(
        name=name,
        cdm_type=cdm_type,
        required="req" in flags,
        max_length=max_length,
        primary_key="pk" in flags,
        fk_table=options.get("fk"),
        fk_domain=options["domain"].replace("_", " ") if "domain" in options else None,
    )


def _parse_spec(text: str) -> dict[str, OmopTable]:
    tables: dict[str, OmopTable] = {}
    for block in text.strip().split("\n\n"):
        header, *lines = block.strip().splitlines()
        name, kind = header.split()
        columns = tuple(_parse_column(line.strip()) for line in lines)
        tables[name] = OmopTable(name=name, kind=kind, columns=columns)  # type: ignore[arg-type]
    return tables


TABLES: Mapping[str, OmopTable] = MappingProxyType(_parse_spec(_SPEC))
"""Every OMOP CDM 5.4 table careloop knows, by name, in CDM order."""

CLINICAL_EVENT_TABLES: Mapping[str, tuple[str, str, str | None]] = MappingProxyType(
    {
        # table: (concept column, start date column, end date column)
        "visit_occurrence": ("visit_concept_id", "visit_start_date", "visit_end_date"),
        "visit_detail": (
            "visit_detail_concept_id",
            "visit_detail_start_date",
            "visit_detail_end_date",
        ),
        "condition_occurrence": (
            "condition_concept_id",
            "condition_start_date",
            "condition_end_date",
        ),
        "drug_exposure": (
            "drug_concept_id",
            "drug_exposure_start_date",
            "drug_exposure_end_date",
        ),
        "procedure_occurrence": ("procedure_concept_id", "procedure_date", "procedure_end_date"),
        "device_exposure": (
            "device_concept_id",
            "device_exposure_start_date",
            "device_exposure_end_date",
        ),
        "measurement": ("measurement_concept_id", "measurement_date", None),
        "observation": ("observation_concept_id", "observation_date", None),
        "specimen": ("specimen_concept_id", "specimen_date", None),
        "note": ("note_type_concept_id", "note_date", None),
    }
)
"""Person-level event tables: their main concept column, start date and end date."""

CDM53_RENAMES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "visit_occurrence": MappingProxyType(
            {
                "admitting_source_concept_id": "admitted_from_concept_id",
                "admitting_source_value": "admitted_from_source_value",
                "discharge_to_concept_id": "discharged_to_concept_id",
                "discharge_to_source_value": "discharged_to_source_value",
            }
        ),
        "visit_detail": MappingProxyType(
            {
                "admitting_source_concept_id": "admitted_from_concept_id",
                "admitting_source_value": "admitted_from_source_value",
                "discharge_to_concept_id": "discharged_to_concept_id",
                "discharge_to_source_value": "discharged_to_source_value",
                "visit_detail_parent_id": "parent_visit_detail_id",
            }
        ),
        # CDM 5.3 spelt it so.
        "cost": MappingProxyType({"reveue_code_source_value": "revenue_code_source_value"}),
    }
)
"""CDM 5.3 column names that 5.4 renamed, per table: ``{old: new}``."""

COMPAT_DEFAULTS: Mapping[tuple[str, str], int] = MappingProxyType(
    {
        # New and required in 5.4; 0 is OMOP's "no matching concept".
        ("cdm_source", "cdm_version_concept_id"): 0,
    }
)
"""Values for required 5.4 columns that a CDM 5.3 file does not have."""


def table_spec(name: str) -> OmopTable:
    """The OMOP table called ``name`` (case-insensitive).

    Raises:
        NotFound: ``name`` is not an OMOP CDM 5.4 table careloop knows.
    """
    try:
        return TABLES[name.lower()]
    except KeyError:
        raise NotFound(
            f"{name!r} is not an OMOP CDM {CDM_VERSION} table. "
            f"Known tables: {', '.join(sorted(TABLES))}."
        ) from None


def omop_schema(name: str) -> ibis.Schema:
    """The Ibis schema of the OMOP table ``name``."""
    return table_spec(name).schema()
