"""An audit entry in plain words, as the auditor's page shows it."""

from __future__ import annotations

import json
from typing import Any

from careloop.store.models import AuditEntry
from careloop.trust.audit_search import describe


def _entry(**values: Any) -> AuditEntry:
    base: dict[str, Any] = {
        "seq": 7,
        "occurred_at": "2026-12-07T10:00:00.000000Z",
        "action": "read",
        "category": "clinical",
        "outcome": "success",
        "details": None,
        "reason": None,
        "patient_pseudo_id": None,
    }
    return AuditEntry(**(base | values))


def test_a_refused_read_of_a_patient_says_it_was_refused_and_whose():
    words = describe(_entry(outcome="not_found", patient_pseudo_id="p-3f9a"))
    assert words == "Read (clinical) for patient p-3f9a. Refused: not found or not theirs to see."


def test_a_knowledge_approval_names_the_object_version_and_reason():
    details = {"knowledge_object": "ibd-remission", "version": "1.0.0", "from": "in_review"}
    words = describe(
        _entry(
            action="knowledge.approve",
            category="knowledge",
            reason="Reviewed against the guideline",
            details=json.dumps(details),
        )
    )
    assert words == (
        "Knowledge object ibd-remission version 1.0.0 approved. "
        "Reason given: Reviewed against the guideline. from: in_review."
    )


def test_a_look_at_the_audit_trail_leaves_out_empty_facts():
    details = {"entries": 50, "filter": {}, "view": "audit page"}
    words = describe(_entry(category="audit", details=json.dumps(details)))
    assert words == "Looked at the audit trail. entries: 50."


def test_long_details_are_cut_short():
    words = describe(_entry(action="update", details=json.dumps({"fields": "x" * 500})))
    assert words.startswith("Changed (clinical). fields: xxx") and len(words) < 300
    assert words.endswith("….")


def test_an_action_careloop_has_no_words_for_reads_as_words():
    details = json.dumps({"community": 1, "cycle": 4})
    assert describe(
        _entry(action="cycle.findings_list", category="community", details=details)
    ) == ("Cycle findings list (community). community: 1; cycle: 4.")
    assert describe(_entry(action="community.report", category="community")) == "Community report."
