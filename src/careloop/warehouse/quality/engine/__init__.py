"""Running the checks: every instance counted by the warehouse through Ibis.

Every instance counts failing rows against a denominator; it fails when
``percent`` exceeds its threshold (a threshold of ``None`` makes it
informational). The checks on one table are batched into a single aggregate
query (foreign keys and concept look-ups become ``IN (subquery)`` terms), so a
run costs a few dozen queries on any engine.
"""

from __future__ import annotations

from careloop.warehouse.quality.engine.completeness import (
    completeness_by_site,
)
from careloop.warehouse.quality.engine.context import (
    Reduction,
)
from careloop.warehouse.quality.engine.running import (
    run_checks,
)

__all__ = [
    "Reduction",
    "completeness_by_site",
    "run_checks",
]
