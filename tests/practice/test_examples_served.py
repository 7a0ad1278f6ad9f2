"""Contract: every knowledge object of the active content packages, served through the CDS service, answers its own tests
with responses that satisfy the CDS Hooks card rules (uuids included)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from careloop.core.content import active_content
from careloop.knowledge import load_package, response_problems
from careloop.knowledge.cards import card_problems
from careloop.practice import VerifiedCall, invoke
from tests.practice.cds_support import deploy

PACKAGES = active_content().knowledge_objects()


@pytest.mark.parametrize("folder", PACKAGES, ids=lambda p: p.name)
def test_an_example_serves_its_test_cases_with_spec_conforming_cards(installation, folder):
    package = load_package(folder)
    assert package.run_tests().passed
    deploy(installation, package)
    call = VerifiedCall(issuer="https://ehr.example.org/", tenant=None, site_code="A")
    for case in package.tests:
        body = {
            "hookInstance": str(uuid.uuid4()),
            "hook": package.hook,
            "context": case.get("context", {}),
            "prefetch": case.get("prefetch", {}),
        }
        today = date.fromisoformat(case["today"])
        response = invoke(installation.registry, package.service_id, body, call, today=today)
        assert response_problems(response) == [], case["name"]
        assert len(response["cards"]) == len(case["expect"]), case["name"]
        for card in response["cards"]:
            assert card_problems(card, require_uuid=True) == []
            assert all(s.get("uuid") for s in card.get("suggestions", []))


def test_there_is_an_example_for_more_than_one_hook():
    assert len({load_package(p).hook for p in PACKAGES}) >= 2
