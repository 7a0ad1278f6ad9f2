"""OMOP Common Data Model 5.4: the warehouse tables, their columns and types.

The tables are transcribed from OHDSI's CommonDataModel repository,
``inst/ddl/5.4/postgresql/OMOPCDM_postgresql_5.4_ddl.sql`` and
``inst/csv/OMOP_CDMv5.4_Field_Level.csv`` (column, ``isRequired``,
``cdmDatatype``, ``fkTableName``, ``fkDomain``). Two deliberate choices:

- every CDM ``integer`` is stored as a 64-bit integer (``BIGINT``): OHDSI
  allows it, and large networks overflow 32-bit event ids;
- ``float``/``NUMERIC`` is stored as a double, ``datetime`` as a timestamp
  without time zone, ``varchar(n)`` as an unbounded string (the length is
  kept here and checked by a data-quality check instead of by the loader).

CDM 5.3 input (e.g. OHDSI's Eunomia) is accepted: :data:`CDM53_RENAMES`
maps the columns that 5.4 renamed, and :data:`COMPAT_DEFAULTS` fills the
few required 5.4 columns that 5.3 lacks.
"""

from __future__ import annotations

from careloop.warehouse.omop_schema.model import (
    CDM_VERSION,
    CdmType,
    OmopColumn,
    OmopTable,
    TableKind,
)
from careloop.warehouse.omop_schema.tables import (
    CDM53_RENAMES,
    CLINICAL_EVENT_TABLES,
    COMPAT_DEFAULTS,
    TABLES,
    omop_schema,
    table_spec,
)

__all__ = [
    "CDM53_RENAMES",
    "CDM_VERSION",
    "CLINICAL_EVENT_TABLES",
    "COMPAT_DEFAULTS",
    "TABLES",
    "CdmType",
    "OmopColumn",
    "OmopTable",
    "TableKind",
    "omop_schema",
    "table_spec",
]
