"""`careloop demo`: the whole learning cycle on a synthetic network, stage by stage.

generate → load through capture → the learning community and its PDSA cycles
→ refresh the OMOP warehouse → data-quality checks → measures → SPC and
interrupted time series → knowledge object approved by the community's rule,
decision support → measured impact → HTML learning report and
``summary.json`` (each planted effect beside its estimate and 95% CI).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from careloop.analysis.spc import Annotation
from careloop.community import CycleView, cycle_changes, list_cycles
from careloop.content.ibd import DEMO_MEASURES as IBD_DEMO_MEASURES
from careloop.content.ibd import PACKAGE as IBD
from careloop.core.clock import utcnow
from careloop.core.errors import ConfigurationError
from careloop.core.private_files import private_dir
from careloop.core.settings import Settings
from careloop.demo import learning_community, recovery
from careloop.demo.decision_support import DecisionSupportRun, run_decision_support
from careloop.demo.families import DEMO_LINK_BASE, invite_families
from careloop.demo.focus_group import attach_focus_groups
from careloop.demo.load import LoadCounts, load_network
from careloop.demo.mailbox import demo_mailbox
from careloop.demo.network import Scale, SyntheticNetwork, generate_network
from careloop.demo.outreach import Outreach, run_outreach
from careloop.demo.report import write_report
from careloop.demo.seed import (
    CREDENTIALS_FILE,
    DemoLogin,
    add_demo_logins,
    create_demo_accounts,
    init_demo_installation,
)
from careloop.demo.strategy import record_strategy
from careloop.knowledge import deployments
from careloop.measures import MeasureRun, load_catalog, run_measures, store_run
from careloop.measures.catalog import MeasureCatalog
from careloop.measures.provenance import record_measure_run
from careloop.practice.community_reports import community_report
from careloop.practice.community_reports import write_report as write_community_report
from careloop.practice.events import CardEventTables, card_events
from careloop.practice.feedback.alerts import AlertRun, run_alerts
from careloop.practice.feedback.reports import KnowledgeImpact, impacts_for
from careloop.practice.lineage import CardLineage, card_lineage
from careloop.store.database import Registry
from careloop.trust.installation import open_registry
from careloop.trust.principal import Principal
from careloop.trust.provenance import record_provenance
from careloop.warehouse.connection import Warehouse, warehouse_opener
from careloop.warehouse.jobs import check_warehouse
from careloop.warehouse.quality import QualityReport
from careloop.warehouse.refresh import (
    refresh_registry_tables,
    refresh_warehouse,
    warehouse_provenance,
)

DEMO_MEASURES = IBD_DEMO_MEASURES
DEFAULT_SEED = 4
DEMO_WAREHOUSE_MEMORY = "512MB"

Stage = Callable[[str], None]
COMMUNITY_REPORT = "community-report.html"
"""The community's report, written beside the learning report."""


@dataclass
class DemoResult:
    """Where everything is and what the cycle found."""

    data_dir: Path
    out_dir: Path
    report: Path
    summary: Path
    logins: list[DemoLogin]
    recoveries: list[recovery.Recovery]
    timings: dict[str, float] = field(default_factory=dict)
    counts: LoadCounts | None = None
    quality_failures: list[str] = field(default_factory=list)
    traced_card: CardLineage | None = None
    """One card the demo's EHR calls received, with its provenance chain to the source files."""
    community_report: Path | None = None
    """The learning community's report (``careloop report community``), beside ``report``."""
    outreach: Outreach | None = None
    """The families' part: PROM e-mails and reminders, a form filled, a consent choice."""


class _Clock:
    def __init__(self, on_stage: Stage | None) -> None:
        self.on_stage = on_stage or (lambda _s: None)
        self.timings: dict[str, float] = {}
        self._name: str | None = None
        self._start = 0.0

    def stage(self, name: str) -> None:
        self.stop()
        self._name, self._start = name, time.perf_counter()
        self.on_stage(name)

    def stop(self) -> None:
        if self._name is not None:
            self.timings[self._name] = round(time.perf_counter() - self._start, 2)
            self._name = None


def prepare_demo_dir(data_dir: Path) -> None:
    """Empty a previous demo's data directory; refuse any directory that is not a demo's."""
    if not data_dir.exists():
        return
    if not (data_dir / CREDENTIALS_FILE).exists():
        if any(data_dir.iterdir()):
            raise ConfigurationError(
                f"{data_dir} exists and is not a careloop demo directory; the demo will not "
                "touch it. Choose another --data-dir."
            )
        return
    shutil.rmtree(data_dir)


def run_demo(
    settings: Settings,
    operator: Principal,
    *,
    scale: Scale = "small",
    seed: int = DEFAULT_SEED,
    out_dir: Path | None = None,
    on_stage: Stage | None = None,
) -> DemoResult:
    """Run the learning cycle on a new synthetic network in ``settings.data_dir``.

    Long because it is the demo's script: each stage of the learning cycle in order,
    each a call under its own timed heading.
    """
    clock = _Clock(on_stage)
    # The demo keeps its embedded warehouse lean so the ICN scale fits in 2 GB.
    settings = settings.model_copy(update={"warehouse_memory_limit": DEMO_WAREHOUSE_MEMORY})
    private_dir(settings.data_dir)  # before anything is created in it (the report folder)
    out = out_dir or settings.data_dir / "report"
    private_dir(out)
    clock.stage("Generating the synthetic network")
    network = generate_network(scale, seed)
    clock.stage("Creating the installation")
    init_demo_installation(settings, operator)
    registry = open_registry(settings)
    try:
        clock.stage("Recording visits and PROMs through the capture layer")
        counts = load_network(registry, operator, network)
        # The registry holds the visits now; free the generator's copy before the warehouse work.
        network.visits = network.visits.iloc[0:0]
        network.proms = network.proms.iloc[0:0]
        logins = create_demo_accounts(settings, operator, [s.code for s in network.sites])
        clock.stage("The learning community records its changes as PDSA cycles")
        known = load_catalog(measures_dir=DEMO_MEASURES, entry_points=False).ids
        community = learning_community.start_community(
            registry, operator, network, logins, known_measures=known
        )
        record_strategy(registry, operator, community, DEMO_MEASURES)
        clock.stage("Patients and carers join: invitations and PROM reminders by e-mail")
        with demo_mailbox(settings.data_dir) as mailbox:
            families = invite_families(registry, operator, settings, mailbox, network)
            outreach = run_outreach(
                registry, operator, settings, mailbox, network.sites[0].code, families
            )
        logins = add_demo_logins(settings, families.logins)
        learning_community.welcome_families(registry, operator, community, families.logins)
        clock.stage("Refreshing the OMOP warehouse (consented patients only)")
        with Warehouse.from_settings(settings) as warehouse:
            # The demo is an IBD network whatever content is active elsewhere.
            refresh_warehouse(registry, warehouse, operator, concept_map=IBD.concept_map, full=True)
        clock.stage("Checking data quality")
        with Warehouse.from_settings(settings) as warehouse:
            # As `careloop warehouse check` does: stored, with provenance (maturity evidence).
            quality, _checked = check_warehouse(registry, warehouse, operator)
        clock.stage("Computing every measure by site and month")
        catalog = load_catalog(measures_dir=DEMO_MEASURES, entry_points=False)
        with Warehouse.from_settings(settings) as warehouse:
            run = run_measures(
                warehouse,
                catalog.measures,
                start=network.truth.start,
                end=network.truth.end,
                by=("site",),
            )
            store_run(warehouse, run)
            measured = record_measure_run(
                registry,
                operator,
                run,
                warehouse_url=warehouse.url,
                parent_ids=warehouse_provenance(registry),
            )
        clock.stage("Analysing: SPC and interrupted time series")
        analyses = _analyse(run.results, network)
        analysed = _record_analyses(registry, operator, analyses, run, measured.id)
        clock.stage("Knowledge into practice: CDS Hooks calls over HTTP with signed JWTs")
        practice = run_decision_support(
            settings,
            registry,
            operator,
            network,
            evidence=[(analysed, "Network change: ITS")],
            approve_by=lambda ref: learning_community.approve_by_community(
                registry,
                operator,
                community,
                ref,
                pilot_sites=list(network.truth.ko_sites),
                logins=logins,
            ),
            cycle_for=lambda ref: learning_community.record_deployment_cycle(
                registry, operator, community, network, ref, known_measures=known
            ),
        )
        learning_community.rate_maturity(registry, operator, community, logins)
        # What families and young people said of the change package, coded by two coders.
        attach_focus_groups(registry, operator, community.change_package_cycle)
        with Warehouse.from_settings(settings) as warehouse:
            refresh_registry_tables(registry, warehouse, operator, [CardEventTables()])
        analyses.recoveries.append(recovery.card_acceptance(practice.by_clinician, network.truth))
        analyses.practice = practice
        # The report reads the deployment's impact as its page in careloop does, measure by measure.
        analyses.impact = impacts_for(
            registry,
            warehouse_opener(settings),
            operator,
            practice.ko_ref,
            measures_dir=DEMO_MEASURES,
        )
        traced = _trace_a_card(registry, operator)
        clock.stage("Writing the learning report")
        recoveries = analyses.recoveries
        analyses.annotations = _annotations(registry)
        analyses.cycles = list_cycles(registry, operator, community_id=community.community_id)
        report = _write_outputs(out, network, run, quality, analyses, counts, clock.timings)
        # The community's own report, as `careloop report community ID` writes it.
        written = write_community_report(
            community_report(
                registry,
                warehouse_opener(settings),
                operator,
                community.community_id,
                measures_dir=DEMO_MEASURES,
            ),
            out / COMMUNITY_REPORT,
        )
        _send_alerts(registry, operator, settings, catalog)
    finally:
        registry.close()
    clock.stop()
    result = DemoResult(
        data_dir=settings.data_dir,
        out_dir=out,
        report=report,
        community_report=written.html,
        summary=out / "summary.json",
        logins=logins,
        recoveries=recoveries,
        timings=clock.timings,
        counts=counts,
        quality_failures=[r.check_id for r in quality.results if r.status == "fail"],
        traced_card=traced,
        outreach=outreach,
    )
    _write_summary(result, network)
    return result


@dataclass
class _Analyses:
    recoveries: list[recovery.Recovery]
    charts: dict[str, Any]
    practice: DecisionSupportRun | None = None
    impact: KnowledgeImpact | None = None
    annotations: list[Annotation] = field(default_factory=list)
    cycles: list[CycleView] = field(default_factory=list)


def _annotations(registry: Registry) -> list[Annotation]:
    """The network chart's annotations: network-wide cycles of its measure, deployments."""
    marks = [
        Annotation(c.starts, c.title, "pdsa")
        for c in cycle_changes(registry, learning_community.OUTCOME)
        if not c.sites
    ]
    marks += [
        Annotation(d.started_at.date(), "Decision support live", "deployment")
        for d in deployments(registry)
    ]
    return marks


def _analyse(results: pd.DataFrame, network: SyntheticNetwork) -> _Analyses:
    truth = network.truth
    change, change_fit = recovery.network_change(results, truth)
    sites = recovery.site_changes(results, truth)
    excursion, excursion_chart = recovery.excursion(results, truth)
    ko, ko_fit = recovery.knowledge_object(results, truth)
    return _Analyses(
        [change, *sites, excursion, ko],
        {"change": change_fit, "excursion": excursion_chart, "knowledge": ko_fit},
    )


def _trace_a_card(registry: Registry, operator: Principal) -> CardLineage | None:
    events = card_events(registry)
    shown = events[events["shown"].astype(bool)] if not events.empty else events
    if shown.empty:
        return None
    return card_lineage(registry, operator, str(shown["card_uuid"].iloc[0]))


def _record_analyses(
    registry: Registry,
    operator: Principal,
    analyses: _Analyses,
    run: MeasureRun,
    measure_run_provenance: int,
) -> int:
    """Record the analyses of the run in the provenance chain; returns the ITS entry's id."""
    started = utcnow()
    estimates = {r.name: r.estimate for r in analyses.recoveries}
    entry = record_provenance(
        registry,
        operator,
        activity="analysis.its",
        target="network change package and site changes (interrupted time series, SPC)",
        started_at=started,
        parameters={"measures": sorted(run.hashes), "run_id": run.run_id},
        outputs={"estimates": estimates},
        parent_ids=[measure_run_provenance],
    )
    return entry.id


def _write_outputs(
    out: Path,
    network: SyntheticNetwork,
    run: MeasureRun,
    quality: QualityReport,
    analyses: _Analyses,
    counts: LoadCounts,
    timings: dict[str, float],
) -> Path:
    return write_report(
        out,
        network,
        run,
        quality,
        analyses.recoveries,
        analyses.charts,
        counts,
        timings,
        practice=analyses.practice,
        impact=analyses.impact,
        annotations=analyses.annotations,
        cycles=analyses.cycles,
    )


def _send_alerts(
    registry: Registry, operator: Principal, settings: Settings, catalog: MeasureCatalog
) -> AlertRun:
    """Alert the measures' owners (the site leads and the analyst) to what the run shows,
    into the demo's mailbox: at once, whatever the hour (no quiet hours in the demo)."""
    with demo_mailbox(settings.data_dir) as mailbox:
        return run_alerts(
            registry,
            warehouse_opener(settings),
            mailbox.mailer(settings.mail_from),
            operator,
            catalog,
            base_url=DEMO_LINK_BASE,
            quiet_hours=(0, 0),
        )


def _outreach_summary(outreach: Outreach | None) -> dict[str, Any] | None:
    if outreach is None:
        return None
    return {
        "prom_emails": outreach.invited,
        "prom_reminders": outreach.reminded,
        "proms_completed_from_a_link": outreach.completed,
        "research_withdrawn_by": outreach.research_withdrawn_by,
        "prom_completion": [
            {
                "site": m.site,
                "month": m.month,
                "invited": m.invited,
                "completed": m.completed,
                "pending": m.pending,
            }
            for m in outreach.completion
        ],
    }


def _write_summary(result: DemoResult, network: SyntheticNetwork) -> None:
    truth = network.truth
    summary = {
        "seed": network.seed,
        "scale": network.scale,
        "period": [truth.start.isoformat(), truth.end.isoformat()],
        "counts": result.counts.__dict__ if result.counts else None,
        "planted_effects": [r.as_dict() for r in result.recoveries],
        "all_recovered": all(r.recovered for r in result.recoveries),
        "quality_checks_failed": result.quality_failures,
        "timings_seconds": result.timings,
        "report": str(result.report),
        "community_report": str(result.community_report) if result.community_report else None,
        "patients_and_carers": _outreach_summary(result.outreach),
        "traced_card": (
            {
                "card": result.traced_card.card,
                "chain": [f"{e.id} {e.activity}: {e.target}" for e in result.traced_card.chain],
                "files": [name for name, _ in result.traced_card.files],
            }
            if result.traced_card
            else None
        ),
    }
    result.summary.write_text(json.dumps(summary, indent=2, default=str) + "\n")
