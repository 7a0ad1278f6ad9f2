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
