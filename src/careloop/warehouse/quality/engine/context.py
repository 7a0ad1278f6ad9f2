"""One run's view of the warehouse (its tables and row counts) and the instances it counts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir

from careloop.warehouse.connection import Warehouse
from careloop.warehouse.omop_schema import TABLES
from careloop.warehouse.quality.catalogue import (
    CheckDefinition,
)

Reduction = Callable[[ibis.Table], ir.IntegerScalar]


@dataclass(frozen=True)
class _Instance:
    definition: CheckDefinition
    table: str | None
    column: str | None = None
    concept_id: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    # Either both reductions over ``table`` (batched), or ``custom``.
    failing: Reduction | None = None
    denominator: Reduction | None = None
    custom: Callable[[_Context], tuple[int, int]] | None = None

    @property
    def check_id(self) -> str:
        parts = [self.definition.name]
        parts += [p for p in (self.table, self.column) if p]
        if self.concept_id is not None:
            parts.append(str(self.concept_id))
        return ".".join(parts)

    @property
    def description(self) -> str:
        return self.definition.description.format(
            table=self.table, column=self.column, concept=self.concept_id, **self.params
        )


class _Context:
    def __init__(self, warehouse: Warehouse, today: date) -> None:
        self.warehouse = warehouse
        self.today = today
        self.present = set(warehouse.list_tables())
        self._tables: dict[str, ibis.Table] = {}
        self.counts: dict[str, int] = {}
        names = [n for n in TABLES if n in self.present]
        if names:
            # One query for all row counts rather than one per table.
            parts = [
                self.t(n)
                .aggregate(careloop_rows=ibis._.count())
                .mutate(careloop_table=ibis.literal(n))
                for n in names
            ]
            frame = ibis.union(*parts).execute() if len(parts) > 1 else parts[0].execute()
            self.counts = {str(r.careloop_table): int(r.careloop_rows) for r in frame.itertuples()}

    def t(self, name: str) -> ibis.Table:
        if name not in self._tables:
            self._tables[name] = self.warehouse.ibis.table(name)
        return self._tables[name]

    def has_rows(self, name: str) -> bool:
        return self.counts.get(name, 0) > 0

    def columns(self, name: str) -> set[str]:
        return set(self.t(name).columns) if name in self.present else set()


def _n(expr: ir.BooleanValue) -> ir.IntegerScalar:
    # CASE rather than a cast: PostgreSQL cannot cast boolean to bigint.
    return ibis.ifelse(expr, 1, 0).sum().coalesce(0)


def _rows(t: ibis.Table) -> ir.IntegerScalar:
    return t.count()
