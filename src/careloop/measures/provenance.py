"""A measure run in the registry's provenance chain.

The results and a summary row of each run stay in the warehouse
(``careloop_measure_result``, ``careloop_measure_run``) beside the data they
were computed from; :func:`record_measure_run` adds the run to the one chain
in the registry, with the warehouse's own provenance (the last refresh and
the loads since) as its parents, so that a knowledge object citing the run
(``evidence: provenance:<id>``) and a card it produced can be followed back to
the source files.
"""

from __future__ import annotations

from collections.abc import Sequence

from careloop.measures.runner import MeasureRun
from careloop.store.database import Registry
from careloop.trust.principal import Principal
from careloop.trust.provenance import InputRecord, Provenance, record_provenance

__all__ = ["ACTIVITY", "record_measure_run"]

ACTIVITY = "measures.run"
"""The provenance activity of a measure run."""


def record_measure_run(
    registry: Registry,
    principal: Principal,
    run: MeasureRun,
    *,
    warehouse_url: str,
    parent_ids: Sequence[int] = (),
) -> Provenance:
    """Record one provenance entry for ``run``: its measures (by definition hash), period and rows.

    Args:
        registry: Where the chain is kept.
        principal: Who ran the measures.
        run: The run, as :func:`careloop.measures.runner.run_measures` returned it.
        warehouse_url: The warehouse it read (password hidden).
        parent_ids: What the warehouse held (``careloop.warehouse.refresh.warehouse_provenance``).
    """
    return record_provenance(
        registry,
        principal,
        activity=ACTIVITY,
        target=f"measure run {run.run_id}",
        started_at=run.run_at,
        parameters={
            "run_id": run.run_id,
            "from": run.start.isoformat(),
            "to": run.end.isoformat(),
            "by": list(run.by),
            "warehouse": warehouse_url,
        },
        inputs=[InputRecord(f"measure {m}", h) for m, h in sorted(run.hashes.items())],
        outputs={
            "rows": len(run.results),
            "measures": sorted(run.hashes),
            "failures": [f.measure_id for f in run.failures],
        },
        rows_out=len(run.results),
        parent_ids=parent_ids,
    )
