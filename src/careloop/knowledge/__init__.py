"""Knowledge objects: versioned packages of decision rules, their tests, lifecycle and deployments.

- :func:`load_package` / :func:`package_from_dict` read and validate a
  package (folder or zip) with file-and-JSON-path errors;
  :meth:`KnowledgePackage.evaluate` proposes cards for a hook call and
  :meth:`KnowledgePackage.run_tests` runs the package's own tests.
- :mod:`careloop.knowledge.library` stores versions and takes them through
  draft → in_review → approved → active → retired, records deployments and
  answers :func:`deployments_for` a measure.
- What a deployment changed is feedback to practice:
  :mod:`careloop.practice.feedback.impact`.
- :func:`card_problems` / :func:`response_problems` check CDS Hooks 2.0 card
  rules.
"""

from careloop.knowledge.cards import Problem, card_problems, response_problems
from careloop.knowledge.library import (
    ActiveService,
    CommunityApproval,
    Deployment,
    KnowledgeVersion,
    Transition,
    VersionDetail,
    VersionDiff,
    activate,
    active_services,
    add_version,
    approve,
    deployments,
    deployments_for,
    diff,
    export_version,
    list_versions,
    retire,
    send_back,
    show,
    submit,
)
from careloop.knowledge.package import (
    USUAL_CARE,
    CaseResult,
    KnowledgePackage,
    ProposedCard,
    TestReport,
    load_package,
    new_package_skeleton,
    package_from_dict,
    write_package,
)

__all__ = [
    "USUAL_CARE",
    "ActiveService",
    "CaseResult",
    "CommunityApproval",
    "Deployment",
    "KnowledgePackage",
    "KnowledgeVersion",
    "Problem",
    "ProposedCard",
    "TestReport",
    "Transition",
    "VersionDetail",
    "VersionDiff",
    "activate",
    "active_services",
    "add_version",
    "approve",
    "card_problems",
    "deployments",
    "deployments_for",
    "diff",
    "export_version",
    "list_versions",
    "load_package",
    "new_package_skeleton",
    "package_from_dict",
    "response_problems",
    "retire",
    "send_back",
    "show",
    "submit",
    "write_package",
]
