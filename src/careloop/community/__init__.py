"""Learning communities and their learning cycles (issue 16).

A layer above ``careloop.knowledge`` and below ``careloop.practice``:

- :mod:`~careloop.community.communities`: communities at any scale, members
  with community roles, invitations; :mod:`~careloop.community.charters`
  the versioned charter;
- :mod:`~careloop.community.proposals`: proposals and votes decided by the
  charter's rule (:mod:`~careloop.community.rules`), priorities, and the
  community governance of the knowledge objects it owns;
- :mod:`~careloop.community.log`: the decision and reflection log, NASSS
  assessments; :mod:`~careloop.community.nasss` their aggregated profile;
- :mod:`~careloop.community.strategy`: aims, driver diagrams and families
  of measures;
- :mod:`~careloop.community.maturity`: members' maturity ratings with the
  evidence careloop scores itself;
- :mod:`~careloop.community.toolkit`: tools and case studies (a starter set
  loaded when a community is created), ratings, their use by cycles, and
  cycles' behaviour-change designs;
- :mod:`~careloop.community.cycles`: learning (PDSA) cycles with Plan, Do
  and Act, and their changes as chart annotations;
  :mod:`~careloop.community.cycle_input` what a member records of a cycle
  and what makes it valid;
- :mod:`~careloop.community.engagement`: who contributed what, and the
  share of patients and carers;
- :mod:`~careloop.community.findings`: coded focus groups and interviews
  attached to a cycle (themes and agreement in its Study, transcripts
  restricted);
- ``careloop.community.study``: the automatic Study of a cycle (pure
  functions on measure results); :func:`study_cycle` studies a stored cycle
  and :func:`study_of` reads its measures' stored results to do so (the one
  loader the CLI, the pages, the API and the reports share).

Every service runs in one unit of work (careloop.trust.work): the policy
lets anyone signed in take part, the service checks membership of the
community at hand, and each change, read and refusal is audited. A
community role never widens what a person may see of patients.
"""

from careloop.community.charters import CharterTerms, CharterView
from careloop.community.communities import (
    CommunityDetail,
    CommunityView,
    InvitationView,
    MemberView,
    answer_invitation,
    create_community,
    invite,
    leave,
    list_communities,
    my_invitations,
    set_member_roles,
    show_community,
)
from careloop.community.cycle_input import CycleInput, CycleMeasureInput
from careloop.community.cycles import (
    ChartPhase,
    CycleChange,
    CycleView,
    add_cycle,
    cycle_changes,
    list_cycles,
    measure_ids,
    measure_improvements,
    record_act,
    show_cycle,
    update_cycle,
)
from careloop.community.engagement import (
    CONTRIBUTIONS,
    Engagement,
    MemberEngagement,
    engagement,
)
from careloop.community.findings import (
    FindingsView,
    add_findings,
    list_findings,
    read_findings_project,
    read_project_file,
)
from careloop.community.log import (
    DecisionView,
    Links,
    NassView,
    decisions,
    nasss_assessments,
    record_decision,
    record_nasss,
)
from careloop.community.maturity import (
    DomainRating,
    DomainScore,
    MaturityProfile,
    MaturityRatingView,
    MaturityRound,
    maturity_profile,
    record_maturity,
)
from careloop.community.nasss import DomainProfile, NasssRound, nasss_profile, nasss_profile_of
from careloop.community.ownership import own_knowledge
from careloop.community.priorities import PriorityView, add_priority, list_priorities
from careloop.community.proposals import (
    ProposalView,
    VoteView,
    close,
    list_proposals,
    propose,
    show_proposal,
    vote,
    withdraw,
)
from careloop.community.rules import Ballot, Outcome, RuleSpec, decide
from careloop.community.strategy import (
    AimInput,
    AimMeasure,
    AimView,
    ChangeIdea,
    PrimaryDriver,
    SecondaryDriver,
    list_aims,
    set_aim,
)
from careloop.community.studying import StoredStudy, study_cycle, study_of
from careloop.community.toolkit import (
    DesignView,
    ToolView,
    add_tool,
    cycle_design,
    list_toolkit,
    load_starter_toolkit,
    rate_tool,
    record_design,
    use_tool,
)

__all__ = [
    "CONTRIBUTIONS",
    "AimInput",
    "AimMeasure",
    "AimView",
    "Ballot",
    "ChangeIdea",
    "ChartPhase",
    "CharterTerms",
    "CharterView",
    "CommunityDetail",
    "CommunityView",
    "CycleChange",
    "CycleInput",
    "CycleMeasureInput",
    "CycleView",
    "DecisionView",
    "DesignView",
    "DomainProfile",
    "DomainRating",
    "DomainScore",
    "Engagement",
    "FindingsView",
    "InvitationView",
    "Links",
    "MaturityProfile",
    "MaturityRatingView",
    "MaturityRound",
    "MemberEngagement",
    "MemberView",
    "NassView",
    "NasssRound",
    "Outcome",
    "PrimaryDriver",
    "PriorityView",
    "ProposalView",
    "RuleSpec",
    "SecondaryDriver",
    "StoredStudy",
    "ToolView",
    "VoteView",
    "add_cycle",
    "add_findings",
    "add_priority",
    "add_tool",
    "answer_invitation",
    "close",
    "create_community",
    "cycle_changes",
    "cycle_design",
    "decide",
    "decisions",
    "engagement",
    "invite",
    "leave",
    "list_aims",
    "list_communities",
    "list_cycles",
    "list_findings",
    "list_priorities",
    "list_proposals",
    "list_toolkit",
    "load_starter_toolkit",
    "maturity_profile",
    "measure_ids",
    "measure_improvements",
    "my_invitations",
    "nasss_assessments",
    "nasss_profile",
    "nasss_profile_of",
    "own_knowledge",
    "propose",
    "rate_tool",
    "read_findings_project",
    "read_project_file",
    "record_act",
    "record_decision",
    "record_design",
    "record_maturity",
    "record_nasss",
    "set_aim",
    "set_member_roles",
    "show_community",
    "show_cycle",
    "show_proposal",
    "study_cycle",
    "study_of",
    "update_cycle",
    "use_tool",
    "vote",
    "withdraw",
]
