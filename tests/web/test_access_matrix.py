"""Role × endpoint × site: a user of site A never gets site B's data, by any API path.

Every route under /api must appear in ``CROSS_SITE_REQUESTS`` (a test fails
when a new route is added without a line here), so the matrix grows with
the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from careloop.web.app import create_app
from tests.capture import matrix_targets as capture
from tests.community import matrix_targets as community
from tests.foundation import Installation

SITE_A_USERS = [
    "site_lead@A",
    "clinician@A",
    "data_entry@A",
    "analyst@A",
    "auditor@A",
    "patient@A",
    "carer@A",
]
EVERY_USER = [*SITE_A_USERS, "admin", "analyst", "auditor"]

Request = tuple[str, str, dict[str, Any] | None]


def _b(inst: Installation, i: int = 0) -> int:
    return inst.patient_ids["B"][i]


def _b_pseudo(inst: Installation) -> str:
    from careloop.trust.patients import get_patient

    return get_patient(inst.registry, inst.operator, _b(inst)).pseudo_id


def _b_link(inst: Installation) -> int:
    """The carer link of site B's carer (to site B's second patient)."""
    from careloop.trust.carers import list_carers

    return list_carers(inst.registry, inst.operator, _b(inst, 1)).carers[0].link_id


# Each route: how to aim it at site B, and whether a refusal must be 403/404
# ("deny") or whether an answer is allowed as long as it holds nothing of B ("filter").
CROSS_SITE_REQUESTS: dict[tuple[str, str], tuple[str, Callable[[Installation], Request]]] = {
    ("GET", "/api/me"): ("filter", lambda i: ("GET", "/api/me", None)),
    # Notes on measure charts hold no patient data; only site B's people may add to its chart.
    ("GET", "/api/measures/{measure_id}/notes"): (
        "filter",
        lambda i: ("GET", "/api/measures/remission-at-visit/notes", None),
    ),
    ("POST", "/api/measures/{measure_id}/notes"): (
        "deny",
        lambda i: (
            "POST",
            "/api/measures/remission-at-visit/notes",
            {"period": "2023-01-01", "text": "x", "site": "B"},
        ),
    ),
    ("GET", "/api/policy"): ("filter", lambda i: ("GET", "/api/policy", None)),
    ("GET", "/api/sites"): ("filter", lambda i: ("GET", "/api/sites", None)),
    ("POST", "/api/sites"): (
        "deny",
        lambda i: (
            "POST",
            "/api/sites",
            {"code": "B2", "name": "x", "country": "GB", "time_zone": "UTC"},
        ),
    ),
    ("GET", "/api/users"): ("filter", lambda i: ("GET", "/api/users", None)),
    ("POST", "/api/users"): (
        "deny",
        lambda i: (
            "POST",
            "/api/users",
            {
                "email": "new.b@example.org",
                "password": "long enough password",
                "roles": [{"role": "clinician", "site": "B"}],
            },
        ),
    ),
    ("POST", "/api/users/{email}/disable"): (
        "deny",
        lambda i: ("POST", f"/api/users/{i.emails['clinician@B']}/disable", None),
    ),
    ("POST", "/api/users/{email}/roles"): (
        "deny",
        lambda i: (
            "POST",
            f"/api/users/{i.emails['clinician@B']}/roles",
            {"role": "data_entry", "site": "B"},
        ),
    ),
    ("DELETE", "/api/users/{email}/roles"): (
        "deny",
        lambda i: (
            "DELETE",
            f"/api/users/{i.emails['clinician@B']}/roles",
            {"role": "clinician", "site": "B"},
        ),
    ),
    ("GET", "/api/tokens"): ("filter", lambda i: ("GET", "/api/tokens", None)),
    ("POST", "/api/tokens"): ("deny", lambda i: ("POST", "/api/tokens", {"name": "x"})),
    ("DELETE", "/api/tokens/{token_id}"): (
        "deny",
        lambda i: ("DELETE", f"/api/tokens/{i.token_ids['clinician@B']}", None),
    ),
    ("GET", "/api/patients"): ("deny", lambda i: ("GET", "/api/patients?site=B", None)),
    ("POST", "/api/patients"): (
        "deny",
        lambda i: (
            "POST",
            "/api/patients",
            {"site": "B", "local_id": "NEW-B", "consent_state": "withdrawn"},
        ),
    ),
    ("GET", "/api/patients/{patient_id}"): (
        "deny",
        lambda i: ("GET", f"/api/patients/{_b(i)}", None),
    ),
    ("PATCH", "/api/patients/{patient_id}"): (
        "deny",
        lambda i: ("PATCH", f"/api/patients/{_b(i)}", {"reason": "x", "changes": {"sex": "male"}}),
    ),
    ("DELETE", "/api/patients/{patient_id}"): (
        "deny",
        lambda i: ("DELETE", f"/api/patients/{_b(i)}?reason=x", None),
    ),
    ("GET", "/api/patients/{patient_id}/consent"): (
        "deny",
        lambda i: ("GET", f"/api/patients/{_b(i)}/consent", None),
    ),
    ("POST", "/api/patients/{patient_id}/consent"): (
        "deny",
        lambda i: (
            "POST",
            f"/api/patients/{_b(i)}/consent",
            {"state": "withdrawn", "method": "paper"},
        ),
    ),
    ("POST", "/api/patients/{patient_id}/invitations"): (
        "deny",
        lambda i: (
            "POST",
            f"/api/patients/{_b(i)}/invitations",
            {"email": "invited.b@example.org", "role": "carer"},
        ),
    ),
    ("GET", "/api/patients/{patient_id}/carers"): (
        "deny",
        lambda i: ("GET", f"/api/patients/{_b(i, 1)}/carers", None),
    ),
    ("PUT", "/api/carer-links/{link_id}/scopes"): (
        "deny",
        lambda i: ("PUT", f"/api/carer-links/{_b_link(i)}/scopes", {"scopes": []}),
    ),
    ("DELETE", "/api/carer-links/{link_id}"): (
        "deny",
        lambda i: ("DELETE", f"/api/carer-links/{_b_link(i)}", None),
    ),
    ("GET", "/api/pseudonymised/patients"): (
        "deny",
        lambda i: ("GET", "/api/pseudonymised/patients?site=B", None),
    ),
    ("GET", "/api/pseudonymised/patients/{pseudo_id}"): (
        "deny",
        lambda i: ("GET", f"/api/pseudonymised/patients/{_b_pseudo(i)}", None),
    ),
    ("GET", "/api/audit"): ("filter", lambda i: ("GET", "/api/audit", None)),
    ("GET", "/api/audit/verify"): ("filter", lambda i: ("GET", "/api/audit/verify", None)),
    # capture: forms, responses, timelines, PROM links
    ("GET", "/api/forms"): ("filter", lambda i: ("GET", "/api/forms", None)),
    ("POST", "/api/forms"): (
        "deny",
        lambda i: ("POST", "/api/forms?format=yaml", {"forms": "not a list"}),
    ),
    ("GET", "/api/forms/{form}"): (
        "filter",
        lambda i: ("GET", f"/api/forms/ibd_visit?p={capture.b_patient(i)}", None),
    ),
    ("POST", "/api/forms/{form}/responses"): (
        "deny",
        lambda i: (
            "POST",
            "/api/forms/ibd_visit/responses",
            {"patient_id": capture.b_patient(i), "event_date": "2024-06-01", "values": {}},
        ),
    ),
    ("GET", "/api/forms/{form}/responses"): (
        "deny",
        lambda i: ("GET", f"/api/forms/ibd_visit/responses?patient={capture.b_patient(i)}", None),
    ),
    ("GET", "/api/forms/{form}/responses/{response_id}"): (
        "deny",
        lambda i: ("GET", capture.b_response_url(i), None),
    ),
    ("PUT", "/api/forms/{form}/responses/{response_id}"): (
        "deny",
        lambda i: ("PUT", capture.b_response_url(i), {"values": {"pga": "4"}}),
    ),
    ("GET", "/api/patients/{patient_id}/timeline"): (
        "deny",
        lambda i: ("GET", f"/api/patients/{capture.b_patient(i)}/timeline", None),
    ),
    ("POST", "/api/forms/{form}/prom-links"): (
        "deny",
        lambda i: (
            "POST",
            "/api/forms/ibd_symptoms_prom/prom-links",
            {"patient_id": capture.b_patient(i)},
        ),
    ),
    ("GET", "/api/prom/{token}"): (
        "filter",
        lambda i: ("GET", f"/api/prom/{capture.b_prom_token(i)}", None),
    ),
    ("POST", "/api/prom/{token}"): (
        "deny",
        lambda i: ("POST", f"/api/prom/{capture.b_used_prom_token(i)}", {"values": {}}),
    ),
    **community.MATRIX,
    **capture.PROM_OUTREACH_MATRIX,
}


def _identifiers(inst: Installation, site: str) -> list[str]:
    out = []
    for n in (1, 2):
        out += [f"MRN-{site}-{n}", f"Given{site}{n}", f"Family{site}{n}", f"201{n}-03-04"]
    return out


def _call(api: Any, inst: Installation, user: str, request: Request) -> Any:
    method, url, body = request
    headers = {"Authorization": f"Bearer {inst.tokens[user]}"}
    return api.request(method, url, json=body, headers=headers)


def test_every_api_route_is_in_the_matrix(installation):
    app = create_app(installation.settings)
    paths = app.openapi()["paths"]
    app.state.registry.close()
    routes = {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api")
        for method in operations
    }
    assert routes == set(CROSS_SITE_REQUESTS)


@pytest.mark.parametrize("user", EVERY_USER)
def test_a_site_a_user_never_gets_site_b_data(api, installation, user):
    b_identifiers = _identifiers(installation, "B")
    # Site B rows in any shape: identifiable patient, pseudonymised patient, audit entry.
    b_rows = ['"site":"B","local_id"', '"site":"B","birth_year"', '"site_code":"B"']
    network_wide = user in ("admin", "analyst", "auditor")
    for (method, path), (kind, build) in CROSS_SITE_REQUESTS.items():
        response = _call(api, installation, user, build(installation))
        where = f"{user} {method} {path} -> {response.status_code}"
        if kind == "deny" and not network_wide:
            assert response.status_code in (403, 404), where
        if network_wide and path.startswith("/api/patients"):
            # Installation-wide roles hold no right to identifiable patient data.
            assert response.status_code in (403, 404), where
        text = response.text.replace(" ", "")
        for identifier in b_identifiers:
            assert identifier not in text, f"{where} leaked {identifier}"
        if not network_wide:
            for marker in b_rows:
                assert marker not in text, f"{where} leaked a site B row"


@pytest.mark.parametrize("user", ["analyst@A", "analyst"])
def test_an_analyst_never_sees_direct_identifiers(api, installation, user):
    identifiers = _identifiers(installation, "A") + _identifiers(installation, "B")
    listing = _call(api, installation, user, ("GET", "/api/pseudonymised/patients", None))
    assert listing.status_code == 200
    rows = listing.json()
    assert rows and all(
        set(r) == {"pseudo_id", "site", "birth_year", "sex", "consent_state"} for r in rows
    )
    expected_sites = {"A"} if user == "analyst@A" else {"A", "B"}
    assert {r["site"] for r in rows} == expected_sites
    for (method, path), (_kind, build) in CROSS_SITE_REQUESTS.items():
        for request in (
            build(installation),
            ("GET", f"/api/patients/{installation.patient_ids['A'][0]}", None),
        ):
            response = _call(api, installation, user, request)
            for identifier in identifiers:
                assert identifier not in response.text, (
                    f"{user} {method} {path} leaked {identifier}"
                )


@pytest.mark.parametrize("user", ["auditor@A", "auditor"])
def test_an_auditor_never_sees_clinical_data(api, installation, user):
    identifiers = _identifiers(installation, "A") + _identifiers(installation, "B")
    report = _call(api, installation, user, ("GET", "/api/audit", None))
    assert report.status_code == 200 and report.json()
    for pid in installation.patient_ids["A"]:
        assert (
            _call(api, installation, user, ("GET", f"/api/patients/{pid}", None)).status_code == 403
        )
    assert (
        _call(api, installation, user, ("GET", "/api/pseudonymised/patients", None)).status_code
        == 403
    )
    for (method, path), (_kind, build) in CROSS_SITE_REQUESTS.items():
        response = _call(api, installation, user, build(installation))
        for identifier in identifiers:
            assert identifier not in response.text, f"{user} {method} {path} leaked {identifier}"


def test_a_site_auditor_reads_only_their_sites_entries(api, installation):
    entries = _call(api, installation, "auditor@A", ("GET", "/api/audit?limit=1000", None)).json()
    assert entries and {e["site_code"] for e in entries} == {"A"}
    asked_for_b = ("GET", "/api/audit?site=B", None)
    assert _call(api, installation, "auditor@A", asked_for_b).json() == []
    # The network auditor reads every site's entries (newest first: one site at a time).
    for code in ("A", "B"):
        mine = _call(api, installation, "auditor", ("GET", f"/api/audit?site={code}", None)).json()
        assert mine and {e["site_code"] for e in mine} == {code}


AUDIT_PAGE_READERS = {"auditor", "auditor@A"}


@pytest.mark.parametrize("user", EVERY_USER)
def test_only_auditors_open_the_audit_page_and_its_download(api, installation, user):
    """As the policy says (``audit.read``: auditors only); a refusal is audited."""
    expected = 200 if user in AUDIT_PAGE_READERS else 403
    for url in ("/audit", "/audit.csv"):
        response = _call(api, installation, user, ("GET", url, None))
        assert response.status_code == expected, (user, url, response.text[:200])
    if expected == 403:
        refusals = _call(
            api, installation, "auditor", ("GET", "/api/audit?action=audit.read&limit=20", None)
        ).json()
        email = installation.emails[user]
        assert any(r["user_email"] == email and r["outcome"] == "denied" for r in refusals)


def test_the_care_team_of_a_site_reads_its_own_patients(api, installation):
    for user in ("site_lead@A", "clinician@A", "data_entry@A"):
        for pid in installation.patient_ids["A"]:
            response = _call(api, installation, user, ("GET", f"/api/patients/{pid}", None))
            assert response.status_code == 200, user
            assert response.json()["local_id"].startswith("MRN-A-")


def test_patients_and_carers_see_only_their_own_record(api, installation):
    for user in ("patient@A", "carer@A"):
        own = installation.patient_user_of[user]
        assert (
            _call(api, installation, user, ("GET", f"/api/patients/{own}", None)).status_code == 200
        )
        for pid in installation.patient_ids["A"]:
            if pid != own:
                response = _call(api, installation, user, ("GET", f"/api/patients/{pid}", None))
                assert response.status_code == 404, user
        listing = _call(api, installation, user, ("GET", "/api/patients", None)).json()
        assert [p["id"] for p in listing] == [own]


def test_no_caller_changes_or_ends_another_sites_carer(api, installation):
    from careloop.trust.carers import list_carers
    from careloop.trust.policy import CARER_SCOPES

    link = _b_link(installation)
    for user in EVERY_USER:
        for method, url, body in (
            ("PUT", f"/api/carer-links/{link}/scopes", {"scopes": []}),
            ("DELETE", f"/api/carer-links/{link}", None),
        ):
            response = _call(api, installation, user, (method, url, body))
            assert response.status_code in (403, 404), f"{user} {method} {url}"
    [carer] = list_carers(installation.registry, installation.operator, _b(installation, 1)).carers
    assert carer.link_id == link and carer.scopes == CARER_SCOPES
