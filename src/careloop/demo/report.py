"""The demo's HTML learning report: the cycle's story for a clinician, with charts as images.

Charts are rendered to PNG without a browser (Vega-Lite through vl-convert)
and written beside ``report.html``; the page needs nothing from the network.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from careloop import charts
from careloop.analysis import funnel, spc
from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.spc import Annotation
from careloop.community import CycleView
from careloop.demo.decision_support import DecisionSupportRun
from careloop.demo.load import LoadCounts
from careloop.demo.network import SyntheticNetwork
from careloop.demo.recovery import Recovery, monthly
from careloop.measures import MeasureRun
from careloop.practice.feedback.reports import KnowledgeImpact
from careloop.warehouse.quality import QualityReport


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _charts(
    out: Path,
    network: SyntheticNetwork,
    results: pd.DataFrame,
    analysed: Mapping[str, Any],
    annotations: Sequence[Annotation],
) -> dict[str, str]:
    truth = network.truth
    files: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        net = monthly(results, "remission-at-visit")
        chart = spc.qic(
            net.numerator.to_numpy(),
            x=net.period_start.tolist(),
            n=net.denominator.to_numpy(),
            chart="p",
            part_at=[truth.change_date],
            title="Network: clinic visits in remission (P chart)",
            ylab="Visits in remission",
        )
        # The recorded cycles and deployments annotate the chart, not the planted dates.
        charts.spc.png(chart, out / "network_remission.png", annotations=list(annotations))
        files["network"] = "network_remission.png"
        charts.its.png(
            analysed["change"],
            out / "change_its.png",
            title="Interrupted time series: change package",
        )
        files["its"] = "change_its.png"
        charts.spc.png(analysed["excursion"], out / "excursion.png")
        files["excursion"] = "excursion.png"
        charts.its.png(
            analysed["knowledge"],
            out / "knowledge_its.png",
            title="Steroid use at sites with decision support",
        )
        files["knowledge"] = "knowledge_its.png"
        last = results[
            (results.measure_id == "remission-prevalence")
            & (results.site.fillna("") != "")
            & (results.stratum.fillna("") == "")
        ]
        latest = last[last.period_start == last.period_start.max()]
        latest = latest[latest.denominator > 0]
        if len(latest) >= 3:
            fun = funnel.funnel(
                latest, numerator="numerator", denominator="denominator", unit="site"
            )
            charts.funnel.png(
                fun,
                out / "funnel.png",
                title="Sites: patients in remission (last month, 12-month look-back)",
            )
            files["funnel"] = "funnel.png"
    return files


def write_report(
    out: Path,
    network: SyntheticNetwork,
    run: MeasureRun,
    quality: QualityReport,
    recoveries: list[Recovery],
    charts: Mapping[str, Any],
    counts: LoadCounts,
    timings: Mapping[str, float],
    *,
    practice: DecisionSupportRun | None = None,
    impact: KnowledgeImpact | None = None,
    annotations: Sequence[Annotation] = (),
    cycles: Sequence[CycleView] = (),
) -> Path:
    """Write ``report.html`` and its images into ``out``; return the report's path.

    ``annotations`` mark the network chart (the community's cycles and the
    knowledge object's deployment); ``cycles`` are listed with their Act; ``impact`` is the
    deployment read on every measure it targets, as its impact page reads it.
    """
    truth = network.truth
    results = run.results
    files = _charts(out, network, results, charts, annotations)
    net = monthly(results, "remission-at-visit")
    before = net[net.period_start < truth.change_date]
    after = net[net.period_start >= date(truth.change_date.year + 1, truth.change_date.month, 1)]
    p_before = before.numerator.sum() / before.denominator.sum()
    p_after = after.numerator.sum() / after.denominator.sum()
    # Plausibility first: those are the problems a clinician can act on.
    order = {"plausibility": 0, "conformance": 1, "completeness": 2}
    failed = sorted(
        (r for r in quality.results if r.status == "fail"),
        key=lambda r: (order.get(str(r.category).lower(), 3), r.check_id),
    )
    # Implausible records below a check's threshold still deserve a look: the planted
    # birth-year typos are a handful of patients, far under DQD's 1% thresholds.
    implausible = [
        r
        for r in quality.results
        if str(r.category).lower() == "plausibility" and r.failing_rows and r.status != "fail"
    ]
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("careloop.demo", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    page = environment.get_template("report.html").render(
        network=network,
        truth=truth,
        counts=counts,
        quality=quality,
        failed=failed,
        implausible=implausible,
        files=files,
        recoveries=recoveries,
        consent=network.patients.consent_state.value_counts().to_dict(),
        p_before=p_before,
        p_after=p_after,
        pct=_pct,
        timings=timings,
        measures=results.measure_id.nunique(),
        practice=practice,
        impact=impact,
        cycles=cycles,
    )
    path = out / "report.html"
    path.write_text(page)
    return path
