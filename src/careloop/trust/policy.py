"""Who may do what, where: careloop's access policy as one table.

Each row of :data:`POLICY` grants a role an action within a scope:

- ``installation``: everywhere (the role's membership has no site);
- ``site``: at the sites where the user holds the role (everywhere when the
  membership is installation-wide, as for a network analyst or auditor);
- ``own_record``: the patient's own record (a patient's login);
- ``proxied_records``: the records of patients the carer is proxy for, each
  action only where the carer's link holds the scope :data:`CARER_SCOPE_FOR`
  names (a carer without ``see_results`` still sees the patient's name, but
  no answers or scores).

Anything not granted here is denied. ``docs/security.md`` renders this table
(``careloop policy show`` prints it) and a test keeps the two in step.

Decisions where the issue was silent: the installation ``admin`` manages
sites, users and tokens but reads no clinical data (separation of duties: an
admin who needs clinical access grants themself a site role, which is an
audited privilege change); ``analyst`` sees pseudonymised data only;
``auditor`` reads the audit log and nothing clinical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal[
    "admin", "site_lead", "clinician", "data_entry", "analyst", "auditor", "patient", "carer"
]
ScopeKind = Literal["installation", "site", "own_record", "proxied_records"]
CarerScope = Literal["fill_forms", "see_results", "manage_consent"]

ROLES: tuple[Role, ...] = get_args(Role)
CARER_SCOPES: tuple[CarerScope, ...] = get_args(CarerScope)

CARER_SCOPE_DESCRIPTIONS: dict[CarerScope, str] = {
    "fill_forms": "Fill in questionnaires for the patient.",
    "see_results": "See the patient's answers, scores and charts.",
    "manage_consent": (
        "Change how the patient's information is used; while the patient is a child "
        "(under the hand-over age), also decide what the other carers may do."
    ),
}

ROLE_DESCRIPTIONS: dict[Role, str] = {
    "admin": "Runs the installation: sites, users, tokens. No clinical data.",
    "site_lead": "Leads a site: its users, patients, records and exports.",
    "clinician": "Cares for the site's patients: reads and records their data.",
    "data_entry": "Enters and corrects the site's records.",
    "analyst": "Analyses pseudonymised data of the sites they serve; no direct identifiers.",
    "auditor": "Reads the audit log; no clinical data.",
    "patient": "Sees and contributes to their own record (PROMs, consent).",
    "carer": "Acts as proxy for the patients linked to them.",
}

AlertScope = Literal["site", "network"]
ALERT_OWNERS: dict[AlertScope, tuple[Role, ...]] = {
    "site": ("site_lead", "analyst"),
    "network": ("analyst",),
}
"""Who owns a measure's alerts (careloop has no separate QI-lead role): a site's alerts (a
signal at the site, its monthly feedback report) go to its site leads and to the analysts
who serve it (an installation-wide analyst serves every site); the network's alerts to the
installation-wide analysts."""

# Roles that only an installation admin may grant.
PRIVILEGED_ROLES: frozenset[Role] = frozenset({"admin", "site_lead", "auditor"})
# Roles that may hold an installation-wide membership (no site).
INSTALLATION_WIDE_ROLES: frozenset[Role] = frozenset({"admin", "analyst", "auditor"})


@dataclass(frozen=True)
class Action:
    """Something a user can do."""

    name: str
    """Stable name, e.g. ``patient.read``."""
    description: str
    """What it allows, in plain words."""
    identifiable: bool
    """Whether it touches direct identifiers or clinical data (audited when it does)."""
    reads_only: bool = False
    """It changes nothing in the registry but the audit trail (see :func:`reads_only`)."""


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("site.read", "List sites and their details.", False, reads_only=True),
        Action("site.manage", "Create and change sites.", False),
        Action(
            "form.manage", "Import form definitions (the data dictionary) and new versions.", False
        ),
        Action("user.read", "List users and their roles.", False, reads_only=True),
        Action("user.manage", "Create, disable users and change their roles.", False),
        Action("token.manage_own", "Create and revoke one's own API tokens.", False),
        Action("patient.read", "Read patients with direct identifiers.", True, reads_only=True),
        Action(
            "patient.read_pseudonymised",
            "Read patients by pseudonym, no identifiers.",
            False,
            reads_only=True,
        ),
        Action("patient.create", "Register a patient.", True),
        Action("patient.update", "Change a patient's details.", True),
        Action("patient.delete", "Delete a patient registered in error.", True),
        Action("consent.update", "Record a change of consent.", True),
        Action("record.read", "Read form responses with identifiers.", True, reads_only=True),
        Action("record.write", "Enter and edit form responses.", True),
        Action("record.export", "Export identifiable records.", True, reads_only=True),
        Action("audit.read", "Read and verify the audit log.", False, reads_only=True),
        Action(
            "warehouse.query",
            "Query the pseudonymised warehouse and run analyses.",
            False,
            reads_only=True,
        ),
        Action("warehouse.manage", "Load, refresh and check the warehouse.", False),
        Action(
            "measure.read",
            "See measure results (aggregates by site and period) and their dashboards.",
            False,
            reads_only=True,
        ),
        Action(
            "measure.annotate",
            "Add a note or start a new phase on a measure's chart (the network's, or a site's).",
            False,
        ),
        Action(
            "knowledge.read",
            "Browse the knowledge library and its deployments.",
            False,
            reads_only=True,
        ),
        Action(
            "knowledge.author", "Add knowledge object versions and submit them for review.", False
        ),
        Action("knowledge.approve", "Approve knowledge object versions whose tests pass.", False),
        Action("knowledge.deploy", "Activate (silent or live), deploy and retire versions.", False),
        Action("cds.manage", "Trust CDS clients (EHRs) that call the CDS Hooks service.", False),
        Action(
            "community.read",
            "See the learning communities one belongs to: members, charter, proposals, "
            "priorities, decisions and cycles (no patient data).",
            False,
            reads_only=True,
        ),
        Action("community.create", "Start a learning community (and facilitate it).", False),
        Action(
            "community.participate",
            "Take part in one's learning communities: invite, join, propose, vote, record "
            "priorities, decisions and cycles (no patient data).",
            False,
        ),
    )
}

_CARE_TEAM: tuple[Role, ...] = ("site_lead", "clinician", "data_entry")
_KNOWLEDGE_STEWARDS: tuple[tuple[Role, ScopeKind], ...] = (
    ("site_lead", "site"),
    ("admin", "installation"),
)

POLICY: dict[tuple[Role, str], ScopeKind] = {
    # Everyone signed in may see the list of sites of the network.
    **{(role, "site.read"): "installation" for role in ROLES},
    ("admin", "site.manage"): "installation",
    ("admin", "form.manage"): "installation",
    ("admin", "user.read"): "installation",
    ("admin", "user.manage"): "installation",
    ("site_lead", "user.read"): "site",
    ("site_lead", "user.manage"): "site",
    **{
        (role, "token.manage_own"): "installation"
        for role in ("admin", "site_lead", "clinician", "data_entry", "analyst", "auditor")
    },
    **{(role, "patient.read"): "site" for role in _CARE_TEAM},
    **{(role, "patient.read_pseudonymised"): "site" for role in (*_CARE_TEAM, "analyst")},
    **{(role, "patient.create"): "site" for role in _CARE_TEAM},
    **{(role, "patient.update"): "site" for role in _CARE_TEAM},
    ("site_lead", "patient.delete"): "site",
    **{(role, "consent.update"): "site" for role in _CARE_TEAM},
    **{(role, "record.read"): "site" for role in _CARE_TEAM},
    **{(role, "record.write"): "site" for role in _CARE_TEAM},
    ("site_lead", "record.export"): "site",
    ("auditor", "audit.read"): "site",
    ("analyst", "warehouse.query"): "site",
    ("site_lead", "warehouse.query"): "site",
    ("admin", "warehouse.manage"): "installation",
    # Measure results are aggregates: every staff role sees every site's, so sites can
    # compare themselves with the network (patients and carers do not see them).
    **{
        (role, "measure.read"): "installation"
        for role in ("admin", "site_lead", "clinician", "data_entry", "analyst", "auditor")
    },
    # Notes and phase starts on measure charts: a site lead for their sites' charts, an
    # analyst for the sites they serve; the network's chart needs an installation-wide
    # membership (a network analyst). Careloop has no separate "QI lead" role: the site
    # lead leads improvement at a site, the network analyst across the network.
    ("site_lead", "measure.annotate"): "site",
    ("analyst", "measure.annotate"): "site",
    # Knowledge objects no community owns: site leads and the admin author, approve and
    # deploy. One a community owns is approved and spread by the community's decision
    # rule instead (careloop.community.knowledge); trusting an EHR is an installation
    # decision.
    **{(role, "knowledge.read"): "site" for role in ("site_lead", "clinician", "analyst")},
    ("admin", "knowledge.read"): "installation",
    **{
        (role, action): scope
        for action in ("knowledge.author", "knowledge.approve", "knowledge.deploy")
        for role, scope in _KNOWLEDGE_STEWARDS
    },
    ("admin", "cds.manage"): "installation",
    # Learning communities hold no patient data: anyone signed in may take part, and
    # careloop.community checks membership (and community roles) for each community.
    # A community role never widens patient access: that stays with the rows above.
    **{(role, "community.read"): "installation" for role in ROLES},
    **{(role, "community.participate"): "installation" for role in ROLES},
    **{
        (role, "community.create"): "installation"
        for role in ("admin", "site_lead", "clinician", "analyst")
    },
    # Patients and carers: their own (or proxied) record only.
    ("patient", "patient.read"): "own_record",
    ("patient", "consent.update"): "own_record",
    ("patient", "record.read"): "own_record",
    ("patient", "record.write"): "own_record",
    ("carer", "patient.read"): "proxied_records",
    ("carer", "consent.update"): "proxied_records",
    ("carer", "record.read"): "proxied_records",
    ("carer", "record.write"): "proxied_records",
}


# What a carer's link must hold for each action the policy grants carers on
# ``proxied_records``. None: every linked carer (the patient's name and the link itself).
CARER_SCOPE_FOR: dict[str, CarerScope | None] = {
    "patient.read": None,
    "record.read": "see_results",
    "record.write": "fill_forms",
    "consent.update": "manage_consent",
}


def carer_scope_for(action: str) -> CarerScope | None:
    """The scope a carer's link needs for ``action`` on ``proxied_records`` (None: any link)."""
    if action not in CARER_SCOPE_FOR:
        raise KeyError(f"no carer scope is defined for {action!r}")
    return CARER_SCOPE_FOR[action]


def reads_only(action: str) -> bool:
    """Whether ``action`` changes nothing in the registry but the audit trail.

    Its unit of work then runs in a read-only transaction, which never takes
    SQLite's write lock (careloop.trust.work).
    """
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    return ACTIONS[action].reads_only


def grants(role: Role, action: str) -> ScopeKind | None:
    """The scope in which ``role`` may perform ``action``, or None."""
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    return POLICY.get((role, action))


def policy_rows() -> list[tuple[str, str, str]]:
    """The policy as (role, action, scope) rows in a stable order, for docs and the CLI."""
    order = {name: i for i, name in enumerate(ACTIONS)}
    return sorted(
        ((role, action, scope) for (role, action), scope in POLICY.items()),
        key=lambda row: (ROLES.index(row[0]), order[row[1]]),
    )


def policy_markdown() -> str:
    """The role × action table as Markdown (what docs/security.md embeds)."""
    header = "| action | " + " | ".join(ROLES) + " |"
    rule = "|---|" + "---|" * len(ROLES)
    lines = [header, rule]
    for name in ACTIONS:
        cells = [POLICY.get((role, name), "—") for role in ROLES]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
