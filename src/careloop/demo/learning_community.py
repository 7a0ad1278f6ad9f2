"""The demo's learning community: who takes part, the changes it tested, its decisions.

"IBD network learning community" is a network-scale community of the demo's
sites, with clinicians, the network analyst, a patient partner and a parent
carer among its members. Its charter decides by majority with a quorum of
half the members, and nothing passes without a patient or carer reviewer's
yes. From the network's planted truth it records the network change
package as a PDSA cycle (the change date, every site, remission as its
outcome and steroid use as its balancing measure) with each site's own
change nested in it, and the knowledge object's deployment at the pilot
sites as a cycle of its own. The knowledge object is the community's: the
community approves it by its rule (votes of members, the carer as the
reviewer), and three members (the carer, the analyst and a site lead)
record a NASSS assessment of it before any spread, seeing two domains
differently (the technology a full two steps apart). After the cycles,
three members rate the community's maturity on Lannon's grid; careloop
adds the evidence of its own records.
The votes are recorded by the facilitator, as at a meeting: the demo runs
as the operator at the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from careloop.community import (
    CharterTerms,
    CycleInput,
    CycleMeasureInput,
    add_cycle,
    answer_invitation,
    close,
    create_community,
    invite,
    own_knowledge,
    propose,
    record_act,
    record_decision,
    record_maturity,
    record_nasss,
    vote,
)
from careloop.core.clock import utcnow
from careloop.demo.network import SyntheticNetwork
from careloop.demo.seed import DemoLogin
from careloop.store.database import Registry
from careloop.trust.principal import Principal

NAME = "IBD network learning community"
OUTCOME = "remission-at-visit"
BALANCING = "steroid-at-visit"
COMMUNITY_ROLE_OF = {
    "site_lead": ["clinician", "manager"],
    "clinician": ["clinician"],
    "analyst": ["analyst", "embedded_researcher"],
    "patient": ["patient"],
    "carer": ["carer"],
}
"""The community role of each demo account's careloop role (others are not members)."""
NASSS_RATINGS = {
    "condition": ("complicated", "Steroid dependence varies with disease extent and age."),
    "technology": ("simple", "A CDS Hooks card in the EHR the clinics already use."),
    "value_proposition": ("simple", "Fewer steroid courses; families asked for it."),
    "adopter_system": ("complicated", "Clinicians, nurses and families must all change a habit."),
    "organisation": ("complicated", "Each site needs a named lead and clinic time."),
    "wider_system": ("simple", "Consistent with the ECCO-ESPGHAN guideline."),
    "embedding_and_adaptation": ("complicated", "Needs review as new therapies arrive."),
}
NASSS_SEEN_DIFFERENTLY = {
    "carer": {},
    "analyst": {
        "technology": ("complex", "Not every site's EHR supports CDS Hooks; each link differs."),
    },
    "site_lead": {
        "adopter_system": ("complex", "Families hear different advice from different clinics."),
    },
}
"""How each NASSS rater's view departs from :data:`NASSS_RATINGS` (members do disagree)."""
MATURITY_LEVELS = {
    "site_lead": {"leadership": 4, "governance_and_management": 3, "quality_improvement": 4,
                  "community_building_and_engagement": 3, "data_and_analytics": 3,
                  "research": 2, "patient_and_carer_partnership": 3},
    "carer": {"leadership": 3, "governance_and_management": 3, "quality_improvement": 3,
              "community_building_and_engagement": 2, "data_and_analytics": 2, "research": 1,
              "patient_and_carer_partnership": 2},
    "analyst": {"leadership": 3, "governance_and_management": 2, "quality_improvement": 4,
                "community_building_and_engagement": 3, "data_and_analytics": 4, "research": 3,
                "data_infrastructure": 3},
}  # fmt: skip
"""Three members' maturity levels (1-5) in the demo's rating round."""


@dataclass(frozen=True)
class DemoCommunity:
    """What the demo's community recorded."""

    community_id: int
    change_package_cycle: int
    site_cycles: dict[str, int]
    """Site code → the cycle of its own change."""
    facilitator: str
    """E-mail of the facilitator, who records the meeting's votes."""
    members: tuple[str, ...]


def start_community(
    registry: Registry,
    operator: Principal,
    network: SyntheticNetwork,
    logins: list[DemoLogin],
    *,
    known_measures: list[str],
) -> DemoCommunity:
    """Create the community, its members and its cycles from the planted truth.

    Long because it is the community's founding told in order: the community, its
    members and roles, its charter, its priorities and its cycles, each a call or two.
    """
    truth = network.truth
    sites = [s.code for s in network.sites]
    members = [login for login in logins if login.role in COMMUNITY_ROLE_OF]
    facilitator = next(login for login in members if login.role == "site_lead")
    created = create_community(
        registry,
        operator,
        name=NAME,
        purpose="Every child with IBD in remission, with as few steroids as possible.",
        problem="Remission varies between sites, and too many children stay on steroids.",
        scale="network",
        sites=sites,
        conditions=["paediatric inflammatory bowel disease"],
        measures=[OUTCOME, BALANCING],
        known_measures=known_measures,
        facilitator=facilitator.email,
        charter=CharterTerms(
            purpose="Every child with IBD in remission, with as few steroids as possible.",
            decision_rule="majority",
            quorum=0.5,
            goals=("Raise remission at clinic visits", "Reduce steroid courses"),
            requires_patient_reviewer=True,
            meeting_cadence="monthly, with the patient and family advisory council",
            data_access_agreement=(
                "Members see measures by site and month; no one sees patient data through "
                "the community."
            ),
        ),
    )
    cid = created.community.id
    for login in members:
        if login.email == facilitator.email:
            continue
        invitation = invite(
            registry, operator, cid, email=login.email, roles=COMMUNITY_ROLE_OF[login.role]
        )
        answer_invitation(registry, operator, invitation.id, accept=True, on_behalf_of=login.email)
    qi_ref = "QI-DEMO-2021-01"  # the network's QI determination covers its changes
    package = add_cycle(
        registry,
        operator,
        cid,
        CycleInput(
            title="Network change package",
            kind="change_package",
            aim="More clinic visits with the child in remission, at every site.",
            predictions="Remission at visits rises within a year of the change.",
            questions="Does remission rise? Do steroid courses rise with it (balancing)?",
            plan_who="Each site's QI team with the network's facilitator",
            plan_where="Every clinic of the network",
            plan_when=truth.change_date - timedelta(days=30),
            plan_sites=tuple(sites),
            do_start=truth.change_date,
            do_what="Pre-visit planning, population management and shared decision-making.",
            determination_kind="qi_determination",
            determination_ref=qi_ref,
            measures=(
                CycleMeasureInput(OUTCOME, "outcome"),
                CycleMeasureInput(BALANCING, "balancing"),
            ),
        ),
        known_measures=known_measures,
    )
    site_cycles = {}
    for site, (when, _effect) in sorted(truth.site_changes.items()):
        site_cycles[site] = add_cycle(
            registry,
            operator,
            cid,
            CycleInput(
                title=f"{site}: the site's own adaptation of the change package",
                kind="process",
                parent_id=package.id,
                aim=f"Remission at {site}'s visits beyond what the network package gave.",
                plan_who=f"{site}'s QI team",
                plan_when=when - timedelta(days=30),
                plan_sites=(site,),
                do_start=when,
                do_sites=(site,),
                do_what="A local change of clinic practice, tested at this site only.",
                determination_kind="qi_determination",
                determination_ref=qi_ref,
                measures=(CycleMeasureInput(OUTCOME, "outcome"),),
            ),
            known_measures=known_measures,
        ).id
    return DemoCommunity(
        community_id=cid,
        change_package_cycle=package.id,
        site_cycles=site_cycles,
        facilitator=facilitator.email,
        members=tuple(login.email for login in members),
    )


def approve_by_community(
    registry: Registry,
    operator: Principal,
    community: DemoCommunity,
    ref: str,
    *,
    pilot_sites: list[str],
    logins: list[DemoLogin],
) -> int:
    """The community approves the knowledge object by its rule; returns the proposal's id.

    The facilitator records the meeting's votes: every member votes yes,
    the patient partner and the carer as the charter's reviewers.
    """
    identifier = ref.partition("@")[0]
    own_knowledge(
        registry, operator, community.community_id, identifier=identifier, pilot_sites=pilot_sites
    )
    opened = propose(
        registry,
        operator,
        community.community_id,
        kind="knowledge_approval",
        title="Approve the steroid-sparing review prompt for the pilot sites",
        body="Its tests pass; the evidence is the network's own interrupted time series.",
        payload={"knowledge": ref},
    )
    comments = {
        "carer": "As a parent: yes, if families are told why the review is suggested.",
        "patient": "Yes: fewer steroid courses is what we asked for.",
    }
    for login in logins:
        if login.email not in community.members:
            continue
        vote(
            registry,
            operator,
            opened.id,
            choice="yes",
            comment=comments.get(login.role, "Reviewed against the ECCO-ESPGHAN guideline."),
            on_behalf_of=login.email,
        )
    close(registry, operator, opened.id, reason="Approved at the monthly meeting.")
    for login in _one_of_each(logins, community, NASSS_SEEN_DIFFERENTLY):
        record_nasss(
            registry,
            operator,
            community.community_id,
            subject=identifier,
            ratings={**NASSS_RATINGS, **NASSS_SEEN_DIFFERENTLY[login.role]},
            on_behalf_of=login.email,
        )
    return opened.id


def _one_of_each(
    logins: list[DemoLogin], community: DemoCommunity, roles: Mapping[str, object]
) -> list[DemoLogin]:
    """The first member login of each of ``roles``."""
    first: dict[str, DemoLogin] = {}
    for login in logins:
        if login.role in roles and login.email in community.members:
            first.setdefault(login.role, login)
    return [first[r] for r in roles if r in first]


def welcome_families(
    registry: Registry, operator: Principal, community: DemoCommunity, logins: list[DemoLogin]
) -> None:
    """The families who joined careloop join the community too (patients as members)."""
    for login in logins:
        invitation = invite(
            registry,
            operator,
            community.community_id,
            email=login.email,
            roles=COMMUNITY_ROLE_OF[login.role],
        )
        answer_invitation(registry, operator, invitation.id, accept=True, on_behalf_of=login.email)


def rate_maturity(
    registry: Registry, operator: Principal, community: DemoCommunity, logins: list[DemoLogin]
) -> str:
    """Three members rate the community's maturity, recorded at a workshop; the round's name."""
    round_name = utcnow().strftime("%Y-%m")
    for login in _one_of_each(logins, community, MATURITY_LEVELS):
        record_maturity(
            registry,
            operator,
            community.community_id,
            round_name=round_name,
            ratings={d: (level, "") for d, level in MATURITY_LEVELS[login.role].items()},
            on_behalf_of=login.email,
        )
    return round_name


def record_deployment_cycle(
    registry: Registry,
    operator: Principal,
    community: DemoCommunity,
    network: SyntheticNetwork,
    ref: str,
    *,
    known_measures: list[str],
) -> int:
    """The knowledge object's deployment at the pilot sites, as a cycle; Act on the others.

    Recorded before the deployment: the knowledge object randomises its card's
    wording, so it is deployed under this cycle and its QI determination.
    """
    truth = network.truth
    cycle = add_cycle(
        registry,
        operator,
        community.community_id,
        CycleInput(
            title="Steroid-sparing review prompt at the pilot sites",
            kind="knowledge_deployment",
            knowledge_ref=ref,
            aim="Fewer visits with corticosteroids at the pilot sites.",
            predictions="Steroid use at visits falls at the pilot sites, not elsewhere.",
            plan_who="The pilot sites' clinicians",
            plan_when=truth.ko_date - timedelta(days=30),
            plan_sites=truth.ko_sites,
            do_start=truth.ko_date,
            do_sites=truth.ko_sites,
            do_what="The decision-support card shown in the EHR at the pilot sites, its "
            "wording randomised between two variants by clinician.",
            randomised=True,
            determination_kind="qi_determination",
            determination_ref="QI-DEMO-2023-02",
            measures=(
                CycleMeasureInput(BALANCING, "outcome"),
                CycleMeasureInput(OUTCOME, "balancing"),
            ),
        ),
        known_measures=known_measures,
    ).id
    record_act(
        registry,
        operator,
        community.change_package_cycle,
        decision="adopt",
        rationale="Kept network-wide at the annual review; the Study shows the effect "
        "with its uncertainty.",
    )
    record_decision(
        registry,
        operator,
        community.community_id,
        kind="reflection",
        title="What the first site adaptations taught us",
        decision="Nest each site's own change in the network package, one site at a time.",
        did_not_work="Changing two things at one site in the same months left us unable "
        "to say which helped.",
        why="The Study compares before and after one change date per site.",
    )
    return cycle
