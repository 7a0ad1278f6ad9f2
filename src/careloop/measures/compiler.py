"""Compile a measure definition into Ibis expressions over the OMOP warehouse.

Every criterion becomes a *match set*: a table of ``(careloop_subject,
careloop_period)`` pairs (a person or a visit, and the period in which the
criterion holds for it). Groups combine match sets with set algebra
(``INTERSECT``, ``UNION``, ``EXCEPT``); ``none_of`` is kept as a *negated*
set and only turned into "everyone but" at the end, so a measure never builds
the person × period grid unless its denominator itself is a negation.

The compiled measure is one aggregate query: the denominator is built once,
the numerator and exclusions are left-joined to it as flags, and subjects are
counted per period and stratum cell (denominator after exclusions, numerator,
excluded). Counts are additive, so the runner rolls the finest cells up to
sites, strata and the whole network in memory. Speed-ups that keep the
semantics: ``at: first/last`` compares MIN/MAX of an order key over all rows
with the same over passing rows; criteria of one group on one table share a
scan; visit criteria are keyed by visit id alone.
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
    CriteriaGroup,
    Criterion,
    Lookback,
    MeasureDefinition,
    PeriodUnit,
)

SUBJECT = "careloop_subject"
VISIT_PERIOD = ibis.literal(date(1970, 1, 1), "date")
"""Placeholder period of visit-measure rows until the visit's own period is joined."""
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
            u = self._visit_universe()
            return u.select(careloop_subject=u.careloop_subject, careloop_period=VISIT_PERIOD)
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
            careloop_c=t[concept_col].cast("int64"),
        )

    @staticmethod
    def _predicate(t: ir.Table, crit: Criterion) -> ir.BooleanValue:
        """The criterion's value test on a row, never NULL (a NULL test is false)."""
        if crit.value is None:
            return ibis.literal(True)
        v = t.careloop_v
        op, x = crit.value.op, crit.value.operand
        if crit.column_for_value == "value_as_string":
            x = tuple(_as_text(i) for i in x) if isinstance(x, tuple) else _as_text(x)
        if op == "eq":
            test = v == x
        elif op == "in":
            test = v.isin(list(x))
        elif op == "between":
            test = v.between(x[0], x[1])
        elif op == "gt":
            test = v > x
        elif op == "lt":
            test = v < x
        else:
            return v.isnull() if x else v.notnull()
        return test.fill_null(False)

    @staticmethod
    def _order_key(t: ir.Table) -> ir.IntegerValue:
        """Date then row id as one integer, for first/last (row ids below 10 billion)."""
        d = t.careloop_d
        day = d.year().cast("int64") * 10_000 + d.month().cast("int64") * 100 + d.day()
        return day.cast("int64") * 10_000_000_000 + t.careloop_r

    def _pick(self, t: ir.Table, crit: Criterion, value: ir.Value) -> ir.Value:
        """``value`` of the first or last row of each group (an aggregate)."""
        key = self._order_key(t)
        # argmax/argmin keep a NULL value (DuckDB: FIRST … ORDER BY; PostgreSQL:
        # ARRAY_AGG … ORDER BY), unlike DuckDB's arg_max, which skips NULLs.
        return value.argmax(key) if crit.at == "last" else value.argmin(key)

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
            careloop_c=joined.careloop_c,
        )

    def _visit_rows(self, crit: Criterion) -> ir.Table:
        """Rows of each visit (visit subject), keyed by visit id and a placeholder period.

        A visit lies in exactly one period, so the set algebra of a visit measure
        needs the visit id only: rows carry :data:`VISIT_PERIOD` and the real
        period is joined once, at the end (:meth:`with_strata`), instead of
        joining every criterion to the visits.
        """
        if crit.domain == "visit":
            u = self._visit_universe()
            ids = self.concept_sets.get(crit, crit.concepts)
            t = u.filter(u.careloop_visit_concept.isin(list(ids))) if ids else u
            return t.select(
                careloop_subject=t.careloop_subject,
                careloop_period=VISIT_PERIOD,
                careloop_d=ibis.null("date"),
                careloop_v=ibis.null("float64"),
                careloop_r=t.careloop_subject,
                careloop_c=t.careloop_visit_concept,
            )
        ev = self._events(crit)
        if crit.domain == "death":
            u = self._visit_universe()
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
            return joined.select(
                careloop_subject=joined.careloop_subject,
                careloop_period=VISIT_PERIOD,
                careloop_d=joined.careloop_d,
                careloop_v=joined.careloop_v,
                careloop_r=joined.careloop_r,
                careloop_c=joined.careloop_c,
            )
        ev = ev.filter(ev.careloop_vid.notnull())
        return ev.select(
            careloop_subject=ev.careloop_vid,
            careloop_period=VISIT_PERIOD,
            careloop_d=ev.careloop_d,
            careloop_v=ev.careloop_v,
            careloop_r=ev.careloop_r,
            careloop_c=ev.careloop_c,
        )

    def _rows(self, crit: Criterion) -> ir.Table:
        """Rows of the criterion with subject and period (before ``at`` and the value test)."""
        if self.definition.subject == "visit":
            return self._visit_rows(crit)
        return self._person_rows(crit)

    def leaf(self, crit: Criterion) -> ir.Table:
        """The match set of one criterion."""
        rows = self._rows(crit)
        if crit.at == "any":
            return rows.filter(self._predicate(rows, crit)).select(*KEYS).distinct()
        # The first/last row passes when the extreme order key among passing rows
        # equals the extreme key among all rows: two plain MIN/MAX aggregates,
        # cheaper than an ordered aggregate or a window on every engine.
        key = self._order_key(rows)
        ok = self._predicate(rows, crit)
        extreme = key.max if crit.at == "last" else key.min
        picked = rows.group_by(list(KEYS)).aggregate(
            careloop_all=extreme(), careloop_ok=extreme(where=ok)
        )
        return picked.filter(picked.careloop_ok == picked.careloop_all).select(*KEYS)

    def value_rows(self, crit: Criterion) -> ir.Table:
        """One value per subject and period: the first/last row's, or the mean (at: any)."""
        rows = self._rows(crit)
        if crit.at == "any":
            rows = rows.filter(rows.careloop_v.notnull())
            value = rows.careloop_v.cast("float64").mean()
        else:
            value = self._pick(rows, crit, rows.careloop_v.cast("float64"))
        out = rows.group_by(list(KEYS)).aggregate(careloop_v=value)
        return out.filter(out.careloop_v.notnull())

    # ------------------------------------------------------------------ groups

    def _kids(self, node: CriteriaGroup) -> list[_Signed]:
        """The group's items as match sets, same-table ``at: any`` criteria in one scan.

        ``all_of``/``any_of`` (and ``none_of``, an ``any_of`` negated) of several
        criteria on one table become a single grouped scan with a count per
        criterion, instead of one scan and a set operation per criterion.
        """
        batches: dict[tuple[str, str | None], list[Criterion]] = {}
        kids: list[_Signed] = []
        for item in node.items:
            if (
                isinstance(item, Criterion)
                and item.at == "any"
                and item.domain not in ("visit", "death")
                and self.concept_sets.get(item, item.concepts)
            ):
                batches.setdefault((item.domain, item.column_for_value), []).append(item)
            else:
                kids.append(self._eval(item))
        mode = "all" if node.op == "all_of" else "any"
        for leaves in batches.values():
            if len(leaves) == 1:
                kids.append(_Signed(self.leaf(leaves[0])))
            else:
                kids.append(_Signed(self._combined(leaves, mode)))
        return kids

    def _combined(self, leaves: Sequence[Criterion], mode: str) -> ir.Table:
        """Subjects meeting all (or any) of several ``at: any`` criteria on one table."""
        sets = [self.concept_sets.get(c, c.concepts) for c in leaves]
        union = tuple(sorted({i for ids in sets for i in ids}))
        first = leaves[0]
        rows = self._rows(Criterion(first.domain, union, value_column=first.column_for_value))
        counts = {
            f"careloop_f{i}": rows.count(
                where=rows.careloop_c.isin(list(ids)) & self._predicate(rows, leaf)
            )
            for i, (leaf, ids) in enumerate(zip(leaves, sets, strict=True))
        }
        g = rows.group_by(list(KEYS)).aggregate(**counts)
        tests = [g[name] > 0 for name in counts]
        keep = tests[0]
        for test in tests[1:]:
            keep = (keep & test) if mode == "all" else (keep | test)
        return g.filter(keep).select(*KEYS)

    def _eval(self, node: Criteria) -> _Signed:
        if isinstance(node, Criterion):
            return _Signed(self.leaf(node))
        kids = self._kids(node)
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
    def _flag(base: ir.Table, s: _Signed, name: str, keep: Sequence[str]) -> ir.Table:
        """``base`` with a boolean column ``name``: whether each row is in ``s``."""
        marked = s.table.mutate(**{name: ibis.literal(True)})
        j = base.left_join(
            marked, [base[SUBJECT] == marked[SUBJECT], base[PERIOD] == marked[PERIOD]]
        )
        flag = j[name].isnull() if s.negative else j[name].notnull()
        return j.select(base[SUBJECT], base[PERIOD], *(base[k] for k in keep), **{name: flag})

    def flagged(self) -> ir.Table:
        """The denominator (before exclusions) with ``careloop_excl`` and ``careloop_num`` flags.

        The denominator is built once and the numerator and exclusions are left
        joined to it, rather than intersected, so an engine that does not share
        common subexpressions does not compute the denominator three times.
        """
        d = self.definition
        t = self._positive(self._eval(d.denominator))
        keep: list[str] = []
        if d.exclusions is not None:
            t = self._flag(t, self._eval(d.exclusions), "careloop_excl", keep)
        else:
            t = t.mutate(careloop_excl=ibis.literal(False))
        keep.append("careloop_excl")
        if d.numerator is not None and d.type != "ratio":
            t = self._flag(t, self._eval(d.numerator), "careloop_num", keep)
        else:
            t = t.mutate(careloop_num=ibis.literal(d.type == "count" and d.numerator is None))
        return t

    def sets(self) -> dict[str, ir.Table]:
        """The subject sets: ``denominator`` (after exclusions), ``numerator``, ``excluded``."""
        d = self.definition
        t = self.flagged()
        out = {
            "denominator": t.filter(~t.careloop_excl).select(*KEYS),
            "excluded": t.filter(t.careloop_excl).select(*KEYS),
        }
        if d.type == "ratio":
            out["numerator"] = self._ratio_numerator()
        elif d.numerator is not None or d.type == "count":
            out["numerator"] = t.filter(t.careloop_num & ~t.careloop_excl).select(*KEYS)
        return out

    def _ratio_numerator(self) -> ir.Table:
        """A ratio's numerator: on its own (not within the denominator), less exclusions."""
        d = self.definition
        assert d.numerator is not None
        num = self._positive(self._eval(d.numerator))
        if d.exclusions is None:
            return num
        excl = self._eval(d.exclusions)
        if excl.negative:
            return num.intersect(excl.table, distinct=True)
        return num.difference(excl.table, distinct=True)

    def _strata_columns(self) -> list[str]:
        return [STRATUM_COLUMNS[s] for s in self.strata]

    def counts(self) -> ir.Table:
        """One aggregate query: subjects per period × stratum cell.

        Columns: ``careloop_period``, one column per stratifier, and
        ``careloop_denominator`` (after exclusions), ``careloop_numerator``,
        ``careloop_excluded``. A ratio has a second block of rows for its
        numerator; sum the columns per cell.
        """
        flags = ["careloop_excl", "careloop_num"]
        t = self.with_strata(self.flagged(), keep=flags)
        group = [PERIOD, *self._strata_columns()]
        kept = ~t.careloop_excl
        agg = t.group_by(group).aggregate(
            careloop_denominator=t.count(where=kept),
            careloop_numerator=t.count(where=kept & t.careloop_num),
            careloop_excluded=t.count(where=t.careloop_excl),
        )
        if self.definition.type != "ratio":
            return agg
        agg = agg.mutate(careloop_numerator=ibis.literal(0, "int64"))
        n = self.with_strata(self._ratio_numerator())
        num = n.group_by(group).aggregate(
            careloop_denominator=ibis.literal(0, "int64"),
            careloop_numerator=n.count().cast("int64"),
            careloop_excluded=ibis.literal(0, "int64"),
        )
        cols = [*group, "careloop_denominator", "careloop_numerator", "careloop_excluded"]
        return ibis.union(agg.select(*cols), num.select(*cols), distinct=False)

    def with_strata(self, keyed: ir.Table, keep: Sequence[str] = ()) -> ir.Table:
        """``keyed`` with its real period, the stratum columns this run needs and ``keep``."""
        cols: dict[str, Any] = {}
        person_strata = ("sex", "age_band", "race", "ethnicity")
        visit = self.definition.subject == "visit"
        if not self.strata and not visit:
            return keyed.select(*KEYS, *keep)
        if visit:
            u = self._visit_universe().rename(careloop_real_period=PERIOD)
            t = keyed.join(u, keyed[SUBJECT] == u[SUBJECT])
            person_col = "careloop_person"
            cols["careloop_site_id"] = t.careloop_site_id
            cols["careloop_visit_type"] = t.careloop_visit_type
        else:
            per = self._periods.select(PERIOD, "careloop_year")
            t = keyed.join(per, PERIOD).mutate(careloop_real_period=ibis._[PERIOD])
            person_col = SUBJECT
        needs_person = any(s in self.strata for s in person_strata) or (
            not visit and "site" in self.strata
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
            if not visit:
                cols["careloop_site_id"] = t.careloop_person_site
            age = t.careloop_year - t.careloop_yob
            branches = [(age < upper, label) for upper, label in AGE_BANDS]
            cols["careloop_age_band"] = ibis.cases(*branches, else_="65+")
            cols["careloop_sex"] = t.careloop_sex
            cols["careloop_race"] = t.careloop_race
            cols["careloop_ethnicity"] = t.careloop_ethnicity
        wanted = {STRATUM_COLUMNS[s]: cols[STRATUM_COLUMNS[s]] for s in self.strata}
        return t.select(
            t[SUBJECT],
            t.careloop_real_period.name(PERIOD),
            *(t[k] for k in keep),
            **wanted,
        )

    def values(self, levels: Sequence[Sequence[str]]) -> ir.Table:
        """Continuous measures: mean or median of the value per cell, one level each.

        Columns: ``careloop_level`` (index into ``levels``), ``careloop_period``,
        every stratifier column (NULL where a level does not group by it),
        ``careloop_n`` (subjects with a value) and ``careloop_value``.
        """
        d = self.definition
        assert d.value is not None and d.aggregate is not None
        kept = self.sets()["denominator"]
        per_subject = self.value_rows(d.value)
        valued = per_subject.join(kept, list(KEYS)).select(*KEYS, "careloop_v")
        t = self.with_strata(valued, keep=["careloop_v"])
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
