"""What the dashboard pages are built from: measures, points, series, signals, views."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from careloop.analysis.funnel import FunnelResult
from careloop.analysis.spc import Annotation, SpcChart
from careloop.measures.definition import MeasureDefinition

SPARK_PERIODS = 24
"""Periods shown in an overview sparkline."""
FUNNEL_MONTHS = 12
"""A funnel of a visit (or window-free) measure sums the sites' last 12 monthly periods."""

Variation = Literal[
    "common_cause", "special_cause_improvement", "special_cause_concern", "special_cause_neither"
]
Side = Literal["high", "low"]
"""Which side of the centre line a special cause lies on."""
Assurance = Literal["pass", "fail", "hit_or_miss"]
"""Making Data Count assurance: the target against the latest phase's limits."""
VariationIcon = Literal[
    "common_cause",
    "improvement_high",
    "improvement_low",
    "concern_high",
    "concern_low",
    "neither_high",
    "neither_low",
]
"""The seven Making Data Count variation icons."""


@dataclass(frozen=True)
class MeasureInfo:
    """What a measure is, for people."""

    id: str
    """The measure id."""
    title: str
    """One line (the id when the definition is not in this installation's catalog)."""
    description: str
    """Longer text, may be empty."""
    type: str
    """proportion, ratio, count or continuous (``""`` when unknown)."""
    improvement: Literal["up", "down"] | None
    """Whether higher (up) or lower (down) is better; None when unknown."""
    target: float | None
    """The goal, on the value's scale (a fraction for proportions)."""
    sentences: tuple[str, ...]
    """The definition in plain language."""
    definition: MeasureDefinition | None = field(default=None, repr=False)
    """The definition (None: results exist but the catalog lacks it)."""
    changed_since_run: bool = False
    """The catalog's definition differs from the one the results were computed with."""

    @property
    def percent(self) -> bool:
        """Whether values are shown as percentages."""
        return self.type == "proportion"


@dataclass(frozen=True)
class Point:
    """One period of a series."""

    period_start: date
    """First day of the period."""
    period_end: date
    """Last day of the period."""
    numerator: int
    """Subjects meeting the measure (for continuous measures: subjects with a value)."""
    denominator: int
    """Subjects counted, after exclusions."""
    value: float | None
    """The measure's value; None when the denominator is 0."""
    small_denominator: bool
    """Denominator at or below the small-cell threshold: read with care."""


@dataclass(frozen=True)
class Signals:
    """What the SPC chart of a series says, as badges."""

    outside_limits: int
    """Points outside the control limits in the latest phase."""
    runs_signal: bool
    """A shift or too few crossings of the centre line (Anhøj rules) in the latest phase."""
    variation: Variation
    """Making Data Count class of the latest point (improvement, concern, neither, common)."""
    caveats: tuple[str, ...] = ()
    """Statistical caveats (few points, no variation…)."""
    side: Side | None = None
    """For a special cause: whether the latest point lies high or low (None: common cause)."""
    assurance: Assurance | None = None
    """Whether the process will meet the target: consistently (pass), never (fail), or
    hit and miss; None without a target, a better direction or control limits."""
    chart_kind: str = ""
    """The chart the series is drawn on: p, u, c, i or run."""
    limits_note: str = ""
    """For a run chart: why control limits would not mean anything here."""

    @property
    def any(self) -> bool:
        """Whether there is any special-cause signal."""
        return bool(self.outside_limits) or self.runs_signal

    @property
    def variation_icon(self) -> VariationIcon:
        """The Making Data Count variation icon: common cause, or the kind of special
        cause (improvement, concern, neither) with the side it lies on."""
        if self.variation == "common_cause" or self.side is None:
            return "common_cause"
        kind = self.variation.removeprefix("special_cause_")
        return f"{kind}_{self.side}"  # type: ignore[return-value]

    @property
    def needs_attention(self) -> bool:
        """A special cause of concern, or a process that will consistently fail its target."""
        return self.variation == "special_cause_concern" or self.assurance == "fail"


@dataclass(frozen=True)
class Series:
    """One measure at one site (or the network) over time, with its SPC chart."""

    site: str
    """Site code; ``""`` for the network."""
    points: tuple[Point, ...]
    """Every period, oldest first."""
    chart: SpcChart | None = field(repr=False)
    """The SPC chart (None when there are too few points with data)."""
    signals: Signals | None
    """Its signals (None without a chart)."""
    annotations: tuple[Annotation, ...] = ()
    """Deployments and other events marked on the chart."""

    @property
    def latest(self) -> Point | None:
        """The latest period with a value."""
        with_value = [p for p in self.points if p.value is not None]
        return with_value[-1] if with_value else None


@dataclass(frozen=True)
class OverviewRow:
    """One measure on the network overview."""

    measure: MeasureInfo
    """The measure."""
    network: Series
    """Its network series and chart."""


@dataclass(frozen=True)
class Attention:
    """A measure that needs attention this month, at the network or at one site."""

    measure: MeasureInfo
    """The measure."""
    series: Series
    """The network's series (site ``""``) or a site's, with its signals."""

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why, in words: a special cause of concern, a target it will keep missing."""
        s = self.series.signals
        out = []
        if s is not None and s.variation == "special_cause_concern":
            out.append(
                f"shows a special cause of concern ({'higher' if s.side == 'high' else 'lower'})"
            )
        if s is not None and s.assurance == "fail":
            out.append("will keep missing the target unless something changes")
        return tuple(out)


@dataclass(frozen=True)
class Overview:
    """The network overview."""

    run_id: str
    """The measure run shown."""
    run_at: datetime | None
    """When it ran."""
    rows: tuple[OverviewRow, ...]
    """One row per measure."""
    sites: tuple[str, ...]
    """Sites with results."""
    attention: tuple[Attention, ...] = ()
    """What needs attention this month: the network's and the viewer's own sites'."""


@dataclass(frozen=True)
class SiteNumbers:
    """A site's counts over the funnel's window, as the funnel plot compares them."""

    site: str
    """Site code."""
    numerator: int
    """Summed numerator."""
    denominator: int
    """Summed denominator."""
    value: float | None
    """numerator / denominator."""
    flag: str
    """Funnel flag: within, above 95%, below 99.8%… (``""`` without a funnel)."""
    small_denominator: bool
    """Denominator at or below 10."""


@dataclass(frozen=True)
class FunnelView:
    """The sites on a funnel plot over one window."""

    window: str
    """Which periods, in words (e.g. "Jan 2024 to Dec 2024")."""
    result: FunnelResult | None = field(repr=False)
    """The funnel (None when it cannot be drawn; see ``note``)."""
    sites: tuple[SiteNumbers, ...]
    """Each site's numbers over the window."""
    note: str = ""
    """Why there is no funnel, or caveats."""


@dataclass(frozen=True)
class Deployed:
    """A change that touches a measure: a knowledge deployment or a learning cycle's change."""

    label: str
    """What and where, e.g. ``steroid-sparing 1.0.0 (S001, S002)``."""
    started: date
    """When it started."""
    sites: tuple[str, ...]
    """Sites it serves (empty: all)."""
    kind: Literal["deployment", "pdsa", "note"] = "deployment"
    """A knowledge object put into practice, a learning (PDSA) cycle's change, or a note
    someone added to the chart."""
    where: str = ""
    """Whose change and where, for the list beside the chart (the chart shows the label)."""
    starts_phase: bool = True
    """Whether it may start a new phase (a note starts one only when its author said so)."""


@dataclass(frozen=True)
class MeasureDetail:
    """Everything the measure page shows."""

    measure: MeasureInfo
    """The measure."""
    run_id: str
    """The measure run shown."""
    network: Series
    """The network series, its chart (phases at network-wide deployments) and annotations."""
    sites: tuple[Series, ...]
    """One series per site, sorted by code."""
    funnel: FunnelView
    """The sites on a funnel plot."""
    deployments: tuple[Deployed, ...]
    """Deployments of knowledge objects that declare this measure."""
    patient_list_sites: tuple[str, ...]
    """Sites whose patient list the viewer may open."""


@dataclass(frozen=True)
class SiteRow:
    """One measure at one site, beside the network."""

    measure: MeasureInfo
    """The measure."""
    site: Series
    """The site's series and chart."""
    network: Series
    """The network's series (no chart needed for the comparison)."""
    funnel_flag: str = ""
    """Where the site lies on the measure's funnel plot: ``within`` the limits, or
    ``above``/``below`` the 95% or 99.8% limit (``""``: no funnel for this measure)."""
    funnel_window: str = ""
    """The periods the funnel plot sums, in words."""

    @property
    def better_than_network(self) -> bool | None:
        """Whether the site lies beyond the funnel's limits on the better side (True), the
        worse side (False); None when within the limits or there is no funnel.

        Raw differences from the network's value are not evidence: a site within the
        funnel's limits differs from the network by no more than chance would.
        """
        flag = self.funnel_flag
        if not flag or flag == "within" or self.measure.improvement is None:
            return None
        return flag.startswith("above") == (self.measure.improvement == "up")


@dataclass(frozen=True)
class SiteView:
    """Everything the site page shows."""

    site: str
    """The site code."""
    run_id: str
    """The measure run shown."""
    rows: tuple[SiteRow, ...]
    """One row per measure with results at the site."""
    may_list_patients: bool
    """Whether the viewer may open this site's patient lists."""
