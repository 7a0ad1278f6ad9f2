"""Fixtures of the FHIR tests: the warehouse engines come from the warehouse tests."""

from tests.warehouse.conftest import engine_url, omop_small, warehouse  # noqa: F401  (shared fixtures)
