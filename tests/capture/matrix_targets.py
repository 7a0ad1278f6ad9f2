"""Site B targets for the capture routes in tests/web/test_access_matrix.py.

Each function makes (once per installation) the site B data a route is
aimed at: a response of a site B patient, a fresh PROM link for one, and a
link that was already used.
"""

from __future__ import annotations

from careloop.capture import entry, proms
from tests.capture.registry_helpers import PROM, VISIT, import_examples, prom_answers
from tests.foundation import Installation

_MADE: dict[tuple[int, str], object] = {}


def _b(inst: Installation) -> int:
    return inst.patient_ids["B"][0]


def b_patient(inst: Installation) -> int:
    """A site B patient, with the example forms imported."""
    key = (id(inst), "forms")
    if key not in _MADE:
        import_examples(inst)
        _MADE[key] = True
    return _b(inst)


def b_response_url(inst: Installation) -> str:
    """The API path of a site B patient's visit response."""
    key = (id(inst), "response")
    if key not in _MADE:
        view = entry.create_response(
            inst.registry,
            inst.operator,
            VISIT,
            patient_id=b_patient(inst),
            event_date="2023-12-31",
            values={"pga": "1"},
        )
        _MADE[key] = f"/api/forms/{VISIT}/responses/{view.id}"
    return str(_MADE[key])


def b_prom_token(inst: Installation) -> str:
    """A valid PROM link of a site B patient (opening it shows the form only)."""
    return proms.create_prom_link(
        inst.registry, inst.operator, PROM, patient_id=b_patient(inst)
    ).token


def b_used_prom_token(inst: Installation) -> str:
    """A site B patient's PROM link that was already used."""
    key = (id(inst), "used")
    if key not in _MADE:
        token = b_prom_token(inst)
        proms.submit_prom_link(
            inst.registry, token, values=prom_answers("2023-12-30"), event_date="2023-12-30"
        )
        _MADE[key] = token
    return str(_MADE[key])


def b_prom_schedule(inst: Installation) -> int:
    """A PROM schedule of site B."""
    key = (id(inst), "schedule")
    if key not in _MADE:
        from careloop.capture.prom_schedules import add_schedule

        b_patient(inst)
        _MADE[key] = add_schedule(
            inst.registry, inst.operator, site="B", form=PROM, kind="every_weeks", weeks=4
        ).id
    return int(str(_MADE[key]))


def b_planned_visit(inst: Installation) -> int:
    """A planned visit of a site B patient."""
    key = (id(inst), "visit")
    if key not in _MADE:
        from careloop.capture.prom_schedules import book_visit

        _MADE[key] = book_visit(
            inst.registry, inst.operator, b_patient(inst), visit_date="2030-01-02"
        ).id
    return int(str(_MADE[key]))


# The PROM outreach routes, aimed at site B (see tests/web/test_access_matrix.py).
PROM_OUTREACH_MATRIX = {
    ("GET", "/api/outreach/schedules"): (
        "filter",
        lambda i: ("GET", "/api/outreach/schedules?site=B", None),
    ),
    ("POST", "/api/outreach/schedules"): (
        "deny",
        lambda i: (
            "POST",
            "/api/outreach/schedules",
            {"site": "B", "form": PROM, "kind": "every_weeks", "weeks": 4},
        ),
    ),
    ("PUT", "/api/outreach/schedules/{schedule_id}/active"): (
        "deny",
        lambda i: ("PUT", f"/api/outreach/schedules/{b_prom_schedule(i)}/active", {"active": True}),
    ),
    ("POST", "/api/planned-visits"): (
        "deny",
        lambda i: (
            "POST",
            "/api/planned-visits",
            {"patient_id": b_patient(i), "visit_date": "2030-01-03"},
        ),
    ),
    ("PUT", "/api/planned-visits/{visit_id}/date"): (
        "deny",
        lambda i: (
            "PUT",
            f"/api/planned-visits/{b_planned_visit(i)}/date",
            {"visit_date": "2030-01-04"},
        ),
    ),
    ("DELETE", "/api/planned-visits/{visit_id}"): (
        "deny",
        lambda i: ("DELETE", f"/api/planned-visits/{b_planned_visit(i)}", None),
    ),
    ("POST", "/api/outreach/send-due"): (
        "deny",
        lambda i: ("POST", "/api/outreach/send-due", {"site": "B"}),
    ),
    ("GET", "/api/outreach/invitations"): (
        "filter",
        lambda i: ("GET", "/api/outreach/invitations?site=B", None),
    ),
    ("GET", "/api/outreach/completion"): (
        "filter",
        lambda i: ("GET", "/api/outreach/completion?site=B", None),
    ),
    ("GET", "/api/my/questionnaires"): (
        "filter",
        lambda i: ("GET", "/api/my/questionnaires", None),
    ),
}
