"""CDS Hooks security as the spec requires: every JWT attack gets a bare 401."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from careloop.practice import clients, distrust_client
from tests.practice.cds_support import (
    BASE,
    auth,
    deploy,
    ec_client,
    hook_request,
    ibd_package,
    ibd_prefetch,
    rsa_client,
    trust,
)

SERVICE = "sec-ibd"
PATH = f"/cds-services/{SERVICE}"


@pytest.fixture(scope="module")
def setup(installation, tmp_path_factory):
    keys = ec_client("https://ehr-sec.example.org/")
    rsa_keys = rsa_client("https://ehr-rsa.example.org/")
    tmp = tmp_path_factory.mktemp("jwks")
    trust(installation, keys, tmp)
    trust(installation, rsa_keys, tmp)
    deploy(installation, ibd_package(SERVICE))
    return keys, rsa_keys


def body():
    return hook_request(
        "patient-view", {"userId": "Practitioner/dr-a", "patientId": "p1"}, prefetch=ibd_prefetch()
    )


def assert_bare_401(response):
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["www-authenticate"] == "Bearer"


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_properly_signed_call_is_served(api, setup):
    keys, rsa_keys = setup
    response = api.post(PATH, json=body(), headers=auth(keys, PATH))
    assert response.status_code == 200, response.text
    assert len(response.json()["cards"]) == 1
    assert api.post(PATH, json=body(), headers=auth(rsa_keys, PATH)).status_code == 200


def test_a_call_without_a_token_is_refused(api, setup):
    assert_bare_401(api.post(PATH, json=body()))
    assert_bare_401(api.get("/cds-services"))
    assert_bare_401(api.post(PATH, json=body(), headers={"Authorization": "Bearer not.a.jwt"}))


def test_an_unsigned_alg_none_token_is_refused(api, setup):
    keys, _ = setup
    now = int(time.time())
    claims = {
        "iss": keys.issuer,
        "aud": BASE + PATH,
        "exp": now + 60,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': keys.kid})}.{b64(claims)}."
    assert_bare_401(api.post(PATH, json=body(), headers={"Authorization": f"Bearer {token}"}))


def test_an_hmac_token_is_refused_even_when_keyed_with_the_public_key(api, setup):
    _, rsa_keys = setup
    now = int(time.time())
    claims = {
        "iss": rsa_keys.issuer,
        "aud": BASE + PATH,
        "exp": now + 60,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    public_pem = rsa_keys.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The classic algorithm-confusion attack: HS256 "signed" with the public key.
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_keys.kid}
    signing = f"{b64(header)}.{b64(claims)}".encode()
    import hashlib
    import hmac

    signature = (
        base64.urlsafe_b64encode(hmac.new(public_pem, signing, hashlib.sha256).digest())
        .rstrip(b"=")
        .decode()
    )
    token = f"{signing.decode()}.{signature}"
    assert_bare_401(api.post(PATH, json=body(), headers={"Authorization": f"Bearer {token}"}))
    shared = jwt.encode(
        claims,
        "a-shared-secret-of-32-bytes-long!",
        algorithm="HS256",
        headers={"kid": rsa_keys.kid},
    )
    assert_bare_401(api.post(PATH, json=body(), headers={"Authorization": f"Bearer {shared}"}))


def test_a_token_for_another_endpoint_is_refused(api, setup):
    keys, _ = setup
    assert_bare_401(api.post(PATH, json=body(), headers=auth(keys, "/cds-services/other")))
    assert_bare_401(api.post(PATH, json=body(), headers=auth(keys, "/cds-services")))
    wrong_host = {"Authorization": f"Bearer {keys.token('https://evil.example' + PATH)}"}
    assert_bare_401(api.post(PATH, json=body(), headers=wrong_host))


def test_an_expired_token_is_refused(api, setup):
    keys, _ = setup
    past = int(time.time()) - 3600
    assert_bare_401(api.post(PATH, json=body(), headers=auth(keys, PATH, exp=past, iat=past - 60)))


def test_a_token_without_jti_or_exp_is_refused(api, setup):
    keys, _ = setup
    assert_bare_401(api.post(PATH, json=body(), headers=auth(keys, PATH, jti=None)))
    assert_bare_401(api.post(PATH, json=body(), headers=auth(keys, PATH, exp=None)))


def test_a_token_living_longer_than_an_hour_is_refused(api, setup):
    keys, _ = setup
    later = int(time.time()) + 2 * 3600
    assert_bare_401(api.post(PATH, json=body(), headers=auth(keys, PATH, exp=later)))


def test_a_replayed_token_is_refused(api, setup):
    keys, _ = setup
    headers = auth(keys, PATH)
    assert api.post(PATH, json=body(), headers=headers).status_code == 200
    assert_bare_401(api.post(PATH, json=body(), headers=headers))


def test_an_unknown_issuer_and_an_unknown_key_are_refused(api, setup):
    stranger = ec_client("https://stranger.example.org/")
    assert_bare_401(api.post(PATH, json=body(), headers=auth(stranger, PATH)))
    keys, _ = setup
    impostor = ec_client(keys.issuer, kid=keys.kid)  # right iss and kid, wrong private key
    assert_bare_401(api.post(PATH, json=body(), headers=auth(impostor, PATH)))
    other_kid = ec_client(keys.issuer, kid="unknown-kid")
    assert_bare_401(api.post(PATH, json=body(), headers=auth(other_kid, PATH)))


def test_a_jku_other_than_the_registered_one_is_refused(api, setup):
    keys, _ = setup
    headers = auth(keys, PATH, headers={"jku": "https://evil.example/jwks"})
    assert_bare_401(api.post(PATH, json=body(), headers=headers))


def test_a_distrusted_client_is_refused(api, installation, tmp_path):
    keys = ec_client("https://ehr-leaving.example.org/")
    trust(installation, keys, tmp_path)
    assert api.get("/cds-services", headers=auth(keys, "/cds-services")).status_code == 200
    distrust_client(installation.registry, installation.operator, issuer=keys.issuer)
    assert_bare_401(api.get("/cds-services", headers=auth(keys, "/cds-services")))


def test_cors_answers_only_registered_origins(api, installation, tmp_path):
    keys = ec_client("https://ehr-browser.example.org/")
    trust(installation, keys, tmp_path, origins=["https://ehr-browser.example.org"])
    ok = api.options(
        PATH,
        headers={
            "Origin": "https://ehr-browser.example.org",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://ehr-browser.example.org"
    assert "Authorization" in ok.headers["access-control-allow-headers"]
    bad = api.options(PATH, headers={"Origin": "https://evil.example"})
    assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers
    served = api.post(
        PATH,
        json=body(),
        headers={**auth(keys, PATH), "Origin": "https://ehr-browser.example.org"},
    )
    assert served.headers["access-control-allow-origin"] == "https://ehr-browser.example.org"


def test_keys_published_at_a_jwks_url_are_fetched_and_rotated_keys_picked_up(
    api, installation, setup, monkeypatch
):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from careloop.practice import trust_client

    old, new = ec_client("https://ehr-url.example.org/", "k1"), None
    published = {"jwks": old.jwks}

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(published["jwks"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    try:
        trust_client(installation.registry, installation.operator, issuer=old.issuer, jwks_url=url)
        assert (
            api.post(PATH, json=body(), headers=auth(old, PATH, headers={"jku": url})).status_code
            == 200
        )
        new = ec_client(old.issuer, "k2")
        published["jwks"] = new.jwks  # the EHR rotates its key
        # The set was fetched moments ago: no refetch before JWKS_REFETCH_SECONDS …
        assert api.post(PATH, json=body(), headers=auth(new, PATH)).status_code == 401
        # … after which the unknown key id is looked up once more, and found.
        later = time.monotonic() + clients.JWKS_REFETCH_SECONDS + 1
        monkeypatch.setattr(clients.time, "monotonic", lambda: later)
        assert api.post(PATH, json=body(), headers=auth(new, PATH)).status_code == 200
    finally:
        server.shutdown()
        server.server_close()


SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_JWKS = Path(__file__).resolve().parents[1] / "data" / "cds_hooks_sandbox" / "jwks.json"


def _never_fetch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every HTTP GET: a jku must never be fetched."""
    import httpx

    fetched: list[str] = []

    def refuse(url: str, *args: object, **kwargs: object) -> None:
        fetched.append(url)
        raise httpx.ConnectError("no fetching in this test")

    monkeypatch.setattr(httpx, "get", refuse)
    return fetched


def test_a_sandbox_shaped_call_is_accepted_once_its_jku_is_registered_with_the_jwks_file(
    api, installation, tmp_path, monkeypatch
):
    from careloop.practice import trust_client

    fetched = _never_fetch(monkeypatch)
    # A client signing exactly as the CDS Hooks sandbox does (its iss, kid and jku).
    sandbox = ec_client(SANDBOX_ISS, SANDBOX_KID)
    jwks = tmp_path / "sandbox-test.jwks"
    jwks.write_text(json.dumps(sandbox.jwks))
    registry, operator = installation.registry, installation.operator
    trust_client(registry, operator, issuer=SANDBOX_ISS, jwks_file=jwks)
    sandbox_headers = {"jku": SANDBOX_JKU}
    # Registered with the file only, the sandbox's jku is not one careloop knows: refused.
    assert_bare_401(
        api.post(PATH, json=body(), headers=auth(sandbox, PATH, headers=sandbox_headers))
    )
    trust_client(registry, operator, issuer=SANDBOX_ISS, jwks_file=jwks, jku=[SANDBOX_JKU])
    served = api.post(PATH, json=body(), headers=auth(sandbox, PATH, headers=sandbox_headers))
    assert served.status_code == 200, served.text
    # Tokens without a jku still pass; the keys came from the file, nothing was fetched.
    assert api.post(PATH, json=body(), headers=auth(sandbox, PATH)).status_code == 200
    assert fetched == []


def test_a_jku_other_than_those_registered_is_refused_even_when_the_key_is_right(
    api, installation, tmp_path, monkeypatch
):
    from careloop.practice import trust_client

    fetched = _never_fetch(monkeypatch)
    client = ec_client("https://ehr-jku.example.org/")
    jwks = tmp_path / "jku.jwks"
    jwks.write_text(json.dumps(client.jwks))
    trust_client(
        installation.registry,
        installation.operator,
        issuer=client.issuer,
        jwks_file=jwks,
        jku=["https://ehr-jku.example.org/jwks.json"],
    )
    for other in (
        "https://evil.example/jwks.json",
        "https://ehr-jku.example.org/jwks.json?x=1",  # not exactly the registered URL
        "https://ehr-jku.example.org/JWKS.json",
        "https://ehr-jku.example.org/jwks.json/",
    ):
        assert_bare_401(
            api.post(PATH, json=body(), headers=auth(client, PATH, headers={"jku": other}))
        )
    headers = auth(client, PATH, headers={"jku": "https://ehr-jku.example.org/jwks.json"})
    assert api.post(PATH, json=body(), headers=headers).status_code == 200
    assert fetched == []


def test_the_sandboxs_published_jwks_registers_with_its_jku(installation):
    from careloop.practice import list_clients, trust_client

    issuer = "https://sandbox.cds-hooks.org/published"
    client = trust_client(
        installation.registry,
        installation.operator,
        issuer=issuer,
        jwks_file=SANDBOX_JWKS,
        jku=[SANDBOX_JKU],
    )
    assert (client.key_ids, client.jku_urls) == ((SANDBOX_KID,), (SANDBOX_JKU,))
    (listed,) = [
        c for c in list_clients(installation.registry, installation.operator) if c.issuer == issuer
    ]
    assert listed.accepted_jku == frozenset({SANDBOX_JKU})
    assert listed.jwks_url is None  # the jku is not a place keys are fetched from


def test_a_jku_that_is_not_an_https_url_is_refused_at_registration(installation):
    from careloop.core.errors import InputError
    from careloop.practice import trust_client

    for bad in ("http://sandbox.cds-hooks.org/.well-known/jwks.json", " https://x.example/j"):
        with pytest.raises(InputError, match="must be the exact https URL"):
            trust_client(
                installation.registry,
                installation.operator,
                issuer="https://bad-jku.example.org/",
                jwks_file=SANDBOX_JWKS,
                jku=[bad],
            )


def test_the_cli_registers_a_jku_with_a_jwks_file(installation):
    from typer.testing import CliRunner

    from careloop.cli.main import app

    data_dir = str(installation.settings.data_dir)
    url = installation.settings.database_url
    runner = CliRunner(env={"CARELOOP_DATABASE_URL": url} if url else None)
    result = runner.invoke(
        app,
        [
            "cds", "trust-client", "--iss", "https://sandbox.cds-hooks.org/cli",
            "--jwks-file", str(SANDBOX_JWKS), "--jku", SANDBOX_JKU, "--data-dir", data_dir,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"jku accepted: {SANDBOX_JKU}" in " ".join(result.output.split())
    listed = runner.invoke(app, ["cds", "clients", "--data-dir", data_dir])
    assert listed.exit_code == 0, listed.output
    assert "jku" in listed.output
    from careloop.practice import list_clients

    (client,) = [
        c
        for c in list_clients(installation.registry, installation.operator)
        if c.issuer == "https://sandbox.cds-hooks.org/cli"
    ]
    assert client.jku_urls == (SANDBOX_JKU,)


def test_tokens_with_unknown_key_ids_cannot_make_careloop_fetch_the_jwks_on_every_call(
    api, installation, monkeypatch
):
    # Issue 14: a trusted iss with an unknown kid forced a JWKS fetch before any signature
    # check, on every call (30 calls, 30 fetches).
    import httpx

    from careloop.practice import trust_client

    keys = ec_client("https://ehr-jwks-count.example.org/", "real-kid")
    url = "https://ehr-jwks-count.example.org/.well-known/jwks.json"
    fetched: list[str] = []

    def fake_get(target: str, **_kwargs: object) -> httpx.Response:
        fetched.append(target)
        return httpx.Response(200, json=keys.jwks, request=httpx.Request("GET", target))

    monkeypatch.setattr(clients.httpx, "get", fake_get)
    trust_client(installation.registry, installation.operator, issuer=keys.issuer, jwks_url=url)
    forged = [
        api.post(PATH, json=body(), headers=auth(keys, PATH, headers={"kid": f"made-up-{i}"}))
        for i in range(30)
    ]
    assert {r.status_code for r in forged} == {401}
    assert len(fetched) == 1  # the first call's fetch; none of the others fetched
    assert api.post(PATH, json=body(), headers=auth(keys, PATH)).status_code == 200
    assert len(fetched) == 1  # within the TTL the set is not fetched again
    now = time.monotonic()
    monkeypatch.setattr(clients.time, "monotonic", lambda: now + clients.JWKS_TTL_SECONDS + 1)
    assert api.post(PATH, json=body(), headers=auth(keys, PATH)).status_code == 200
    assert len(fetched) == 2  # once the TTL is over


def test_a_failing_jwks_url_is_not_retried_on_every_call(api, installation, monkeypatch):
    import httpx

    from careloop.practice import trust_client

    keys = ec_client("https://ehr-jwks-down.example.org/", "k")
    attempts: list[str] = []

    def down(target: str, **_kwargs: object) -> httpx.Response:
        attempts.append(target)
        raise httpx.ConnectError("down")

    monkeypatch.setattr(clients.httpx, "get", down)
    trust_client(
        installation.registry,
        installation.operator,
        issuer=keys.issuer,
        jwks_url="https://ehr-jwks-down.example.org/jwks.json",
    )
    for _ in range(20):
        assert_bare_401(api.post(PATH, json=body(), headers=auth(keys, PATH)))
    assert len(attempts) == 1


def test_the_audience_is_the_configured_public_url_never_the_host_header(api, setup):
    # Issue 14: aud was compared with a URL built from the Host header, which the caller
    # chooses: a token minted for another service was accepted by sending its host.
    keys, _ = setup
    other = "http://other-service.example.org" + PATH
    token = {"Authorization": f"Bearer {keys.token(other)}"}
    spoofed = {**token, "Host": "other-service.example.org"}
    assert_bare_401(api.post(PATH, json=body(), headers=spoofed))
    assert api.post(PATH, json=body(), headers=auth(keys, PATH)).status_code == 200


def test_without_a_public_base_url_every_cds_call_is_refused(installation, setup):
    from fastapi.testclient import TestClient

    from careloop.web.app import create_app

    keys, _ = setup
    settings = installation.settings.model_copy(update={"public_base_url": None})
    with TestClient(create_app(settings)) as client:
        assert_bare_401(client.post(PATH, json=body(), headers=auth(keys, PATH)))
