"""A CDS Hooks call nested too deep is a 400 naming where, not a 500 (RecursionError)."""

from __future__ import annotations

import json

import pytest

from tests.practice.cds_support import auth, deploy, ec_client, hook_request, ibd_package, trust

SERVICE = "deep-ibd"
PATH = f"/cds-services/{SERVICE}"


@pytest.fixture(scope="module")
def keys(installation, tmp_path_factory):
    client = ec_client("https://ehr-deep.example.org/")
    trust(installation, client, tmp_path_factory.mktemp("jwks"), site="A")
    deploy(installation, ibd_package(SERVICE))
    return client


@pytest.mark.parametrize("depth", [150, 100_000])
def test_a_hook_call_nested_too_deep_is_refused_with_where(api, keys, depth):
    call = hook_request("patient-view", {"userId": "Practitioner/dr-a", "patientId": "p1"})
    text = json.dumps(call)[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}"
    response = api.post(PATH, content=text.encode(), headers=auth(keys, PATH))
    assert response.status_code == 400, response.text
    body = response.json()
    assert "levels deep" in body["error"]
    assert body["problems"][0]["path"].startswith("$")
