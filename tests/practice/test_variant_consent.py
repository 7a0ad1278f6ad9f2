"""Consent at allocation: a randomised test of card variants by patient allocates only
patients whose consent covers the test's purpose; anyone else gets usual care, recorded.

The steroid review card's wording test, randomised by patient instead of by
clinician, deployed under a quality improvement cycle (so its consent purpose is
``quality_improvement``) and called by an EHR at site A. careloop's registry holds
patients of site A in each consent state and one of site B. Runs on SQLite and on
PostgreSQL, as the CDS service's other tests do.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from sqlalchemy import select

from careloop.fhir.codes import MRN_TYPE_SYSTEM
from careloop.knowledge import package_from_dict
from careloop.practice import trial_allocator
from careloop.store.models import AuditEntry
from careloop.store.models.knowledge import CdsCard, CdsVariantAssignment, KnowledgeDeployment
from careloop.trust import patients
from tests.practice.cds_support import (
    auth,
    deploy,
    ec_client,
    hook_request,
    ibd_package,
    ibd_prefetch,
    trust,
)

SERVICE = "svc-by-patient"
TRIAL = "ibd-steroid-review-wording"
STANDARD_SUMMARY = ibd_package(SERVICE).rules["rules"][0]["card"]["summary"]
PATIENTS = {
    "MRN-A-yes": ("A", "improvement_and_research"),
    "MRN-A-direct": ("A", "direct_care_only"),
    "MRN-A-withdrawn": ("A", "withdrawn"),
    "MRN-B-yes": ("B", "improvement_and_research"),
}


def _by_patient() -> Any:
    data = copy.deepcopy(ibd_package(SERVICE).to_dict())
    (rule,) = data["rules"]["rules"]
    rule["variants"]["design"]["unit"] = "patient"
    return package_from_dict(data)


@pytest.fixture(scope="module")
def setup(installation, tmp_path_factory) -> dict[str, Any]:
    client = ec_client("https://ehr-consent.example.org/")
    trust(installation, client, tmp_path_factory.mktemp("jwks"), site="A")
    deploy(installation, _by_patient())
    ids = {}
    for mrn, (site, state) in PATIENTS.items():
        ids[mrn] = patients.register_patient(
            installation.registry, installation.operator, site=site, local_id=mrn,
            birth_date="2013-05-01", sex="female", consent_state=state,
        )  # fmt: skip
    return {"keys": client, "patients": ids}


def _call(api, setup, ehr_id: str, mrn: str | None) -> dict[str, Any]:
    """A patient-view call for EHR patient ``ehr_id``, whose prefetched Patient carries the
    MRN ``mrn`` (careloop's local id) when given."""
    prefetch = ibd_prefetch()
    prefetch["patient"] = {"resourceType": "Patient", "id": ehr_id, "birthDate": "2013-05-01"}
    if mrn is not None:
        prefetch["patient"]["identifier"] = [
            {"type": {"coding": [{"system": MRN_TYPE_SYSTEM, "code": "MR"}]}, "value": mrn}
        ]
    body = hook_request(
        "patient-view", {"userId": "Practitioner/dr-a", "patientId": ehr_id}, prefetch=prefetch
    )
    path = f"/cds-services/{SERVICE}"
    response = api.post(path, json=body, headers=auth(setup["keys"], path))
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    return card


def _rows(installation, model, **where) -> list[Any]:
    with installation.registry.transaction() as session:
        query = select(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def _usual_care(installation) -> list[AuditEntry]:
    return _rows(installation, AuditEntry, action="cds.usual_care")


def test_the_deployment_keeps_the_consent_purpose_its_cycle_gives(installation, setup):
    (deployment,) = _rows(installation, KnowledgeDeployment, identifier=SERVICE)
    assert deployment.consent_purpose == "quality_improvement"


def test_a_consenting_patient_is_allocated_by_the_mrn_the_ehr_sends(api, installation, setup):
    before = len(_usual_care(installation))
    card = _call(api, setup, "ehr-1001", "MRN-A-yes")
    (stored,) = _rows(installation, CdsCard, uuid=card["uuid"])
    assert stored.variant in ("standard", "peer-comparison")
    (assigned,) = _rows(installation, CdsVariantAssignment, unit_id="ehr-1001")
    assert assigned.arm == stored.variant and assigned.trial == TRIAL
    again = _call(api, setup, "ehr-1001", "MRN-A-yes")  # the same patient keeps their arm
    assert _rows(installation, CdsCard, uuid=again["uuid"])[0].variant == stored.variant
    assert len(_usual_care(installation)) == before  # nothing withheld


@pytest.mark.parametrize(
    ("ehr_id", "mrn", "state", "pseudonymous"),
    [
        ("ehr-2001", "MRN-A-direct", "direct_care_only", True),
        ("ehr-2002", "MRN-A-withdrawn", "withdrawn", True),
        ("ehr-2003", "MRN-B-yes", None, False),  # consented, but a patient of site B
        ("ehr-2004", None, None, False),  # not in careloop's registry at all
    ],
)
def test_a_patient_without_consent_gets_usual_care_with_no_allocation_and_it_is_recorded(
    api, installation, setup, ehr_id, mrn, state, pseudonymous
):
    card = _call(api, setup, ehr_id, mrn)
    assert card["summary"] == STANDARD_SUMMARY  # the rule's own card
    (stored,) = _rows(installation, CdsCard, uuid=card["uuid"])
    assert stored.variant is None
    assert _rows(installation, CdsVariantAssignment, unit_id=ehr_id) == []
    entry = _usual_care(installation)[-1]
    details = json.loads(entry.details or "{}")
    assert (entry.category, entry.outcome, entry.site_code) == ("consent", "success", "A")
    assert details["trial"] == TRIAL and details["consent_purpose"] == "quality_improvement"
    assert details["consent_state"] == state
    assert details["ko"] == f"{SERVICE}@1.0.0"
    assert "no consent for quality_improvement" in (entry.reason or "")
    if pseudonymous:
        view = setup["patients"][mrn]
        assert entry.patient_id == view.id and entry.patient_pseudo_id == view.pseudo_id
        assert state in (entry.reason or "")
    else:
        assert entry.patient_id is None
        assert "no patient with these identifiers at site A" in (entry.reason or "")


def test_a_patient_who_withdraws_gets_usual_care_from_then_on_and_the_trial_stays_sound(
    api, installation, setup
):
    view = setup["patients"]["MRN-A-yes"]
    assert _call(api, setup, "ehr-3001", "MRN-A-yes")  # allocated while consenting
    patients.record_consent(
        installation.registry, installation.operator, view.id, state="withdrawn", method="paper"
    )
    card = _call(api, setup, "ehr-3001", "MRN-A-yes")
    assert _rows(installation, CdsCard, uuid=card["uuid"])[0].variant is None
    assert json.loads(_usual_care(installation)[-1].details or "{}")["consent_state"] == (
        "withdrawn"
    )
    design = _by_patient().trials()[TRIAL]
    allocator = trial_allocator(installation.registry, design)  # re-derived from the seed
    assert {a.unit_id for a in allocator.assignments} == {"ehr-1001", "ehr-3001"}


def test_each_test_needs_the_consent_of_its_own_purpose(api, installation, setup):
    from careloop.practice.variants import patient_consent
    from careloop.trust.consent import record_consent_purpose

    reg, op = installation.registry, installation.operator
    views = {
        mrn: patients.register_patient(
            reg,
            op,
            site="A",
            local_id=mrn,
            sex="female",
            consent_state="improvement_and_research",
        )
        for mrn in ("MRN-A-no-research", "MRN-A-no-qi")
    }
    record_consent_purpose(
        reg, op, views["MRN-A-no-research"].id, "research", False, method="paper"
    )
    record_consent_purpose(reg, op, views["MRN-A-no-qi"].id, "quality_improvement", False, method="paper")  # fmt: skip

    def allowed(mrn: str, purpose: str) -> bool:
        return patient_consent(reg, [mrn], site_code="A", consent_purpose=purpose).allowed

    assert allowed("MRN-A-no-research", "quality_improvement")
    assert not allowed("MRN-A-no-research", "research")
    assert allowed("MRN-A-no-qi", "research")
    assert not allowed("MRN-A-no-qi", "quality_improvement")
    # This module's test runs under quality improvement: keeping that consent keeps the variant.
    card = _call(api, setup, "ehr-4001", "MRN-A-no-research")
    assert _rows(installation, CdsCard, uuid=card["uuid"])[0].variant is not None
    card = _call(api, setup, "ehr-4002", "MRN-A-no-qi")
    assert _rows(installation, CdsCard, uuid=card["uuid"])[0].variant is None
