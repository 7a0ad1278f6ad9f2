"""The knowledge library: lifecycle by authorised roles, audited with reasons; deployments."""

from __future__ import annotations

import copy
import json

import pytest
from sqlalchemy import select

from careloop.content.ibd import PACKAGE as IBD
from careloop.core.errors import Conflict, InputError, PermissionDenied, ValidationFailed
from careloop.knowledge import (
    activate,
    active_services,
    add_version,
    approve,
    deployments_for,
    diff,
    list_versions,
    load_package,
    package_from_dict,
    retire,
    send_back,
    show,
    submit,
)
from careloop.store.models import AuditEntry
from careloop.trust.identity import resolve_token
from careloop.trust.principal import RequestContext
from tests.foundation import Installation
from tests.practice.cds_support import trial_cycle


def principal(inst: Installation, key: str):
    return resolve_token(inst.registry, inst.tokens[key], RequestContext())


def package(identifier: str, version: str = "1.0.0", *, break_tests: bool = False):
    data = copy.deepcopy(load_package(IBD.knowledge_object("ibd_steroid_review")).to_dict())
    data["metadata"]["identifier"] = identifier
    data["metadata"]["version"] = version
    data["service"]["id"] = identifier
    if break_tests:
        data["tests"][0]["expect"] = []
    return package_from_dict(data)


def audit_actions(inst: Installation, identifier: str) -> list[tuple[str, str, str | None]]:
    with inst.registry.transaction() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.category == "knowledge"))
        return [
            (r.action, r.outcome, r.reason)
            for r in rows
            if r.details and json.loads(r.details).get("knowledge_object") == identifier
        ]


def test_a_version_goes_from_draft_to_active_by_authorised_people_with_reasons(installation):
    inst = installation
    author, reviewer = principal(inst, "site_lead@A"), principal(inst, "site_lead@B")
    added = add_version(inst.registry, author, package("lc-one"), reason="from the PDSA cycle")
    assert added.status == "draft" and added.tests_passed
    submit(inst.registry, author, "lc-one@1.0.0", reason="ready for review")
    approve(inst.registry, reviewer, "lc-one@1.0.0", reason="tests and evidence checked")
    dep = activate(
        inst.registry,
        reviewer,
        "lc-one",
        mode="silent",
        sites=["A"],
        reason="silent pilot",
        cycle_id=trial_cycle(inst),  # its card's wording is randomised
    )
    assert dep.mode == "silent" and dep.sites == ("A",)
    assert dep.measures == ("sustained-steroid-free-remission",)
    detail = show(inst.registry, principal(inst, "clinician@A"), "lc-one")
    assert [t.to_status for t in detail.transitions] == ["draft", "in_review", "approved", "active"]
    assert [t.reason for t in detail.transitions][-1] == "silent pilot"
    assert detail.version.mode == "silent"
    served = active_services(inst.registry)["lc-one"]
    assert served.mode == "silent" and served.serves_site("A") and not served.serves_site("B")
    actions = [a for a, outcome, _ in audit_actions(inst, "lc-one") if outcome == "success"]
    assert actions == [
        "knowledge.add",
        "knowledge.submit",
        "knowledge.approve",
        "knowledge.activate",
        "knowledge.deploy",
    ]


def test_roles_without_the_action_are_denied_and_the_attempt_is_audited(installation):
    inst = installation
    with pytest.raises(PermissionDenied):
        add_version(inst.registry, principal(inst, "clinician@A"), package("lc-denied"), reason="x")
    with inst.registry.transaction() as session:
        denied = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "knowledge.author", AuditEntry.outcome == "denied"
            )
        ).all()
    assert denied


def test_the_author_cannot_approve_their_own_version(installation):
    inst = installation
    author = principal(inst, "site_lead@A")
    add_version(inst.registry, author, package("lc-four-eyes"), reason="new")
    submit(inst.registry, author, "lc-four-eyes", reason="review please")
    with pytest.raises(PermissionDenied, match="someone other"):
        approve(inst.registry, author, "lc-four-eyes", reason="looks fine to me")


def test_a_version_whose_tests_fail_cannot_be_approved_and_stays_in_review(installation):
    inst = installation
    author, reviewer = principal(inst, "site_lead@A"), principal(inst, "admin")
    added = add_version(
        inst.registry, author, package("lc-failing", break_tests=True), reason="new"
    )
    assert not added.tests_passed
    submit(inst.registry, author, "lc-failing", reason="review")
    with pytest.raises(ValidationFailed, match="tests do not pass") as exc:
        approve(inst.registry, reviewer, "lc-failing", reason="approve")
    assert exc.value.details[0].location.startswith("tests.json:two prednisolone courses")
    assert show(inst.registry, reviewer, "lc-failing").version.status == "in_review"
    send_back(inst.registry, reviewer, "lc-failing", reason="fix the first test")
    assert show(inst.registry, reviewer, "lc-failing").version.status == "draft"


def test_steps_out_of_order_and_missing_reasons_are_refused(installation):
    inst = installation
    lead = principal(inst, "site_lead@A")
    add_version(inst.registry, lead, package("lc-order"), reason="new")
    with pytest.raises(Conflict, match="is draft; activation needs"):
        activate(inst.registry, lead, "lc-order", reason="go")
    with pytest.raises(InputError, match="reason"):
        submit(inst.registry, lead, "lc-order", reason="  ")
    with pytest.raises(Conflict, match="already in the library"):
        add_version(inst.registry, lead, package("lc-order"), reason="again")


def test_activating_a_new_version_supersedes_the_old_one_and_diff_shows_the_change(installation):
    inst = installation
    author, reviewer = principal(inst, "site_lead@A"), principal(inst, "admin")
    cycle = trial_cycle(inst)
    for version in ("1.0.0", "1.1.0"):
        ref = f"lc-versions@{version}"
        add_version(inst.registry, author, package("lc-versions", version), reason="new")
        submit(inst.registry, author, ref, reason="review")
        approve(inst.registry, reviewer, ref, reason="ok")
        activate(inst.registry, reviewer, ref, reason=f"go live {version}", cycle_id=cycle)
    statuses = {
        v.version: v.status for v in list_versions(inst.registry, reviewer, search="lc-versions")
    }
    assert statuses == {"1.0.0": "retired", "1.1.0": "active"}
    deps = [
        d
        for d in deployments_for(inst.registry, "sustained-steroid-free-remission")
        if d.identifier == "lc-versions"
    ]
    assert [d.version for d in deps] == ["1.0.0", "1.1.0"]
    assert deps[0].ended_at is not None and deps[1].ended_at is None
    changes = diff(inst.registry, reviewer, "lc-versions@1.0.0", "lc-versions@1.1.0")
    assert changes.changed == ("metadata.json",)
    assert '-  "version": "1.0.0"' in changes.text and '+  "version": "1.1.0"' in changes.text
    retire(inst.registry, reviewer, "lc-versions@1.1.0", reason="withdrawn")
    assert "lc-versions" not in active_services(inst.registry)


def test_search_finds_versions_by_keyword_and_status(installation):
    inst = installation
    lead = principal(inst, "site_lead@B")
    add_version(inst.registry, lead, package("lc-search"), reason="new")
    found = list_versions(inst.registry, lead, search="STEROID-SPARING lc-search")
    assert [v.ref for v in found] == ["lc-search@1.0.0"]
    assert not list_versions(inst.registry, lead, search="lc-search", status="active")


def test_a_service_id_cannot_be_taken_by_another_knowledge_object(installation):
    inst = installation
    lead = principal(inst, "site_lead@A")
    add_version(inst.registry, lead, package("lc-owner"), reason="new")
    data = package("lc-thief").to_dict()
    data["service"]["id"] = "lc-owner"
    with pytest.raises(Conflict, match="belongs to lc-owner"):
        add_version(inst.registry, lead, package_from_dict(data), reason="new")
