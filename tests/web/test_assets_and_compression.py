"""Static assets and plotly.js: hashed addresses cached for good, compressed once; pages and
JSON gzip-compressed only where no other site can have asked (BREACH)."""

from __future__ import annotations

import gzip
import json
import re
from importlib import resources
from pathlib import Path

import brotli
import pytest

from careloop.web.assets import accepted_encoding
from tests.foundation import log_in

STATIC = Path(__file__).resolve().parents[2] / "src" / "careloop" / "web" / "static"
PLOTLY_JS = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def _raw(client, url, **headers):
    """The response and its body exactly as sent (httpx would decode it)."""
    with client.stream("GET", url, headers=headers) as response:
        return response, b"".join(response.iter_raw())


def _decoded(response, raw: bytes) -> bytes:
    encoding = response.headers.get("content-encoding", "identity")
    return {"br": brotli.decompress, "gzip": gzip.decompress}.get(encoding, bytes)(raw)


def _stylesheet_url(api) -> str:
    return re.search(r'<link rel="stylesheet" href="([^"]+)">', api.get("/login").text)[1]


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [("gzip, deflate, br", "br"), ("gzip", "gzip"), ("br;q=0, gzip", "gzip"), ("", None)],
)
def test_plotly_js_comes_compressed_as_the_client_accepts_and_decodes_to_the_shipped_file(
    api, accept, encoding
):
    response, raw = _raw(api, "/vendor/plotly.min.js", **{"Accept-Encoding": accept})
    assert response.status_code == 200
    assert response.headers.get("content-encoding") == encoding
    assert "accept-encoding" in response.headers["vary"].lower()
    assert response.headers["content-type"].startswith("text/javascript")
    assert _decoded(response, raw) == PLOTLY_JS
    if encoding is not None:
        assert len(raw) < len(PLOTLY_JS) / 3  # 4.8 MB: about 1.3 MB brotli, 1.5 MB gzip


def test_pages_link_the_style_sheet_at_a_hashed_address_cached_for_good(api):
    url = _stylesheet_url(api)
    assert re.fullmatch(r"/static/careloop\.[0-9a-f]{12}\.css", url)
    response, raw = _raw(api, url, **{"Accept-Encoding": "gzip"})
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-encoding"] == "gzip"
    assert _decoded(response, raw) == (STATIC / "careloop.css").read_bytes()
    assert response.headers["x-content-type-options"] == "nosniff"


def test_plain_and_stale_addresses_still_serve_todays_file_but_are_asked_for_again(api):
    plain = api.get("/static/careloop.css")
    stale = api.get("/static/careloop.000000000000.css")
    today = (STATIC / "careloop.css").read_bytes()
    for response in (plain, stale):
        assert response.status_code == 200 and response.content == today
        assert response.headers["cache-control"] == "public, no-cache"
    again = api.get("/static/careloop.css", headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_an_unknown_asset_is_a_404(api):
    for url in ("/static/nothing.css", "/static/careloop.0123456789ab.js", "/vendor/x.js"):
        assert api.get(url).status_code == 404


def test_the_client_s_q_values_decide_the_encoding():
    assert accepted_encoding("gzip;q=1.0, br;q=0") == "gzip"
    assert accepted_encoding("*") == "br"
    assert accepted_encoding("identity") == "identity"
    assert accepted_encoding("gzip;q=0, br;q=0") == "identity"


def test_a_logged_in_page_is_compressed_only_when_careloop_s_own_pages_asked(api, installation):
    log_in(api, installation.emails["clinician@A"])
    try:
        own, raw = _raw(api, "/patients", **{"Accept-Encoding": "gzip", **SAME_ORIGIN})
        assert own.status_code == 200 and own.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in own.headers["vary"].lower()
        page = _decoded(own, raw).decode("utf-8")
        assert 'name="csrf_token"' in page and page.rstrip().endswith("</html>")
        refused, _ = _raw(api, "/patients", **{"Accept-Encoding": "gzip;q=0", **SAME_ORIGIN})
        assert "content-encoding" not in refused.headers
        for header in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {}):
            other, raw = _raw(api, "/patients", **{"Accept-Encoding": "gzip", **header})
            # Another site could have made this request: a secret beside chosen text stays
            # uncompressed, so its size says nothing about the secret (BREACH).
            assert "content-encoding" not in other.headers, header
            assert raw.decode("utf-8").rstrip().endswith("</html>")
    finally:
        api.cookies.clear()


def test_json_for_a_bearer_token_and_the_openapi_description_come_compressed(api, installation):
    token = {"Authorization": f"Bearer {installation.tokens['auditor']}"}
    response, raw = _raw(api, "/api/audit", **{"Accept-Encoding": "gzip", **token})
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    assert json.loads(_decoded(response, raw))  # the audit entries, whole
    described, raw = _raw(api, "/openapi.json", **{"Accept-Encoding": "gzip"})
    assert described.headers["content-encoding"] == "gzip"
    assert b'"openapi"' in _decoded(described, raw)
