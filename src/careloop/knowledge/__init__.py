"""Knowledge objects: versioned packages of decision rules, their tests, lifecycle and deployments.

- :func:`load_package` / :func:`package_from_dict` read and validate a
  package (folder or zip) with file-and-JSON-path errors;
  :meth:`KnowledgePackage.evaluate` proposes cards for a hook call and
  :meth:`KnowledgePackage.run_tests` runs the package's own tests.
- :mod:`careloop.knowledge.library` stores versions and takes them through
  draft → in_review → approved → active → retired, records deployments and
  answers :func:`deployments_for` a measure.
- :func:`impact_report` shows a deployment's target measure before and after
  (SPC phases, interrupted time series) with card acceptance and the
  card-variant comparison; :func:`deployment_annotations` marks charts.
- :func:`card_problems` / :func:`response_problems` check CDS Hooks 2.0 card
  rules.
"""

from typing import Any

from careloop.knowledge.cards import Problem, card_problems, response_problems
from careloop.knowledge.library import (
    ActiveService,
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
    "ActiveService",
    "CaseResult",
    "Deployment",
    "ImpactReport",
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
    "deployment_annotations",
    "deployments",
    "deployments_for",
    "diff",
    "export_version",
    "impact_report",
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


_LAZY = {"ImpactReport", "deployment_annotations", "impact_report"}


def __getattr__(name: str) -> Any:
    # The impact report needs the SPC/ITS stack (statsmodels, plotly): loaded on first use,
    # so the CDS service and the command line start quickly.
    if name in _LAZY:
        from careloop.knowledge import impact

        return getattr(impact, name)
    raise AttributeError(f"module 'careloop.knowledge' has no attribute {name!r}")
