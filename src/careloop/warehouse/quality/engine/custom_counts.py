"""Checks counted by a query of their own (across tables), not in a table's batch."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd

from careloop.warehouse.quality.engine.context import _Context, _n


def _scalar(expr: ir.Scalar) -> int:
    value = expr.execute()
    return 0 if value is None or pd.isna(value) else int(value)


def _person_gap(ctx: _Context, *, name: str) -> tuple[int, int]:
    person = ctx.t("person")
    other = ctx.t(name)
    missing = person.filter(~person.person_id.isin(other.person_id)).count()
    return _scalar(missing), ctx.counts["person"]


def _overlaps(ctx: _Context) -> tuple[int, int]:
    op = ctx.t("observation_period")
    a = op.select(
        pid=op.person_id,
        aid=op.observation_period_id,
        a_start=op.observation_period_start_date,
        a_end=op.observation_period_end_date,
    )
    b = op.select(
        bpid=op.person_id,
        bid=op.observation_period_id,
        b_start=op.observation_period_start_date,
        b_end=op.observation_period_end_date,
    )
    pairs = a.join(b, [a.pid == b.bpid, a.aid != b.bid, a.a_start <= b.b_end, b.b_start <= a.a_end])
    return _scalar(pairs.aid.nunique()), ctx.counts["observation_period"]


def _birth_join(ctx: _Context, name: str, column: str) -> ibis.Table:
    person = ctx.t("person").select(pid=ibis._.person_id, yob=ibis._.year_of_birth)
    events = ctx.t(name).select(pid=ibis._.person_id, day=ibis._[column])
    return events.join(person, "pid", how="inner")


def _before_birth(ctx: _Context, name: str, column: str) -> tuple[int, int]:
    joined = _birth_join(ctx, name, column)
    failing = _n(joined.day.year() < joined.yob)
    return _scalar(failing), _scalar(_n(joined.day.notnull()))


def _too_old(ctx: _Context, name: str, column: str, age: int) -> tuple[int, int]:
    joined = _birth_join(ctx, name, column)
    failing = _n((joined.day.year() - joined.yob) > age)
    return _scalar(failing), _scalar(_n(joined.day.notnull()))


def _after_death(ctx: _Context, name: str, column: str, days: int) -> tuple[int, int]:
    death = ctx.t("death")
    deaths = death.group_by(pid=death.person_id).agg(died=death.death_date.min())
    events = ctx.t(name).select(pid=ibis._.person_id, day=ibis._[column])
    joined = events.join(deaths, "pid", how="inner")
    failing = _n(joined.day > joined.died + ibis.interval(days=days))
    return _scalar(failing), ctx.counts[name]


def _outside_observation(ctx: _Context, name: str, column: str) -> tuple[int, int]:
    op = ctx.t("observation_period")
    events = ctx.t(name).select(pid=ibis._.person_id, day=ibis._[column])
    periods = op.select(
        opid=op.person_id,
        op_start=op.observation_period_start_date,
        op_end=op.observation_period_end_date,
    )
    outside = events.anti_join(
        periods,
        [events.pid == periods.opid, events.day >= periods.op_start, events.day <= periods.op_end],
    )
    return _scalar(outside.count()), ctx.counts[name]


def _unmapped_sources(ctx: _Context, *, name: str, source: str, concept: str) -> tuple[int, int]:
    t = ctx.t(name)
    values = t.filter(t[source].notnull())
    total = _scalar(values[source].nunique())
    unmapped = _scalar(values.filter(values[concept] == 0)[source].nunique())
    return unmapped, total
