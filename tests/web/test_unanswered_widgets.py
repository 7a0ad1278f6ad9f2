"""An entry page never answers for the person: untouched sliders, radios and dates stay empty."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from careloop.capture import proms
from careloop.store.models.capture import Response
from careloop.store.scoping import Scope, set_scope
from tests.capture.registry_helpers import PROM, import_examples, prom_answers


@pytest.fixture(scope="module", autouse=True)
def _forms(installation):
    import_examples(installation)


def _link(installation, patient: int) -> str:
    link = proms.create_prom_link(
        installation.registry, installation.operator, PROM, patient_id=patient
    )
    return link.token


def _open(api, installation, patient: int) -> str:
    """Open a new PROM link in the test browser; the form token of the page it lands on."""
    page = api.get(f"/prom/{_link(installation, patient)}")
    assert page.status_code == 200 and str(page.url).endswith("/prom")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return token.group(1)


def _stored(installation, patient: int) -> dict[str, object]:
    with installation.registry.transaction() as session:
        set_scope(session, Scope.everything())
        row = session.scalars(
            select(Response).where(Response.patient_id == patient).order_by(Response.id.desc())
        ).first()
        assert row is not None
        return dict(row.values)


def test_the_prom_page_starts_with_no_answer_chosen(api, installation):
    page = api.get(f"/prom/{_link(installation, installation.patient_ids['A'][0])}").text
    worry = re.search(r'<input id="f-worry"[^>]*>', page)
    assert worry is not None
    assert 'type="number"' in worry.group(0) and 'value=""' in worry.group(0)
    assert 'type="range"' not in page  # the slider is drawn by the script, with no position
    assert " checked" not in page and " selected" not in page
    assert re.search(r'<input id="f-prom_date"[^>]*value=""', page)
    assert "Not worried" in page and "Very worried" in page


def test_an_untouched_slider_is_stored_as_unanswered_and_a_chosen_one_as_chosen(api, installation):
    patient = installation.patient_ids["A"][1]
    answers = prom_answers("2024-06-01")
    form_token = _open(api, installation, patient)
    sent = api.post("/prom", data={**answers, "csrf_token": form_token})
    assert sent.status_code == 200 and "Thank you" in sent.text
    assert "worry" not in _stored(installation, patient)
    other = installation.patient_ids["B"][0]  # one PROM a day per patient
    form_token = _open(api, installation, other)
    chosen = api.post(
        "/prom", data={**prom_answers("2024-06-08"), "worry": "37", "csrf_token": form_token}
    )
    assert chosen.status_code == 200
    assert _stored(installation, other)["worry"] == "37"
