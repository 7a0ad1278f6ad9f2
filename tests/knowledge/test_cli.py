"""`careloop knowledge …` and `careloop cds …` end to end, then a real server answering a JWT call."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
from typer.testing import CliRunner

from careloop.cli.main import app
from careloop.knowledge import EXAMPLES
from tests.foundation import build_installation, make_settings
from tests.live import start_server, stop_server
from tests.practice.cds_support import ec_client, ibd_prefetch

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_knowledge_object_goes_from_a_package_to_cards_served_over_http(tmp_path: Path):
    inst = build_installation(make_settings(tmp_path, None), with_users=False)
    inst.registry.close()
    data = ("--data-dir", str(inst.settings.data_dir))
    ibd = str(EXAMPLES / "ibd_steroid_review")

    assert "valid knowledge object package" in run("knowledge", "validate", ibd)
    assert "7 of 7 tests passed" in run("knowledge", "test", ibd)
    run("knowledge", "new", "my-ko", "--dir", str(tmp_path / "my-ko"))
    assert "1 of 1 tests passed" in run("knowledge", "test", str(tmp_path / "my-ko"))

    assert "as draft (tests pass)" in run("knowledge", "import", ibd, "--reason", "PDSA 3", *data)
    run("knowledge", "submit", "ibd-steroid-review", "--reason", "ready", *data)
    run("knowledge", "approve", "ibd-steroid-review", "--reason", "reviewed", *data)
    out = run("knowledge", "activate", "ibd-steroid-review", "--reason", "go live", *data)
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
    deps = run("knowledge", "deployments", "--measure", "ibd-steroid-free-remission", *data)
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
            "measure_id": "ibd-steroid-free-remission",
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
            "ibd-steroid-free-remission",
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

    server = start_server(inst.settings.data_dir)
    try:
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
    finally:
        stop_server(server)
