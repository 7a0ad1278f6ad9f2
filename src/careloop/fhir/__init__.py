"""careloop.fhir: HL7 FHIR R4 in and out of careloop.

- :func:`import_fhir` reads Bundles, NDJSON files and Bulk Data folders into
  the registry (patients, consent, questionnaire responses) and the
  warehouse (the warehouse source ``fhir``).
- :func:`export_fhir` writes the caller's patients and their rows as Bulk
  Data NDJSON with a manifest.
- :mod:`careloop.fhir.server` decides what the read-only REST API serves;
  :mod:`careloop.fhir.mapping` is the mapping both directions share;
  :mod:`careloop.fhir.read` reads and validates input, one resource at a time;
  :mod:`careloop.fhir.codes` holds value sets and code-system checks.

FHIR sits above the warehouse (imports write warehouse rows, exports read
them); the warehouse never imports FHIR.
"""

from careloop.fhir.exporting import FhirExportReport, export_fhir
from careloop.fhir.importing import FhirImportReport, ImportMode, import_fhir
from careloop.fhir.read import ReadResult, read_path

__all__ = [
    "FhirExportReport",
    "FhirImportReport",
    "ImportMode",
    "ReadResult",
    "export_fhir",
    "import_fhir",
    "read_path",
]
