"""The knowledge library: versions, their lifecycle, and deployments.

Lifecycle: ``draft → in_review → approved → active → retired`` (and
``in_review → draft`` when reviewers send a version back). Each step is
taken by a principal the policy allows (``knowledge.author``,
``knowledge.approve``, ``knowledge.deploy``), needs a reason, and writes a
transition row and an audit entry in the same transaction. A version is
approved only when its tests pass, and not by the person who added it
(four eyes; the local operator at the command line is exempt). Only active
versions serve; ``mode`` says whether an active version shows its cards
(``live``) or only evaluates and logs them (``silent``). Activating a
version records a deployment (what, which sites, when), which later
annotates the charts of the measures the version declares it should move.

A knowledge object a learning community owns (``careloop.community``) is
approved by the community's decision rule, not by a site lead or the admin:
:func:`approve` refuses it and names the way, and the community's passed
proposal calls :func:`approve_by_decision`. Its deployment through
:func:`activate` stays within the community's pilot sites; spreading it
further is the community's decision too (:func:`activate_within`).
"""

from __future__ import annotations

from careloop.knowledge.library.deploying import (
    activate,
    activate_within,
    record_deployment_provenance,
    retire,
)
from careloop.knowledge.library.lifecycle import (
    add_version,
    approve,
    approve_by_decision,
    community_owner,
    pilot_sites,
    send_back,
    submit,
)
from careloop.knowledge.library.reading import (
    deployments,
    deployments_for,
    diff,
    export_version,
    list_versions,
    show,
)
from careloop.knowledge.library.serving import (
    ActiveService,
    active_services,
    services_changed,
)
from careloop.knowledge.library.views import (
    CATEGORY,
    CommunityApproval,
    Deployment,
    KnowledgeVersion,
    Mode,
    Status,
    Transition,
    VersionDetail,
    VersionDiff,
)

__all__ = [
    "CATEGORY",
    "ActiveService",
    "CommunityApproval",
    "Deployment",
    "KnowledgeVersion",
    "Mode",
    "Status",
    "Transition",
    "VersionDetail",
    "VersionDiff",
    "activate",
    "activate_within",
    "active_services",
    "add_version",
    "approve",
    "approve_by_decision",
    "community_owner",
    "deployments",
    "deployments_for",
    "diff",
    "export_version",
    "list_versions",
    "pilot_sites",
    "record_deployment_provenance",
    "retire",
    "send_back",
    "services_changed",
    "show",
    "submit",
]
