"""The impact of a deployment: the target measure before and after, and what clinicians did.

:func:`impact_report` takes a deployment, the measure's results (the frame
``careloop.measures`` produces: one row per measure × site × period ×
stratum with ``numerator`` and ``denominator``) and, optionally, the card
events of the CDS service (``careloop.practice.card_events``), and returns

- a P control chart of the measure with a new phase at the deployment date
  (:func:`careloop.analysis.spc.qic`);
- an interrupted time series (binomial segmented regression, level and
  slope change with confidence intervals) with the interruption at the
  deployment date (:func:`careloop.analysis.its.segmented_regression`);
- card acceptance and override rates by site;
- for a card-variant test, the comparison of acceptance between the arms
  (:func:`careloop.analysis.trials.compare_proportions`).

:func:`deployment_annotations` gives the deployments of a measure as chart
annotations, so every SPC chart of the measure can show them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import markupsafe
import pandas as pd

from careloop import charts
from careloop.analysis.its import ItsResult, segmented_regression
from careloop.analysis.spc import Annotation, SpcChart, qic
from careloop.analysis.trials import ProportionsComparison, compare_proportions
from careloop.core.errors import InputError
from careloop.core.html import render
from careloop.knowledge.library import Deployment
from careloop.practice.community_reports.page import odds_reading

CARD_TABLE_COLUMNS = (
    "site_code",
    "cards_shown",
    "accepted",
    "overridden",
    "no_feedback",
    "acceptance_rate",
)


@dataclass(frozen=True)
class ImpactReport:
    """What changed after a deployment, and how the cards were received."""

    deployment: Deployment
    """The deployment reported on."""
    measure_id: str
    """The target measure."""
    site: str
    """The site of the series (``""``: the whole network)."""
    series: pd.DataFrame
    """The measure's periods: period_start, numerator, denominator, after (0/1)."""
    spc: SpcChart
    """P chart (percent) with a new phase from the deployment's first period."""
    its: ItsResult | None
    """Segmented regression (odds ratios for the level and slope change), if it could be fitted."""
    cards: pd.DataFrame
    """Card acceptance by site (columns :data:`CARD_TABLE_COLUMNS`); empty without events."""
    variants: ProportionsComparison | None
    """Acceptance in the second arm against the first, for a card-variant test."""
    variant_arms: tuple[str, str] | None
    """The arms compared (comparator, intervention)."""
    caveats: tuple[str, ...]
    """Statistical caveats raised while fitting (few points, autocorrelation…)."""
    pooled_sites: tuple[str, ...] = ()
    """The sites whose results are added up into the series (empty: ``site``'s own series)."""

    def reading(self, improvement: str) -> str:
        """The change in level at the deployment, in plain words (``improvement`` is the
        measure's better direction, ``up`` or ``down``)."""
        d = self.deployment
        return odds_reading(
            self.its.step if self.its is not None else None,
            improvement=improvement,
            notes=[c for c in self.caveats if c.startswith("Interrupted time series not fitted")],
            after=f"{d.identifier} {d.version} went live",
        )

    def series_words(self) -> str:
        """Whose results the series adds up, in words."""
        if self.pooled_sites:
            return f"the sites it was deployed at ({', '.join(self.pooled_sites)}), added up"
        return f"site {self.site}" if self.site else "the whole network"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        d = self.deployment
        parts = self.spc.summary()
        return {
            "deployment": {
                "id": d.id,
                "knowledge_object": d.identifier,
                "version": d.version,
                "mode": d.mode,
                "sites": list(d.sites),
                "started_at": d.started_at.isoformat(),
            },
            "measure_id": self.measure_id,
            "site": self.site,
            "pooled_sites": list(self.pooled_sites),
            "spc": {
                "centre_before": float(parts["cl"].iloc[0]),
                "centre_after": float(parts["cl"].iloc[-1]),
                "signals_after": int(parts["sigma_signal"].iloc[-1])
                + int(bool(parts["runs_signal"].iloc[-1])),
            },
            "its": self.its.to_dict() if self.its is not None else None,
            "cards": self.cards.to_dict(orient="records"),
            "variants": (
                {
                    "arms": list(self.variant_arms or ()),
                    "summary": self.variants.summary(labels=self._labels()),
                }
                if self.variants is not None
                else None
            ),
            "caveats": list(self.caveats),
        }

    def _labels(self) -> tuple[str, str]:
        arms = self.variant_arms or ("comparator", "intervention")
        return (arms[1], arms[0])

    def chart_svg(self) -> markupsafe.Markup:
        """The SPC chart as inline SVG, the deployment marked at its first period (drawn
        once per report: a page shown again reuses it)."""
        drawn = self.__dict__.get("_chart_svg")
        if drawn is None:
            drawn = self._draw_chart()
            object.__setattr__(self, "_chart_svg", drawn)  # a cache, not a field
        return drawn

    def _draw_chart(self) -> markupsafe.Markup:
        d = self.deployment
        annotation = [
            Annotation(
                x=self.series["period_start"][self.series["after"] == 1].iloc[0],
                label=f"{d.identifier} {d.version} ({d.mode})",
                kind="deployment",
            )
        ]
        # The SVG is drawn by vl-convert from the numbers; its text is XML-escaped there.
        return markupsafe.Markup(charts.spc.svg(self.spc, annotations=annotation))  # noqa: S704

    def to_html(self) -> str:
        """A self-contained HTML page (the SPC chart as inline SVG, no scripts)."""
        d = self.deployment
        return render(
            "careloop.practice.feedback", "impact.html",
            report=self,
            deployment=d,
            title=f"Impact of {d.identifier} {d.version} on {self.measure_id}",
            spc_svg=self.chart_svg(),
            its=self.its.summary() if self.its is not None else "Not fitted.",
            variants=(
                self.variants.summary(labels=self._labels()) if self.variants is not None else None
            ),
        )  # fmt: skip


def _series(
    results: pd.DataFrame, measure_id: str, site: str, pool: Sequence[str] = ()
) -> pd.DataFrame:
    """The measure's monthly series at ``site`` or, given ``pool``, summed over those sites."""
    missing = {"measure_id", "site", "period_start", "numerator", "denominator"} - set(results)
    if missing:
        raise InputError(f"The measure results lack the column(s) {sorted(missing)}.")
    wanted = results["site"].isin(list(pool)) if pool else results["site"] == site
    rows = results[(results["measure_id"] == measure_id) & wanted]
    if "stratum" in rows:
        rows = rows[rows["stratum"].fillna("") == ""]
    if rows.empty:
        where = ", ".join(pool) if pool else site or "(network)"
        raise InputError(
            f"No results of measure {measure_id!r} for {where!r}; run the measures first."
        )
    out = rows.groupby("period_start", as_index=False)[["numerator", "denominator"]].sum()
    out["period_start"] = pd.to_datetime(out["period_start"])
    return out.sort_values("period_start").reset_index(drop=True)


def _card_table(events: pd.DataFrame, deployment: Deployment) -> pd.DataFrame:
    if events.empty:
        return pd.DataFrame(columns=list(CARD_TABLE_COLUMNS))
    mine = events[
        (events["ko_identifier"] == deployment.identifier)
        & (events["ko_version"] == deployment.version)
        & events["shown"].astype(bool)
    ]
    rows = []
    for site, group in mine.groupby(mine["site_code"].fillna("(none)"), sort=True):
        accepted = int((group["outcome"] == "accepted").sum())
        overridden = int((group["outcome"] == "overridden").sum())
        answered = accepted + overridden
        rows.append(
            {
                "site_code": site,
                "cards_shown": len(group),
                "accepted": accepted,
                "overridden": overridden,
                "no_feedback": len(group) - answered,
                "acceptance_rate": accepted / answered if answered else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=list(CARD_TABLE_COLUMNS))


def _variant_test(
    events: pd.DataFrame, deployment: Deployment, arms: tuple[str, str]
) -> ProportionsComparison | None:
    mine = events[
        (events["ko_identifier"] == deployment.identifier)
        & (events["ko_version"] == deployment.version)
        & events["shown"].astype(bool)
    ]
    counts = []
    for arm in (arms[1], arms[0]):
        group = mine[mine["variant"] == arm]
        counts += [int((group["outcome"] == "accepted").sum()), len(group)]
    if counts[1] == 0 or counts[3] == 0:
        return None
    return compare_proportions(counts[0], counts[1], counts[2], counts[3])


def impact_report(
    deployment: Deployment,
    results: pd.DataFrame,
    *,
    measure_id: str,
    site: str = "",
    card_events: pd.DataFrame | None = None,
    variant_arms: Sequence[str] | None = None,
    pool_sites: Sequence[str] = (),
) -> ImpactReport:
    """The impact report of ``deployment`` on ``measure_id``.

    Long because it documents its options and runs the SPC chart and the
    interrupted time series under one capture of their warnings, which become
    the report's caveats.

    Args:
        deployment: From :func:`careloop.knowledge.deployments`.
        results: Measure results (columns measure_id, site, period_start,
            numerator, denominator, optionally stratum).
        measure_id: The measure the deployment should move.
        site: The series to analyse: a site code, or ``""`` for the network.
        card_events: ``careloop.practice.card_events(registry)``, for the
            acceptance tables and the variant comparison.
        variant_arms: Arms of the card-variant test (comparator first).
        pool_sites: Add up the results of these sites into the series (the
            sites a deployment went live at), instead of ``site``'s own.

    Raises:
        InputError: No results for the measure, or no period before or after
            the deployment.
    """
    pooled = tuple(pool_sites) if not site else ()
    series = _series(results, measure_id, site, pooled)
    start = pd.Timestamp(deployment.started_at.date())
    series["after"] = (series["period_start"] >= start).astype(int)
    # A period that straddles the deployment date counts as "before" only if it
    # started before it; the first period starting on or after it opens phase 2.
    n_before = int((series["after"] == 0).sum())
    if n_before == 0 or n_before == len(series):
        raise InputError(
            f"The results of {measure_id!r} need periods both before and after "
            f"{start:%Y-%m-%d} (they run {series['period_start'].min():%Y-%m-%d} to "
            f"{series['period_start'].max():%Y-%m-%d})."
        )
    caveats: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spc = qic(
            series["numerator"].to_numpy(),
            n=series["denominator"].to_numpy(),
            x=series["period_start"].to_numpy(),
            chart="p",
            part=[n_before],
            multiply=100,
            title=f"{measure_id}: before and after {deployment.identifier} {deployment.version}",
            ylab="%",
        )
        its: ItsResult | None
        try:
            its = segmented_regression(
                series.rename(columns={"period_start": "period"}),
                outcome="numerator",
                time="period",
                intervention="after",
                family="binomial",
                trials="denominator",
                slope_change=True,
                autocorrelation="newey-west",
            )
        except InputError as exc:
            its = None
            caveats.append(f"Interrupted time series not fitted: {exc.message}")
    caveats.extend(dict.fromkeys(str(w.message) for w in caught))
    events = card_events if card_events is not None else pd.DataFrame()
    arms = tuple(variant_arms or ())
    pair = (str(arms[0]), str(arms[1])) if len(arms) >= 2 else None
    variants = _variant_test(events, deployment, pair) if pair and not events.empty else None
    return ImpactReport(
        deployment=deployment,
        measure_id=measure_id,
        site=site,
        series=series,
        spc=spc,
        its=its,
        cards=_card_table(events, deployment),
        variants=variants,
        variant_arms=pair,
        caveats=tuple(caveats),
        pooled_sites=pooled,
    )


def deployment_annotations(deployments: Sequence[Deployment]) -> list[Annotation]:
    """Deployments as SPC chart annotations (``kind="deployment"``), at their start dates."""
    return [
        Annotation(
            x=pd.Timestamp(d.started_at.date()),
            label=f"{d.identifier} {d.version}" + (" (silent)" if d.mode == "silent" else ""),
            kind="deployment",
        )
        for d in deployments
    ]
