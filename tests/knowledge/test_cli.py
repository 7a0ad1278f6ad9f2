"""`careloop knowledge …` and `careloop cds …` end to end, then a real server answering JWT calls.

The live part also checks prefetch fetched from careloop's own FHIR read API
(``/fhir`` of the same server) with the caller's site scope.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
from typer.testing import CliRunner

from careloop.cli.main import app
from careloop.content.ibd import PACKAGE as IBD
from careloop.knowledge import package_from_dict
from careloop.trust import identity, patients
from careloop.trust.installation import open_registry
from tests.foundation import PASSWORD, build_installation, make_settings
from tests.live import start_server, stop_server
from tests.practice.cds_support import deploy, ec_client, ibd_prefetch, trial_cycle

runner = CliRunner()

# A second knowledge object for the live run: its prefetch comes from careloop's own /fhir.
PACKAGE = {
    "metadata": {
        "identifier": "paediatric-flag",
        "version": "1.0.0",
        "title": "Paediatric patient",
        "description": "A card for patients under 18.",
        "contributors": ["tests"],
        "license": "CC0-1.0",
    },
    "service": {
        "id": "paediatric-flag",
        "hook": "patient-view",
        "description": "Flags paediatric patients.",
        "prefetch": {"patient": "Patient/{{context.patientId}}"},
    },
    "rules": {
        "rules": [
            {
                "id": "under-18",
                "when": {"age": {"prefetch": "patient"}, "<": 18},
                "card": {
                    "summary": "Paediatric patient: use paediatric dosing",
                    "indicator": "info",
                    "source": {"label": "careloop"},
                },
            }
        ]
    },
    "tests": [
        {
            "name": "a child",
            "prefetch": {"patient": {"resourceType": "Patient", "birthDate": "2020-01-01"}},
            "today": "2026-01-01",
            "expect": [{"rule": "under-18"}],
        }
    ],
}


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_knowledge_object_goes_from_a_package_to_cards_served_over_http(tmp_path: Path):
    inst = build_installation(make_settings(tmp_path, None), with_users=False)
    cycle = trial_cycle(inst)  # the IBD card's wording is a randomised test
    inst.registry.close()
    data = ("--data-dir", str(inst.settings.data_dir))
    ibd = str(IBD.knowledge_object("ibd_steroid_review"))

    assert "valid knowledge object package" in run("knowledge", "validate", ibd)
    assert "7 of 7 tests passed" in run("knowledge", "test", ibd)
    run("knowledge", "new", "my-ko", "--dir", str(tmp_path / "my-ko"))
    assert "1 of 1 tests passed" in run("knowledge", "test", str(tmp_path / "my-ko"))

    assert "as draft (tests pass)" in run("knowledge", "import", ibd, "--reason", "PDSA 3", *data)
    run("knowledge", "submit", "ibd-steroid-review", "--reason", "ready", *data)
    run("knowledge", "approve", "ibd-steroid-review", "--reason", "reviewed", *data)
    out = run(
        "knowledge", "activate", "ibd-steroid-review", "--reason", "go live",
        "--cycle", str(cycle), *data,
    )  # fmt: skip
    assert "active (live) at every site" in out
    listed = json.loads(run("knowledge", "list", "--format", "json", *data))
    assert [(v["identifier"], v["status"]) for v in listed] == [("ibd-steroid-review", "active")]
    shown = json.loads(run("knowledge", "show", "ibd-steroid-review", "--format", "json", *data))
    assert [t["to_status"] for t in shown["transitions"]] == [
        "draft",
        "in_review",
        "approved",
        "active",
    ]
    deps = run("knowledge", "deployments", "--measure", "sustained-steroid-free-remission", *data)
    assert "ibd-steroid-review" in deps
    run("knowledge", "export", "ibd-steroid-review", str(tmp_path / "out.zip"), *data)
    assert "valid" in run("knowledge", "validate", str(tmp_path / "out.zip"))

    days = pd.date_range(
        pd.Timestamp.now(tz="UTC").normalize().tz_localize(None) - pd.Timedelta(days=15),
        periods=30,
        freq="D",
    )
    pd.DataFrame(
        {
            "measure_id": "sustained-steroid-free-remission",
            "site": "",
            "stratum": "",
            "period_start": days.date,
            "numerator": [40] * 15 + [60] * 15,
            "denominator": 100,
        }
    ).to_csv(tmp_path / "results.csv", index=False)
    impact = json.loads(
        run(
            "knowledge",
            "impact",
            "ibd-steroid-review",
            "--measure",
            "sustained-steroid-free-remission",
            "--results",
            str(tmp_path / "results.csv"),
            *data,
        )
    )
    assert impact["spc"]["centre_before"] == 40 and impact["spc"]["centre_after"] == 60
    bad = runner.invoke(app, ["knowledge", "approve", "ibd-steroid-review", "--reason", "x", *data])
    assert bad.exit_code != 0 and "is active; approval needs" in bad.output

    keys = ec_client("https://ehr-cli.example.org/")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(keys.jwks))
    out = run("cds", "trust-client", "--iss", keys.issuer, "--jwks-file", str(jwks), *data)
    assert "keys: ec-1" in out
    assert keys.issuer in run("cds", "clients", *data)
    same = run("knowledge", "diff", "ibd-steroid-review@1.0.0", "ibd-steroid-review@1.0.0", *data)
    assert "No differences." in same
    child, tokens = _fhir_setup(inst)

    server = start_server(inst.settings.data_dir)
    try:
        # careloop's own FHIR API is the EHR's FHIR server here: register it for the client
        # (before its first call, which the server then keeps for a while).
        out = run(
            "cds", "trust-client", "--iss", keys.issuer, "--jwks-file", str(jwks),
            "--fhir-server", f"{server.url}/fhir", *data,
        )  # fmt: skip
        assert f"FHIR servers: {server.url}/fhir" in " ".join(out.split())
        path = "/cds-services/ibd-steroid-review"
        body = {
            "hookInstance": str(uuid.uuid4()),
            "hook": "patient-view",
            "context": {"userId": "Practitioner/dr-live", "patientId": "p1"},
            "prefetch": ibd_prefetch(),
        }
        headers = {"Authorization": f"Bearer {keys.token(server.url + path)}"}
        response = httpx.post(server.url + path, json=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        card = response.json()["cards"][0]
        feedback = {
            "feedback": [
                {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "overrideReason": {"reason": card["overrideReasons"][0]},
                    "outcomeTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            ]
        }
        fb_path = path + "/feedback"
        headers = {"Authorization": f"Bearer {keys.token(server.url + fb_path)}"}
        stored = httpx.post(server.url + fb_path, json=feedback, headers=headers, timeout=10)
        assert stored.json() == {"stored": 1}
        replay = httpx.post(server.url + fb_path, json=feedback, headers=headers, timeout=10)
        assert replay.status_code == 401
        _fhir_prefetch_respects_the_callers_site(server.url, keys, child, tokens)
    finally:
        stop_server(server)
    run("cds", "distrust-client", "--iss", keys.issuer, *data)
    assert keys.issuer not in run("cds", "clients", *data)


def _fhir_setup(inst):
    """A child at site A, clinicians of sites A and B with API tokens, a paediatric KO."""
    op = inst.operator
    registry = open_registry(inst.settings)
    child = patients.register_patient(
        registry,
        op,
        site="A",
        local_id="MRN-1",
        given_name="Ada",
        family_name="L",
        birth_date="2016-03-04",
        sex="female",
        consent_state="improvement_and_research",
    )
    tokens = {}
    for site in ("A", "B"):
        email = f"clinician.{site.lower()}@example.org"
        identity.add_user(
            registry,
            op,
            email=email,
            display_name=email,
            password=PASSWORD,
            roles=[("clinician", site)],
        )
        tokens[site] = identity.create_token(registry, op, name="cds", for_user=email).token
    inst.registry = registry
    deploy(inst, package_from_dict(PACKAGE))
    registry.close()
    return child, tokens


def _fhir_prefetch_respects_the_callers_site(url, keys, child, tokens):
    """Given only fhirServer (careloop's /fhir) and a token, the service fetches the Patient.

    The FHIR API's site scoping holds through CDS prefetch: another site's
    clinician's token gets 404, the prefetch key is null and no card is shown.
    """
    path = "/cds-services/paediatric-flag"

    def call(site):
        body = {
            "hookInstance": str(uuid.uuid4()),
            "hook": "patient-view",
            "context": {"userId": "Practitioner/1", "patientId": child.pseudo_id},
            "fhirServer": f"{url}/fhir",
            "fhirAuthorization": {
                "access_token": tokens[site],
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "user/Patient.read",
                "subject": "careloop-cds",
            },
        }
        headers = {"Authorization": f"Bearer {keys.token(url + path)}"}
        return httpx.post(url + path, json=body, headers=headers, timeout=20)

    own_site = call("A")
    assert own_site.status_code == 200, own_site.text
    summaries = [c["summary"] for c in own_site.json()["cards"]]
    assert summaries == ["Paediatric patient: use paediatric dosing"]
    other_site = call("B")
    assert other_site.status_code == 200 and other_site.json() == {"cards": []}
