"""What a CDM table and a CDM column are, and the Ibis type of each CDM type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.datatypes as dt

from careloop.core.errors import NotFound

CDM_VERSION = "5.4"

CdmType = Literal["integer", "float", "date", "datetime", "string"]
TableKind = Literal["clinical", "health_system", "economic", "derived", "metadata", "vocabulary"]


@dataclass(frozen=True)
class OmopColumn:
    """One column of an OMOP CDM table."""

    name: str
    """Column name as the CDM spells it (lower case)."""
    cdm_type: CdmType
    """The CDM data type family: integer, float, date, datetime or string."""
    required: bool
    """``isRequired`` in the CDM: the column is NOT NULL."""
    max_length: int | None = None
    """For ``varchar(n)`` columns, ``n``; ``None`` for unbounded text and non-strings."""
    primary_key: bool = False
    """The table's primary key (not enforced by the warehouse; checked for uniqueness)."""
    fk_table: str | None = None
    """Table the column refers to (``concept`` for every ``*_concept_id``)."""
    fk_domain: str | None = None
    """For concept columns, the vocabulary domain the CDM expects (``Condition``, ``Gender``…)."""

    @property
    def dtype(self) -> dt.DataType:
        """The Ibis data type, nullable unless the column is required."""
        base = _IBIS_TYPES[self.cdm_type]
        return base.copy(nullable=not self.required)

    @property
    def is_concept(self) -> bool:
        """True for columns that hold a concept id."""
        return self.fk_table == "concept"


@dataclass(frozen=True)
class OmopTable:
    """One OMOP CDM table."""

    name: str
    """Table name (lower case)."""
    kind: TableKind
    """Which part of the CDM the table belongs to."""
    columns: tuple[OmopColumn, ...]
    """Columns in CDM order."""

    def schema(self) -> ibis.Schema:
        """The table as an Ibis schema (required columns non-nullable)."""
        return ibis.schema({c.name: c.dtype for c in self.columns})

    def column(self, name: str) -> OmopColumn:
        """The column called ``name``; :class:`NotFound` if there is none."""
        for col in self.columns:
            if col.name == name:
                return col
        raise NotFound(f"OMOP table {self.name} has no column {name!r}.")

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in CDM order."""
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Names of the NOT NULL columns."""
        return tuple(c.name for c in self.columns if c.required)

    @property
    def primary_key(self) -> str | None:
        """Name of the primary-key column, if the table has one."""
        return next((c.name for c in self.columns if c.primary_key), None)

    @property
    def has_person(self) -> bool:
        """True when rows belong to a person (``person_id`` column)."""
        return "person_id" in self.column_names


_IBIS_TYPES: Mapping[str, dt.DataType] = {
    "integer": dt.int64,
    "float": dt.float64,
    "date": dt.date,
    "datetime": dt.timestamp,
    "string": dt.string,
}
