"""Conformance against the CDS Hooks specification's own examples (tests/data/cds_hooks_examples).

Every valid request example is accepted; blocks that are not strict JSON are
refused with 400; the spec's response, feedback and discovery examples pass
(or, where the spec's own example breaks its rules, fail at that field).
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from careloop.knowledge import response_problems
from careloop.practice import feedback_problems, request_problems
from tests.practice.cds_support import (
    EXAMPLES_DIR,
    auth,
    deploy,
    ec_client,
    hook_package,
    trust,
)

HOOK_FILES = sorted(
    p for p in EXAMPLES_DIR.glob("*_[0-9][0-9].json") if not p.name.startswith("current_")
)
FRAGMENTS = sorted(
    p
    for p in EXAMPLES_DIR.glob("*.INVALID.txt")
    if not p.name.startswith(("current_", "template_"))
)
HOOKS = sorted({p.name.rsplit("_", 1)[0].split(".")[0] for p in (*HOOK_FILES, *FRAGMENTS)})


def hook_of(path) -> str:
    return path.name.rsplit("_", 1)[0]


@pytest.fixture(scope="module")
def keys(installation, tmp_path_factory):
    client = ec_client("https://ehr-conformance.example.org/")
    trust(installation, client, tmp_path_factory.mktemp("jwks"))
    for hook in HOOKS:
        prefetch = {"patientToGreet": "Patient/{{context.patientId}}"}
        deploy(installation, hook_package(hook, prefetch if hook == "patient-view" else None))
    return client


def post(api, keys, hook, body=None, content=None):
    path = f"/cds-services/conf-{hook}"
    if content is not None:
        return api.post(path, content=content, headers=auth(keys, path))
    return api.post(path, json=body, headers=auth(keys, path))


def assert_served(response):
    assert response.status_code == 200, response.text
    payload = response.json()
    assert response_problems(payload) == []
    assert len(payload["cards"]) == 1
    return payload


def test_the_full_request_example_of_the_spec_is_accepted(api, keys):
    body = json.loads((EXAMPLES_DIR / "current_01.json").read_text())
    assert request_problems(body) == []
    assert_served(post(api, keys, "patient-view", body))


@pytest.mark.parametrize("path", HOOK_FILES, ids=lambda p: p.name)
def test_every_hook_context_example_is_accepted(api, keys, path):
    context = json.loads(path.read_text())["context"]
    body = {"hookInstance": str(uuid.uuid4()), "hook": hook_of(path), "context": context}
    assert request_problems(body) == []
    assert_served(post(api, keys, hook_of(path), body))


@pytest.mark.parametrize("path", FRAGMENTS, ids=lambda p: p.name)
def test_a_fragment_that_is_not_json_is_refused_and_accepted_once_made_json(api, keys, path):
    text = path.read_text()
    hook = hook_of(path).removesuffix(".INVALID.txt").rsplit("_", 1)[0]
    refused = post(api, keys, hook, content=text.encode())
    assert refused.status_code == 400 and "not JSON" in refused.json()["error"]
    context = json.loads("{" + text + "}")["context"]
    body = {"hookInstance": str(uuid.uuid4()), "hook": hook, "context": context}
    if hook == "patient-view":  # the conformance service asks for this prefetch key
        patient = {"resourceType": "Patient", "id": context["patientId"]}
        body["prefetch"] = {"patientToGreet": patient}
    assert_served(post(api, keys, hook, body))


def test_the_extension_example_lacks_the_patient_view_patient_id_and_is_refused_by_name(api, keys):
    # current_22 illustrates `extension`; its context omits patientId, which patient-view requires.
    body = json.loads((EXAMPLES_DIR / "current_22.json").read_text())
    response = post(api, keys, "patient-view", body)
    assert response.status_code == 400
    assert [p["path"] for p in response.json()["problems"]] == ["context.patientId"]
    body["context"]["patientId"] = "1288992"
    body["prefetch"] = {"patientToGreet": None}
    assert_served(post(api, keys, "patient-view", body))


@pytest.mark.parametrize("name", ["current_09.json", "current_16.json"])
def test_the_specs_response_examples_satisfy_the_card_rules(name):
    assert response_problems(json.loads((EXAMPLES_DIR / name).read_text())) == []


@pytest.mark.parametrize(
    ("name", "field"),
    [
        # The spec's own examples omit fields its tables mark REQUIRED.
        ("current_15.json", "systemActions[0].description"),
        ("current_17.json", "cards[0].indicator"),
    ],
)
def test_the_examples_that_omit_a_required_field_are_flagged_at_that_field(name, field):
    body = json.loads((EXAMPLES_DIR / name).read_text())
    assert [p.path for p in response_problems(body)] == [field]


def test_the_action_and_source_examples_satisfy_their_rules():
    from careloop.knowledge.cards import action_problems, card_problems

    for name in ("current_11.json", "current_12.json", "current_13.json"):
        assert action_problems(json.loads((EXAMPLES_DIR / name).read_text()), "action") == []
    source = json.loads((EXAMPLES_DIR / "current_10.json").read_text())["source"]
    card = {"summary": "s", "indicator": "info", "source": source}
    card |= json.loads((EXAMPLES_DIR / "current_14.json").read_text())
    assert card_problems(card) == []


@pytest.mark.parametrize("name", ["current_18", "current_19", "current_20"])
def test_the_specs_feedback_examples_are_valid_once_the_http_line_and_comments_go(name):
    text = (EXAMPLES_DIR / f"{name}.INVALID.txt").read_text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    document = re.sub(r"\s//[^\n]*", "", text.split("\n", 1)[1])  # comments, not URLs
    assert feedback_problems(json.loads(document)) == []


def test_our_discovery_document_has_the_shape_of_the_specs_examples(api, keys):
    response = api.get("/cds-services", headers=auth(keys, "/cds-services"))
    ours = {s["id"]: s for s in response.json()["services"]}
    for name in ("current_00.json", "current_23.json"):
        for example in json.loads((EXAMPLES_DIR / name).read_text())["services"]:
            required = {"hook", "description", "id"}
            assert required <= set(example)
    for hook in HOOKS:
        entry = ours[f"conf-{hook}"]
        assert entry["hook"] == hook
        assert all(isinstance(entry[k], str) and entry[k] for k in ("hook", "description", "id"))
