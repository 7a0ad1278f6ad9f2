"""The public page: how information is used, for anyone, with nothing identifiable on it.

Numbers of patients are hidden up to the disclosure threshold and rounded to
the nearest ten above it; names, record ids and local ids never appear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient

from careloop.community import add_cycle, record_act
from careloop.practice.transparency import public_count
from careloop.trust import patients
from careloop.web.app import create_app
from tests.capture.registry_helpers import import_examples
from tests.community.helpers import KNOWN_MEASURES, make_community, principal
from tests.community.test_cycles import package
from tests.foundation import (
    Installation,
    build_installation,
    make_settings,
    refresh_installation,
)


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    installation = build_installation(
        make_settings(tmp_path_factory.mktemp("public"), None, disclosure_threshold=10)
    )
    import_examples(installation)
    # 4 patients come with the installation (improvement and research); 26 more at site A:
    # 22 improvement and research, 5 improvement only, 3 direct care only, none withdrawn.
    for i in range(26):
        patients.register_patient(
            installation.registry,
            installation.operator,
            site="A",
            local_id=f"PUB-{i}",
            given_name=f"Publicname{i}",
            family_name="Hidden",
            birth_date="2012-01-01",
            sex="male",
            consent_state=(
                "direct_care_only"
                if i < 3
                else "improvement_only"
                if i < 8
                else "improvement_and_research"
            ),
        )
    cid = make_community(installation).community.id
    member = principal(installation, "clinician@B")
    done = add_cycle(installation.registry, member, cid, package(), known_measures=KNOWN_MEASURES)
    record_act(installation.registry, member, done.id, decision="abandon", rationale="No change")
    add_cycle(
        installation.registry,
        member,
        cid,
        package(title="A test still running", parent_id=done.id, do_start=date(2024, 9, 1)),
        known_measures=KNOWN_MEASURES,
    )
    refresh_installation(installation)  # one use on the provenance trail
    yield installation
    installation.registry.close()


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, "none"),
        (1, "fewer than 11"),
        (10, "fewer than 11"),
        (11, "about 10"),
        (27, "about 30"),
        (1234, "about 1,230"),
    ],
)
def test_a_count_is_hidden_when_small_and_rounded_when_not(count, shown):
    assert public_count(count, 10) == shown


def test_anyone_can_read_how_information_is_used_and_no_one_is_identified(inst):
    with TestClient(create_app(inst.settings)) as client:
        page = client.get("/public")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    assert "How we use your information" in text
    assert "How my IBD has been (past 7 days) (by patients)" in text
    # 30 patients: all for their own care, 27 for improvement, 22 for research, no one asked yet.
    assert "For their own care about 30" in text
    assert "To make care better for everyone about 30" in text
    assert "For research about 20" in text
    assert "To be asked to take part in research studies none" in text
    assert "Network change package" in text and "It did not help, so the team stopped it." in text
    assert "A test still running" not in text  # no Act yet: nothing learned to publish
    assert "patients and carers among them" in text
    today = date.today().strftime("%-d %B %Y")
    assert f"Copied for study, with names and contact details taken out 1 {today}" in text
    for private in ("Publicname", "Hidden", "PUB-", "MRN-", "Given", "Family", "@example.org"):
        assert private not in page.text, private


def test_the_public_page_is_limited_like_every_public_route(tmp_path):
    settings = make_settings(tmp_path, None, public_requests_per_minute=3)
    installation = build_installation(settings, with_users=False)
    try:
        with TestClient(create_app(settings)) as client:
            answers = [client.get("/public").status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
    finally:
        installation.registry.close()
