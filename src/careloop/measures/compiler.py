"""Compile a measure definition into Ibis expressions over the OMOP warehouse.

Every criterion becomes a *match set*: a table of ``(careloop_subject,
careloop_period)`` pairs (a person or a visit, and the period in which the
criterion holds for it). Groups combine match sets with set algebra
(``INTERSECT``, ``UNION``, ``EXCEPT``); ``none_of`` is kept as a *negated*
set and only turned into "everyone but" at the end, so a measure never builds
the person × period grid unless its denominator itself is a negation.

The compiled measure is one aggregate query: counts of subjects per period
and stratum cell for the three sets (denominator after exclusions,
numerator, excluded). Counts are additive, so the runner rolls the finest
cells up to sites, strata and the whole network in memory.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from careloop.measures.definition import (
    Criteria,
    Criterion,
    Lookback,
    MeasureDefinition,
    PeriodUnit,
)

SUBJECT = "careloop_subject"
PERIOD = "careloop_period"
KEYS = (SUBJECT, PERIOD)

_TABLES: dict[str, tuple[str, str, str, str | None]] = {
    # domain: (table, concept column, date column, row id column)
    "condition": (
        "condition_occurrence",
        "condition_concept_id",
        "condition_start_date",
        "condition_occurrence_id",
    ),
    "drug": ("drug_exposure", "drug_concept_id", "drug_exposure_start_date", "drug_exposure_id"),
    "procedure": (
        "procedure_occurrence",
        "procedure_concept_id",
        "procedure_date",
        "procedure_occurrence_id",
    ),
    "measurement": ("measurement", "measurement_concept_id", "measurement_date", "measurement_id"),
    "observation": ("observation", "observation_concept_id", "observation_date", "observation_id"),
    "visit": ("visit_occurrence", "visit_concept_id", "visit_start_date", "visit_occurrence_id"),
    "death": ("death", "cause_concept_id", "death_date", None),
}

AGE_BANDS: tuple[tuple[int, str], ...] = (
    (5, "0-4"),
    (10, "5-9"),
    (15, "10-14"),
    (18, "15-17"),
    (25, "18-24"),
    (45, "25-44"),
    (65, "45-64"),
)
"""Upper bound (exclusive) and label of each age band; 65 and over is ``65+``."""

STRATUM_COLUMNS: dict[str, str] = {
    "site": "careloop_site_id",
    "sex": "careloop_sex",
    "age_band": "careloop_age_band",
    "race": "careloop_race",
    "ethnicity": "careloop_ethnicity",
    "visit_type": "careloop_visit_type",
}


@dataclass(frozen=True)
class Period:
    """One reporting period; both ends included."""

    start: date
    """First day."""
    end: date
    """Last day."""


def period_start(day: date, unit: PeriodUnit) -> date:
    """The first day of the period that contains ``day``."""
    if unit == "year":
        return date(day.year, 1, 1)
    if unit == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, day.month, 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def periods_between(start: date, end: date, unit: PeriodUnit) -> list[Period]:
    """Every period from the one containing ``start`` to the one containing ``end``."""
    step = {"month": 1, "quarter": 3, "year": 12}[unit]
    out: list[Period] = []
    current = period_start(start, unit)
    while current <= end:
        following = _add_months(current, step)
        out.append(Period(current, following - timedelta(days=1)))
        current = following
    return out


def window_start(period: Period, lookback: Lookback | None) -> date:
    """First day on which an event counts for ``period`` (the period end minus lookback)."""
    if lookback is None:
        return period.start
    after_end = period.end + timedelta(days=1)
    if lookback.unit == "day":
        return after_end - timedelta(days=lookback.amount)
    if lookback.unit == "week":
        return after_end - timedelta(weeks=lookback.amount)
    months = lookback.amount * (12 if lookback.unit == "year" else 1)
    return _add_months(after_end, -months)


def _period_key(day: ir.DateValue, unit: PeriodUnit) -> ir.IntegerValue:
    year = day.year().cast("int64")
    if unit == "year":
        return year
    if unit == "quarter":
        return year * 4 + day.quarter().cast("int64") - 1
    return year * 12 + day.month().cast("int64") - 1


def _python_key(day: date, unit: PeriodUnit) -> int:
    if unit == "year":
        return day.year
    if unit == "quarter":
        return day.year * 4 + (day.month - 1) // 3
    return day.year * 12 + day.month - 1


@dataclass(frozen=True)
class _Signed:
    """A match set, or (negative) the complement of one."""

    table: ir.Table
    negative: bool = False


def _union(tables: Sequence[ir.Table]) -> ir.Table:
    return tables[0] if len(tables) == 1 else ibis.union(*tables, distinct=True)


def _intersect(tables: Sequence[ir.Table]) -> ir.Table:
    return tables[0] if len(tables) == 1 else ibis.intersect(*tables, distinct=True)


class CompiledMeasure:
    """The Ibis expressions of one measure over a list of periods.

    Args:
        definition: The measure.
        table: A function returning the Ibis table of an OMOP table name
            (``Warehouse.table``); it raises when the table is missing.
        periods: The reporting periods, in order.
        concept_sets: Each criterion's resolved concept ids (with descendants).
        strata: Stratifiers to break the counts down by (site, sex, …).
    """

    def __init__(
        self,
        definition: MeasureDefinition,
        table: Any,
        periods: Sequence[Period],
        concept_sets: Mapping[Criterion, tuple[int, ...]],
        strata: Sequence[str] = (),
    ) -> None:
        if not periods:
            raise ValueError("at least one period is needed")
        self.definition = definition
        self._table = table
        self.periods = list(periods)
        self.concept_sets = concept_sets
        self.strata = tuple(strata)
        unit = definition.period
        self._unit: PeriodUnit = unit
        starts = [window_start(p, definition.lookback) for p in self.periods]
        self._first_day = min(starts)
        self._last_day = self.periods[-1].end
        self._periods = ibis.memtable(
            {
                PERIOD: [p.start for p in self.periods],
                "careloop_period_end": [p.end for p in self.periods],
                "careloop_window_start": starts,
                "careloop_key": [_python_key(p.start, unit) for p in self.periods],
                "careloop_year": [p.end.year for p in self.periods],
            },
            schema={
                PERIOD: "date",
                "careloop_period_end": "date",
                "careloop_window_start": "date",
                "careloop_key": "int64",
                "careloop_year": "int64",
            },
        )
        self._visits: ir.Table | None = None

    # ------------------------------------------------------------- universes

    def _visit_universe(self) -> ir.Table:
        """Visits starting in a period: subject = visit id, with its period and attributes."""
        if self._visits is None:
            v = self._table("visit_occurrence")
            d = v.visit_start_date.cast("date")
            v = v.filter(d >= self._first_day, d <= self._last_day)
            v = v.mutate(careloop_key=_period_key(v.visit_start_date.cast("date"), self._unit))
            per = self._periods.select(PERIOD, "careloop_key", "careloop_year")
            joined = v.join(per, v.careloop_key == per.careloop_key)
            self._visits = joined.select(
                careloop_subject=joined.visit_occurrence_id.cast("int64"),
                careloop_period=joined[PERIOD],
                careloop_person=joined.person_id.cast("int64"),
                careloop_site_id=joined.care_site_id.cast("int64"),
                careloop_visit_type=joined.visit_concept_id.cast("int64"),
                careloop_visit_concept=joined.visit_concept_id.cast("int64"),
                careloop_year=joined.careloop_year,
            )
        return self._visits

    def _universe(self) -> ir.Table:
        if self.definition.subject == "visit":
            return self._visit_universe().select(*KEYS)
        persons = self._table("person").select(careloop_subject=ibis._.person_id.cast("int64"))
        return persons.cross_join(self._periods.select(PERIOD)).select(*KEYS)

    # ------------------------------------------------------------------ leaves

    def _events(self, crit: Criterion) -> ir.Table:
        """Rows of the criterion's domain in its concept set, with s, d, v, r, vid columns."""
        name, concept_col, date_col, id_col = _TABLES[crit.domain]
        t = self._table(name)
        ids = self.concept_sets.get(crit, crit.concepts)
        if ids:
            t = t.filter(t[concept_col].isin(list(ids)))
        value_col = crit.column_for_value
        vid = (
            t.visit_occurrence_id.cast("int64")
            if "visit_occurrence_id" in t.columns
            else ibis.null("int64")
        )
        if crit.domain == "visit":
            vid = t.visit_occurrence_id.cast("int64")
        return t.select(
            careloop_s=t.person_id.cast("int64"),
            careloop_d=t[date_col].cast("date"),
            careloop_v=t[value_col] if value_col else ibis.null("float64"),
            careloop_r=t[id_col].cast("int64") if id_col else t.person_id.cast("int64"),
            careloop_vid=vid,
        )

    def _value_filter(self, t: ir.Table, crit: Criterion) -> ir.Table:
        if crit.value is None:
            return t
        v = t.careloop_v
        op, x = crit.value.op, crit.value.operand
        if crit.column_for_value == "value_as_string":
            x = (
                tuple(_as_text(i) for i in x)
                if isinstance(x, tuple)
                else (_as_text(x) if op in ("eq",) else x)
            )
        if op == "eq":
            return t.filter(v == x)
        if op == "in":
            return t.filter(v.isin(list(x)))
        if op == "between":
            return t.filter(v.between(x[0], x[1]))
        if op == "gt":
            return t.filter(v > x)
        if op == "lt":
            return t.filter(v < x)
        return t.filter(v.isnull() if x else v.notnull())

    def _select_at(self, t: ir.Table, crit: Criterion, keys: Sequence[str]) -> ir.Table:
        """Keep the first or last row per key (``at``), ties broken by row id."""
        if crit.at == "any":
            return t
        order = (
            [ibis.desc("careloop_d"), ibis.desc("careloop_r")]
            if crit.at == "last"
            else [ibis.asc("careloop_d"), ibis.asc("careloop_r")]
        )
        rank = ibis.row_number().over(group_by=list(keys), order_by=order)
        return t.mutate(careloop_rank=rank).filter(ibis._.careloop_rank == 0)

    def _person_rows(self, crit: Criterion) -> ir.Table:
        """Events joined to the periods whose window contains them (person subject)."""
        ev = self._events(crit)
        ev = ev.filter(ev.careloop_d >= self._first_day, ev.careloop_d <= self._last_day)
        per = self._periods
        if self.definition.lookback is None:
            ev = ev.mutate(careloop_key=_period_key(ev.careloop_d, self._unit))
            joined = ev.join(per, ev.careloop_key == per.careloop_key)
        else:
            joined = ev.join(
                per,
                [
                    ev.careloop_d >= per.careloop_window_start,
                    ev.careloop_d <= per.careloop_period_end,
                ],
            )
        return joined.select(
            careloop_subject=joined.careloop_s,
            careloop_period=joined[PERIOD],
            careloop_d=joined.careloop_d,
            careloop_v=joined.careloop_v,
            careloop_r=joined.careloop_r,
        )

    def _visit_rows(self, crit: Criterion) -> ir.Table:
        """Events of each visit in the universe (visit subject)."""
        u = self._visit_universe()
        if crit.domain == "visit":
            ev = self._events(crit)
            joined = u.join(ev, u.careloop_subject == ev.careloop_vid)
        elif crit.domain == "death":
            ev = self._events(crit)
            per = self._periods.select(PERIOD, "careloop_period_end")
            uu = u.join(per, PERIOD)
            joined = uu.join(
                ev,
                [
                    uu.careloop_person == ev.careloop_s,
                    ev.careloop_d >= uu[PERIOD],
                    ev.careloop_d <= uu.careloop_period_end,
                ],
            )
        else:
            ev = self._events(crit)
            joined = u.join(ev, u.careloop_subject == ev.careloop_vid)
        return joined.select(
            careloop_subject=joined.careloop_subject,
            careloop_period=joined[PERIOD],
            careloop_d=joined.careloop_d,
            careloop_v=joined.careloop_v,
            careloop_r=joined.careloop_r,
        )

    def _rows(self, crit: Criterion) -> ir.Table:
        rows = (
            self._visit_rows(crit)
            if self.definition.subject == "visit"
            else (self._person_rows(crit))
        )
        return self._value_filter(self._select_at(rows, crit, KEYS), crit)

    def leaf(self, crit: Criterion) -> ir.Table:
        """The match set of one criterion."""
        return self._rows(crit).select(*KEYS).distinct()

    # ------------------------------------------------------------------ groups

    def _eval(self, node: Criteria) -> _Signed:
        if isinstance(node, Criterion):
            return _Signed(self.leaf(node))
        kids = [self._eval(item) for item in node.items]
        pos = [k.table for k in kids if not k.negative]
        neg = [k.table for k in kids if k.negative]
        if node.op == "all_of":
            # ∩P − ∪N, or ¬(∪N) when there is no positive term.
            if pos:
                t = _intersect(pos)
                return _Signed(t.difference(_union(neg), distinct=True) if neg else t)
            return _Signed(_union(neg), negative=True)
        # any_of: ∪P ∪ ¬N₁ ∪ … = ¬(∩N − ∪P)
        if neg:
            t = _intersect(neg)
            any_of = _Signed(t.difference(_union(pos), distinct=True) if pos else t, True)
        else:
            any_of = _Signed(_union(pos))
        if node.op == "any_of":
            return any_of
        return _Signed(any_of.table, not any_of.negative)

    def _positive(self, s: _Signed) -> ir.Table:
        if not s.negative:
            return s.table
        return self._universe().difference(s.table, distinct=True)

    @staticmethod
    def _restrict(base: ir.Table, s: _Signed) -> ir.Table:
        if s.negative:
            return base.difference(s.table, distinct=True)
        return base.intersect(s.table, distinct=True)

    def sets(self) -> dict[str, ir.Table]:
        """The subject sets: ``denominator`` (after exclusions), ``numerator``, ``excluded``."""
        d = self.definition
        den = self._positive(self._eval(d.denominator))
        out: dict[str, ir.Table] = {}
        excl_signed = self._eval(d.exclusions) if d.exclusions is not None else None
        if excl_signed is not None:
            excluded = self._restrict(den, excl_signed)
            kept = den.difference(excluded, distinct=True)
            out["excluded"] = excluded
        else:
            kept = den
        out["denominator"] = kept
        if d.type == "ratio":
            assert d.numerator is not None
            num = self._positive(self._eval(d.numerator))
            if excl_signed is not None:
                num = (
                    num.intersect(excl_signed.table, distinct=True)
                    if excl_signed.negative
                    else num.difference(excl_signed.table, distinct=True)
                )
            out["numerator"] = num
        elif d.numerator is not None:
            out["numerator"] = self._restrict(kept, self._eval(d.numerator))
        elif d.type == "count":
            out["numerator"] = kept
        return out

    # ---------------------------------------------------------------- strata

    def with_strata(self, keyed: ir.Table) -> ir.Table:
        """``keyed`` with the stratum columns this run needs."""
        cols: dict[str, Any] = {}
        person_strata = ("sex", "age_band", "race", "ethnicity")
        if not self.strata:
            return keyed.select(*KEYS)
        if self.definition.subject == "visit":
            u = self._visit_universe()
            t = keyed.join(u, [keyed[SUBJECT] == u[SUBJECT], keyed[PERIOD] == u[PERIOD]])
            person_col = "careloop_person"
            cols["careloop_site_id"] = t.careloop_site_id
            cols["careloop_visit_type"] = t.careloop_visit_type
        else:
            per = self._periods.select(PERIOD, "careloop_year")
            t = keyed.join(per, PERIOD)
            person_col = SUBJECT
        needs_person = any(s in self.strata for s in person_strata) or (
            self.definition.subject == "person" and "site" in self.strata
        )
        if needs_person:
            p = self._table("person")
            p = p.select(
                careloop_pid=p.person_id.cast("int64"),
                careloop_person_site=p.care_site_id.cast("int64"),
                careloop_sex=p.gender_concept_id.cast("int64"),
                careloop_yob=p.year_of_birth.cast("int64"),
                careloop_race=p.race_concept_id.cast("int64"),
                careloop_ethnicity=p.ethnicity_concept_id.cast("int64"),
            )
            t = t.join(p, t[person_col] == p.careloop_pid)
            if self.definition.subject == "person":
                cols["careloop_site_id"] = t.careloop_person_site
            age = t.careloop_year - t.careloop_yob
            branches = [(age < upper, label) for upper, label in AGE_BANDS]
            cols["careloop_age_band"] = ibis.cases(*branches, else_="65+")
            cols["careloop_sex"] = t.careloop_sex
            cols["careloop_race"] = t.careloop_race
            cols["careloop_ethnicity"] = t.careloop_ethnicity
        wanted = {STRATUM_COLUMNS[s]: cols[STRATUM_COLUMNS[s]] for s in self.strata}
        return t.select(t[SUBJECT], t[PERIOD], **wanted)

    def counts(self) -> ir.Table:
        """One aggregate query: subjects per set × period × stratum cell.

        Columns: ``careloop_set`` (denominator, numerator, excluded),
        ``careloop_period``, one column per stratifier, ``careloop_n``.
        """
        parts = [
            self.with_strata(t).mutate(careloop_set=ibis.literal(name))
            for name, t in self.sets().items()
        ]
        tagged = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
        group = ["careloop_set", PERIOD, *(STRATUM_COLUMNS[s] for s in self.strata)]
        return tagged.group_by(group).aggregate(careloop_n=ibis._.count())

    def values(self, levels: Sequence[Sequence[str]]) -> ir.Table:
        """Continuous measures: mean or median of the value per cell, one level each.

        Columns: ``careloop_level`` (index into ``levels``), ``careloop_period``,
        every stratifier column (NULL where a level does not group by it),
        ``careloop_n`` (subjects with a value) and ``careloop_value``.
        """
        d = self.definition
        assert d.value is not None and d.aggregate is not None
        kept = self.sets()["denominator"]
        rows = self._rows(d.value).filter(ibis._.careloop_v.notnull())
        # One value per subject and period: the selected row (at: first/last) or,
        # for at: any, the mean of the subject's rows in the window.
        per_subject = rows.group_by(list(KEYS)).aggregate(
            careloop_v=rows.careloop_v.cast("float64").mean()
        )
        valued = per_subject.join(kept, list(KEYS)).select(*KEYS, "careloop_v")
        attrs = self.with_strata(valued.select(*KEYS))
        t = attrs.join(valued, list(KEYS))
        parts = []
        for index, level in enumerate(levels):
            group = [PERIOD, *(STRATUM_COLUMNS[s] for s in level)]
            agg = t.careloop_v.mean() if d.aggregate == "mean" else t.careloop_v.median()
            g = t.group_by(group).aggregate(careloop_n=t.count(), careloop_value=agg)
            fill = {
                STRATUM_COLUMNS[s]: ibis.null(t[STRATUM_COLUMNS[s]].type())
                for s in self.strata
                if s not in level
            }
            g = g.mutate(careloop_level=ibis.literal(index, "int64"), **fill)
            parts.append(
                g.select(
                    "careloop_level",
                    PERIOD,
                    *(STRATUM_COLUMNS[s] for s in self.strata),
                    "careloop_n",
                    "careloop_value",
                )
            )
        return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]

    def members(self, set_name: str) -> ir.Table:
        """The subjects of one set with their period and stratum columns."""
        return self.with_strata(self.sets()[set_name])


def _as_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
