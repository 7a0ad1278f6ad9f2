"""The example paediatric IBD registry (ImproveCareNow-style) as a content package.

- ``forms/ibd_registry.yaml`` (the source) and ``forms/ibd_registry.csv`` (the
  same forms as a REDCap data dictionary): a visit form and a patient-reported
  symptoms form.
- :mod:`careloop.content.ibd.concepts`: the concept map from their fields to
  OMOP concepts (careloop-local ids for local codes) and answer labels.
- ``measures/``: the IBD quality measures (remission, steroids, PUCAI, …).
- ``knowledge/``: two knowledge objects (a steroid review, methotrexate safety).
- ``demo_measures/``: visit-level measures the demo's dashboard adds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from careloop.content.ibd.concepts import ANSWER_LABELS, CONCEPT_MAP
from careloop.core.content import ContentPackage

__all__ = ["DEMO_MEASURES", "PACKAGE", "ROOT"]

ROOT: Final = Path(__file__).resolve().parent
"""The folder of the IBD content package's files."""

PACKAGE: Final = ContentPackage(
    name="ibd",
    title="Paediatric IBD registry (ImproveCareNow-style)",
    description=(
        "A clinic visit form and a symptoms PROM for children with inflammatory bowel "
        "disease, with measures of remission, steroid use and data completeness."
    ),
    root=ROOT,
    forms={"yaml": "forms/ibd_registry.yaml", "redcap": "forms/ibd_registry.csv"},
    concept_map=CONCEPT_MAP,
    answer_labels=ANSWER_LABELS,
    measures="measures",
    knowledge="knowledge",
)
"""The IBD registry, as the engine sees it."""

DEMO_MEASURES: Final = ROOT / "demo_measures"
"""Visit-level measures the demo adds to the dashboard (a measures folder)."""
