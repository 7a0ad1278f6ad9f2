"""`careloop community …` and `careloop cycle …`: learning communities and their cycles.

The person at the server's command line acts as the operator: they see every
community and manage it as its admins do, but they are no member, so a
member's vote, answer to an invitation or NASSS rating is recorded for them
with ``--as EMAIL`` (as a facilitator records a meeting's votes), and the
audit trail keeps both names.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import typer

from careloop.cli import community_strategy
from careloop.cli.community_engagement import engagement_command
from careloop.cli.context import DataDirOption, opened, operator, settings_from
from careloop.cli.cycle_ethics import determine
from careloop.cli.cycle_findings import findings_app, print_findings
from careloop.cli.output import console, print_json, print_rows
from careloop.community import (
    CharterTerms,
    CycleInput,
    CycleMeasureInput,
    Links,
    add_cycle,
    add_priority,
    answer_invitation,
    close,
    create_community,
    decisions,
    invite,
    list_communities,
    list_cycles,
    list_findings,
    list_priorities,
    list_proposals,
    measure_ids,
    own_knowledge,
    propose,
    record_act,
    record_decision,
    set_member_roles,
    show_community,
    show_cycle,
    show_proposal,
    study_of,
    vote,
)
from careloop.core.errors import (
    ErrorDetail,
    InputError,
    ValidationFailed,
)
from careloop.core.settings import Settings
from careloop.warehouse.connection import warehouse_opener

community_app = typer.Typer(help="Learning communities: members, charter, proposals and votes.")
cycle_app = typer.Typer(help="Learning (PDSA) cycles: Plan, Do, Study, Act.")

FormatOption = typer.Option("table", "--format", help="table or json.")


def _fmt(value: str) -> str:
    if value not in ("table", "json"):
        raise InputError(f"--format must be table or json, not {value!r}.")
    return value


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"{option} is a date as YYYY-MM-DD.", [ErrorDetail(option, "not a date", value)]
        ) from None


def _known(measures_dir: Path | None, data_dir: Path | None) -> list[str]:
    return measure_ids(measures_dir or settings_from(data_dir).measures_dir)


MeasuresDirOption = typer.Option(
    None, "--measures-dir", help="Folder of measure YAML files (default: CARELOOP_MEASURES_DIR)."
)


# ---------------------------------------------------------------- communities


@community_app.command("list")
def list_(fmt: str = FormatOption, data_dir: Path | None = DataDirOption) -> None:
    """Every community of the installation."""
    with opened(settings_from(data_dir)) as registry:
        found = list_communities(registry, operator())
    if _fmt(fmt) == "json":
        print_json([asdict(c) for c in found])
        return
    print_rows(
        ["id", "name", "scale", "sites", "members", "patients and carers"],
        [
            (c.id, c.name, c.scale, ", ".join(c.sites), c.members, c.patients_and_carers)
            for c in found
        ],
    )


@community_app.command("show")
def show(
    community_id: int = typer.Argument(..., help="The community's id."),
    fmt: str = FormatOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """A community: its members with their community roles, its charter and decision rule."""
    with opened(settings_from(data_dir)) as registry:
        detail = show_community(registry, operator(), community_id)
    if _fmt(fmt) == "json":
        print_json(asdict(detail))
        return
    c, charter = detail.community, detail.charter
    console.print(f"{c.name} ({c.scale}): {c.purpose}", markup=False)
    console.print(
        f"Charter {charter.number}: decides by {charter.decision_rule}"
        + (f" (quorum {charter.quorum:.0%})" if charter.decision_rule != "named_approvers" else "")
        + ("; a patient or carer reviewer must agree" if charter.requires_patient_reviewer else ""),
        markup=False,
    )
    print_rows(
        ["member", "name", "community roles", "admin"],
        [(m.email, m.display_name, ", ".join(m.roles), m.is_admin) for m in detail.members],
        title="Members",
    )


@community_app.command("create")
def create(
    name: str = typer.Option(..., "--name"),
    purpose: str = typer.Option(..., "--purpose"),
    problem: str = typer.Option("", "--problem", help="The health system problem it tackles."),
    scale: str = typer.Option("network", "--scale", help="practice, hospital or network."),
    sites: list[str] = typer.Option([], "--site", help="A site in scope (repeat)."),
    conditions: list[str] = typer.Option([], "--condition", help="A condition (repeat)."),
    measures: list[str] = typer.Option([], "--measure", help="A measure it owns (repeat)."),
    facilitator: str = typer.Option(..., "--facilitator", help="E-mail of its first facilitator."),
    rule: str = typer.Option("majority", "--rule", help="consensus, majority or named_approvers."),
    quorum: float = typer.Option(0.5, "--quorum", help="Share of members who must vote."),
    approvers: list[str] = typer.Option([], "--approver", help="A named approver (repeat)."),
    patient_reviewer: bool = typer.Option(
        False, "--patient-reviewer", help="A patient or carer must vote yes for anything to pass."
    ),
    goals: list[str] = typer.Option([], "--goal", help="A goal (repeat)."),
    cadence: str = typer.Option("", "--cadence", help="How often it meets."),
    agreement: str = typer.Option("", "--data-agreement", help="The data-access agreement."),
    measures_dir: Path | None = MeasuresDirOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Create a community with its founding charter."""
    known = _known(measures_dir, data_dir)
    with opened(settings_from(data_dir)) as registry:
        detail = create_community(
            registry,
            operator(),
            name=name,
            purpose=purpose,
            problem=problem,
            scale=scale,
            sites=sites,
            conditions=conditions,
            measures=measures,
            known_measures=known,
            facilitator=facilitator,
            charter=CharterTerms(
                purpose=purpose,
                decision_rule=rule,
                goals=tuple(goals),
                quorum=quorum,
                approvers=tuple(approvers),
                requires_patient_reviewer=patient_reviewer,
                meeting_cadence=cadence,
                data_access_agreement=agreement,
            ),
        )
    console.print(f"Created community {detail.community.id}: {detail.community.name}", markup=False)


@community_app.command("invite")
def invite_(
    community_id: int = typer.Argument(...),
    email: str = typer.Argument(..., help="The careloop user's e-mail."),
    roles: list[str] = typer.Option(..., "--role", help="A community role (repeat)."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Invite a careloop user to join with community roles."""
    with opened(settings_from(data_dir)) as registry:
        made = invite(registry, operator(), community_id, email=email, roles=roles)
    console.print(f"Invitation {made.id}: {made.email} to {made.community}.", markup=False)


@community_app.command("join")
def join(
    invitation_id: int = typer.Argument(...),
    as_email: str = typer.Option(..., "--as", help="The invited person, who agreed."),
    decline: bool = typer.Option(False, "--decline", help="Record that they declined."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Record the answer to an invitation (the person joins, or declines)."""
    with opened(settings_from(data_dir)) as registry:
        done = answer_invitation(
            registry, operator(), invitation_id, accept=not decline, on_behalf_of=as_email
        )
    console.print(f"{done.email}: invitation to {done.community} {done.status}.", markup=False)


@community_app.command("roles")
def roles_(
    community_id: int = typer.Argument(...),
    email: str = typer.Argument(...),
    roles: list[str] = typer.Option(..., "--role", help="A community role (repeat)."),
    admin: bool | None = typer.Option(None, "--admin/--no-admin", help="Community admin."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Set a member's community roles."""
    with opened(settings_from(data_dir)) as registry:
        member = set_member_roles(
            registry, operator(), community_id, email=email, roles=roles, is_admin=admin
        )
    console.print(f"{member.email}: {', '.join(member.roles)}", markup=False)


def _charter_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON charter ({exc}).") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a charter is a JSON object of its terms.")
    return data


@community_app.command("propose")
def propose_(
    community_id: int = typer.Argument(...),
    kind: str = typer.Option(
        ..., "--kind", help="charter_change, priority, knowledge_approval or knowledge_spread."
    ),
    title: str = typer.Option(..., "--title"),
    body: str = typer.Option("", "--body"),
    knowledge: str | None = typer.Option(None, "--knowledge", help="identifier@version."),
    sites: list[str] = typer.Option([], "--site", help="Sites to spread to (repeat)."),
    mode: str = typer.Option("live", "--mode", help="silent or live (spread)."),
    charter: Path | None = typer.Option(None, "--charter", help="JSON file of the new charter."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Open a proposal for the community to decide by its charter's rule."""
    payload: dict[str, Any] = {}
    if kind == "charter_change":
        payload["charter"] = _charter_file(charter)
    if knowledge:
        payload.update({"knowledge": knowledge, "sites": sites, "mode": mode})
    with opened(settings_from(data_dir)) as registry:
        made = propose(
            registry, operator(), community_id, kind=kind, title=title, body=body, payload=payload
        )
    console.print(f"Proposal {made.id} ({made.kind}), decided by {made.rule}.", markup=False)


@community_app.command("vote")
def vote_(
    proposal_id: int = typer.Argument(...),
    choice: str = typer.Argument(..., help="yes, no or abstain."),
    as_email: str = typer.Option(..., "--as", help="The member whose vote this is."),
    comment: str = typer.Option("", "--comment"),
    fmt: str = FormatOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Record a member's vote on an open proposal."""
    with opened(settings_from(data_dir)) as registry:
        view = vote(
            registry, operator(), proposal_id, choice=choice, comment=comment, on_behalf_of=as_email
        )
    if _fmt(fmt) == "json":
        print_json(asdict(view))
        return
    console.print(_tally(view.outcome), markup=False)


def _tally(outcome: dict[str, Any]) -> str:
    t, lived = outcome.get("tally", {}), outcome.get("patients_and_carers", {})
    return (
        f"yes {t.get('yes', 0)}, no {t.get('no', 0)}, abstain {t.get('abstain', 0)} "
        f"(patients and carers: yes {lived.get('yes', 0)}, no {lived.get('no', 0)}, "
        f"abstain {lived.get('abstain', 0)}). {outcome.get('reason', '')}"
    )


@community_app.command("close")
def close_(
    proposal_id: int = typer.Argument(...),
    reason: str = typer.Option("", "--reason"),
    fmt: str = FormatOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Close a proposal: the charter's rule decides, and the outcome is applied and logged."""
    with opened(settings_from(data_dir)) as registry:
        view = close(registry, operator(), proposal_id, reason=reason)
    if _fmt(fmt) == "json":
        print_json(asdict(view))
        return
    console.print(f"Proposal {view.id} {view.status}: {_tally(view.outcome)}", markup=False)


@community_app.command("proposals")
def proposals(
    community_id: int = typer.Argument(...),
    status: str | None = typer.Option(None, "--status"),
    fmt: str = FormatOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """A community's proposals and their votes."""
    with opened(settings_from(data_dir)) as registry:
        found = list_proposals(registry, operator(), community_id, status=status)
    if _fmt(fmt) == "json":
        print_json([asdict(p) for p in found])
        return
    print_rows(
        ["id", "kind", "title", "status", "rule", "votes"],
        [(p.id, p.kind, p.title, p.status, p.rule, _tally(p.outcome)) for p in found],
    )


@community_app.command("proposal")
def proposal(proposal_id: int = typer.Argument(...), data_dir: Path | None = DataDirOption) -> None:
    """One proposal with its votes (JSON)."""
    with opened(settings_from(data_dir)) as registry:
        print_json(asdict(show_proposal(registry, operator(), proposal_id)))


@community_app.command("priority")
def priority(
    community_id: int = typer.Argument(...),
    title: str = typer.Option(..., "--title"),
    kind: str = typer.Option("problem", "--kind", help="problem or idea."),
    description: str = typer.Option("", "--description"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Propose a problem or idea for members to rank by their votes."""
    with opened(settings_from(data_dir)) as registry:
        made = add_priority(
            registry, operator(), community_id, kind=kind, title=title, description=description
        )
    console.print(f"Priority {made.id}; members vote on proposal {made.proposal_id}.")


@community_app.command("priorities")
def priorities(
    community_id: int = typer.Argument(...),
    fmt: str = FormatOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Priorities ranked by members' votes (patients' and carers' shown as a group)."""
    with opened(settings_from(data_dir)) as registry:
        found = list_priorities(registry, operator(), community_id)
    if _fmt(fmt) == "json":
        print_json([asdict(p) for p in found])
        return
    print_rows(
        ["rank", "kind", "title", "score", "patients and carers yes/no"],
        [
            (
                i + 1,
                p.kind,
                p.title,
                p.score,
                f"{p.patients_and_carers['yes']}/{p.patients_and_carers['no']}",
            )
            for i, p in enumerate(found)
        ],
    )


@community_app.command("decide")
def decide_(
    community_id: int = typer.Argument(...),
    title: str = typer.Option(..., "--title"),
    kind: str = typer.Option("decision", "--kind", help="decision or reflection."),
    decision: str = typer.Option("", "--decision", help="What was decided."),
    did_not_work: str = typer.Option("", "--did-not-work", help="What did not work."),
    why: str = typer.Option("", "--why", help="Why it did not work."),
    cycles: list[int] = typer.Option([], "--cycle", help="A cycle it is about (repeat)."),
    knowledge: list[str] = typer.Option([], "--knowledge", help="A knowledge object (repeat)."),
    measures: list[str] = typer.Option([], "--measure", help="A measure (repeat)."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Add an entry to the decision and reflection log."""
    with opened(settings_from(data_dir)) as registry:
        entry = record_decision(
            registry,
            operator(),
            community_id,
            title=title,
            kind=kind,
            decision=decision,
            did_not_work=did_not_work,
            why=why,
            links=Links(tuple(cycles), tuple(knowledge), tuple(measures)),
        )
    console.print(f"Logged entry {entry.id}.")


@community_app.command("decisions")
def decisions_(
    community_id: int = typer.Argument(...),
    search: str | None = typer.Option(None, "--search", help="Words to look for."),
    fmt: str = FormatOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """The decision and reflection log, searchable."""
    with opened(settings_from(data_dir)) as registry:
        found = decisions(registry, operator(), community_id, search=search)
    if _fmt(fmt) == "json":
        print_json([asdict(d) for d in found])
        return
    print_rows(
        ["id", "when", "kind", "title", "decision", "did not work", "why"],
        [
            (d.id, f"{d.recorded_at:%Y-%m-%d}", d.kind, d.title, d.decision, d.did_not_work, d.why)
            for d in found
        ],
    )


@community_app.command("own")
def own(
    community_id: int = typer.Argument(...),
    identifier: str = typer.Argument(..., help="The knowledge object's identifier."),
    pilot_sites: list[str] = typer.Option(..., "--pilot-site", help="A pilot site (repeat)."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Hand a knowledge object to the community: its rule approves and spreads it from now on."""
    with opened(settings_from(data_dir)) as registry:
        own_knowledge(
            registry, operator(), community_id, identifier=identifier, pilot_sites=pilot_sites
        )
    console.print(f"{identifier} is now decided on by community {community_id}.")


# ---------------------------------------------------------------- cycles


def _cycle_json(view: Any) -> dict[str, Any]:
    return asdict(view)


@cycle_app.command("list")
def cycle_list(
    community_id: int | None = typer.Option(None, "--community", help="Only this community."),
    fmt: str = FormatOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Learning cycles, with their change dates and Act."""
    with opened(settings_from(data_dir)) as registry:
        found = list_cycles(registry, operator(), community_id=community_id)
    if _fmt(fmt) == "json":
        print_json([_cycle_json(c) for c in found])
        return
    print_rows(
        ["id", "community", "parent", "kind", "title", "change date", "sites", "act"],
        [
            (
                c.id,
                c.community,
                c.parent_id or "",
                c.kind,
                c.title,
                c.do["start"] or "",
                ", ".join(c.do["sites"]) or "all",
                (c.act or {}).get("decision", ""),
            )
            for c in found
        ],
    )


def _study(view: Any, settings: Settings, measures_dir: Path | None) -> dict[str, Any]:
    """The cycle's Study from the stored measure results, or why there is none yet."""
    stored = study_of(
        view, warehouse_opener(settings), measures_dir=measures_dir or settings.measures_dir
    )
    if stored.study is None:
        # No warehouse or no results yet: the cycle is still shown, with the reason.
        return {"study": None, "study_unavailable": stored.unavailable}
    return {"study": stored.study.to_dict()}


@cycle_app.command("show")
def cycle_show(
    cycle_id: int = typer.Argument(...),
    fmt: str = FormatOption,
    measures_dir: Path | None = MeasuresDirOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """One cycle: aim, Plan, Do (change date, sites), Study of its measures, Act."""
    settings = settings_from(data_dir)
    with opened(settings) as registry:
        view = show_cycle(registry, operator(), cycle_id)
        findings = list_findings(registry, operator(), cycle_id)
    study = _study(view, settings, measures_dir)
    # The Study's qualitative part is shown even when the measures' part is not there yet.
    qualitative = {"qualitative_findings": [asdict(f) for f in findings]}
    if _fmt(fmt) == "json":
        print_json({**_cycle_json(view), **study, **qualitative})
        return
    console.print(f"Cycle {view.id}: {view.title} ({view.kind}) — {view.community}", markup=False)
    console.print(f"Aim: {view.aim}", markup=False)
    console.print(
        f"Do: from {view.do['start']} to {view.do['end'] or 'now'} at "
        f"{', '.join(view.do['sites']) or 'every site'}: {view.do['what']}",
        markup=False,
    )
    print_rows(
        ["measure", "role", "phase starts"],
        [(p.measure_id, p.role, p.starts) for p in view.phases],
        title="Charts of its measures",
    )
    if study["study"] is None:
        console.print(f"Study: not yet ({study['study_unavailable']})", markup=False)
    else:
        print_rows(
            ["measure", "role", "effect (odds ratio)", "95% CI", "moved", "flagged"],
            [
                (
                    m["measure_id"],
                    m["role"],
                    _number(m["effect"], "estimate"),
                    f"{_number(m['effect'], 'ci_low')} to {_number(m['effect'], 'ci_high')}",
                    m["moved"],
                    m["flagged"],
                )
                for m in study["study"]["measures"]
            ],
            title="Study",
        )
    print_findings(findings)
    if view.act:
        console.print(f"Act: {view.act['decision']} — {view.act['rationale']}", markup=False)


def _number(effect: dict[str, Any] | None, key: str) -> str:
    value = (effect or {}).get(key)
    return "—" if value is None else f"{value:.3g}"


def _measures(items: list[str]) -> tuple[CycleMeasureInput, ...]:
    out = []
    for item in items:
        measure, _, role = item.partition(":")
        out.append(CycleMeasureInput(measure.strip(), role.strip() or "outcome"))
    return tuple(out)


@cycle_app.command("add")
def cycle_add(
    community_id: int = typer.Option(..., "--community"),
    title: str = typer.Option(..., "--title", help="The change tested."),
    kind: str = typer.Option(
        "process",
        "--kind",
        help="process, change_package, policy, training or knowledge_deployment.",
    ),
    aim: str = typer.Option("", "--aim"),
    predictions: str = typer.Option("", "--predictions"),
    questions: str = typer.Option("", "--questions"),
    parent: int | None = typer.Option(None, "--parent", help="The cycle it nests in."),
    knowledge: str | None = typer.Option(None, "--knowledge", help="identifier@version deployed."),
    plan_who: str = typer.Option("", "--plan-who"),
    plan_where: str = typer.Option("", "--plan-where"),
    plan_when: str | None = typer.Option(None, "--plan-when", help="YYYY-MM-DD."),
    plan_sites: list[str] = typer.Option([], "--plan-site"),
    start: str | None = typer.Option(None, "--start", help="The change date, YYYY-MM-DD."),
    end: str | None = typer.Option(None, "--end", help="YYYY-MM-DD, if it ended."),
    sites: list[str] = typer.Option([], "--site", help="Where the change was made (repeat)."),
    what: str = typer.Option("", "--what", help="What was done."),
    purpose: str = typer.Option("qi", "--purpose", help="qi or research."),
    randomised: bool = typer.Option(False, "--randomised", help="A randomised test."),
    determination: str | None = typer.Option(
        None,
        "--determination",
        help="KIND:REFERENCE, KIND qi_determination or ethics_approval.",
    ),
    measures: list[str] = typer.Option(
        [], "--measure", help="MEASURE_ID[:outcome|process|balancing] (repeat)."
    ),
    measures_dir: Path | None = MeasuresDirOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Record a learning cycle."""
    kind_of, _, reference = (determination or "").partition(":")
    data = CycleInput(
        title=title,
        kind=kind,
        aim=aim,
        predictions=predictions,
        questions=questions,
        parent_id=parent,
        knowledge_ref=knowledge,
        plan_who=plan_who,
        plan_where=plan_where,
        plan_when=_date(plan_when, "--plan-when"),
        plan_sites=tuple(plan_sites),
        do_start=_date(start, "--start"),
        do_end=_date(end, "--end"),
        do_sites=tuple(sites),
        do_what=what,
        purpose=purpose,
        randomised=randomised,
        determination_kind=kind_of or None,
        determination_ref=reference or None,
        measures=_measures(measures),
    )
    known = _known(measures_dir, data_dir)
    with opened(settings_from(data_dir)) as registry:
        view = add_cycle(registry, operator(), community_id, data, known_measures=known)
    console.print(f"Cycle {view.id}: {view.title}", markup=False)


@cycle_app.command("act")
def cycle_act(
    cycle_id: int = typer.Argument(...),
    decision: str = typer.Option(..., "--decision", help="adopt, adapt or abandon."),
    rationale: str = typer.Option(..., "--rationale"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Record Act: adopt, adapt or abandon the change, and why."""
    with opened(settings_from(data_dir)) as registry:
        view = record_act(registry, operator(), cycle_id, decision=decision, rationale=rationale)
    console.print(f"Cycle {view.id}: {decision}.")


def register(app: typer.Typer) -> None:
    """Add `careloop community …` and `careloop cycle …` (with their strategy commands)."""
    community_strategy.register(community_app, cycle_app)
    app.add_typer(community_app, name="community")
    community_app.command("engagement")(engagement_command)
    cycle_app.command("determine")(determine)
    cycle_app.add_typer(findings_app, name="findings")
    app.add_typer(cycle_app, name="cycle")
