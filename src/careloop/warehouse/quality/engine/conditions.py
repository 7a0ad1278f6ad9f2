"""The failing-row conditions of the field and plausibility checks, as Ibis reductions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import ibis
import ibis.expr.types as ir

from careloop.warehouse.quality.engine.context import Reduction, _Context, _n


def _fixed(failing: int, denominator: int) -> Callable[[_Context], tuple[int, int]]:
    def count(_ctx: _Context) -> tuple[int, int]:
        return failing, denominator

    return count


def _yob_out_of_range(low: int, high: int) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        return _n((t.year_of_birth < low) | (t.year_of_birth > high))

    return count


def _measurement_out_of_range(concept_id: int, low: float, high: float) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        value = t.value_as_number
        return _n(
            (t.measurement_concept_id == concept_id)
            & value.notnull()
            & ((value < low) | (value > high))
        )

    return count


def _measurement_with_value(concept_id: int) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        return _n((t.measurement_concept_id == concept_id) & t.value_as_number.notnull())

    return count


def _not_in(column: str, keys: ir.Column) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        return _n(t[column].notnull() & ~t[column].isin(keys))

    return count


def _nonzero_in(column: str, ids: ir.Column) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        return _n(t[column].notnull() & (t[column] != 0) & t[column].isin(ids))

    return count


def _date_out_of_range(column: str, low: date, high: date) -> Reduction:
    def count(t: ibis.Table) -> ir.IntegerScalar:
        return _n(t[column].notnull() & ((t[column] < low) | (t[column] > high)))

    return count
