"""careloop.interop: the OMOP CDM 5.4 warehouse (placeholder exports, completed below)."""
