"""Knowledge into practice in the demo: a knowledge object approved, deployed, called by EHRs.

The example knowledge object (steroid-dependent IBD without steroid-sparing
therapy → review) goes through its lifecycle and is activated at the sites
of the planted deployment. Each of those sites' EHR is a trusted CDS
client with its own signing key; simulated clinic visits call the CDS Hooks
service of a real ``careloop serve`` over HTTP with signed JWTs, and the
clinicians' answers (accepted with the planted probability) come back as
feedback. Acceptance is then read from the service's own stored card
events — the data, not the simulator's tally.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import numpy as np
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from careloop.content.ibd import PACKAGE as IBD
from careloop.core.settings import Settings
from careloop.demo.network import SyntheticNetwork
from careloop.demo.server import start_server, stop_server
from careloop.knowledge import activate, add_version, approve, load_package, submit
from careloop.knowledge.package import package_from_dict
from careloop.practice import card_events, trust_client
from careloop.store.database import Registry
from careloop.trust.principal import Principal

KNOWLEDGE_OBJECT = IBD.knowledge_object("ibd_steroid_review")
ISSUER = "https://ehr-{site}.demo.careloop.invalid/"
DEMO_TARGETS = ("steroid-at-visit",)
"""The demo's own measures the knowledge object moves, beside those it names itself."""
CALLS_PER_SITE = 40
"""Simulated clinic visits calling the service at each deployed site."""
CLINICIANS_PER_SITE = 6


def clinician_ref(site: str, visit: int) -> str:
    """The EHR user (clinician) of a simulated visit: six clinicians per site, in turn."""
    return f"Practitioner/{site}-{visit % CLINICIANS_PER_SITE}"


@dataclass(frozen=True)
class DecisionSupportRun:
    """What the simulated EHR visits produced."""

    service_id: str
    ko_ref: str
    calls: int
    cards_shown: int
    accepted: int
    by_site: dict[str, tuple[int, int]]
    """site → (cards shown, accepted), from the stored card events."""
    by_clinician: dict[str, tuple[int, int]]
    """clinician (the EHR's user reference) → (cards shown, accepted), from the card events."""


def _prefetch(template: dict[str, Any], patient: str, today: str) -> dict[str, Any]:
    prefetch: dict[str, Any] = json.loads(json.dumps(template))
    prefetch["patient"]["id"] = patient
    for entry in prefetch["medications"]["entry"]:
        entry["resource"]["authoredOn"] = today
    return prefetch


def _answer(card: dict[str, Any], *, accepted: bool) -> dict[str, Any]:
    """A clinician's answer to a card, as CDS Hooks feedback."""
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": "accepted" if accepted else "overridden",
        "outcomeTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if accepted:
        item["acceptedSuggestions"] = [{"id": s["uuid"]} for s in card.get("suggestions", [])[:1]]
    elif card.get("overrideReasons"):
        item["overrideReason"] = {"reason": card["overrideReasons"][0]}
    return item


def run_decision_support(
    settings: Settings,
    registry: Registry,
    operator: Principal,
    network: SyntheticNetwork,
    *,
    calls_per_site: int = CALLS_PER_SITE,
    evidence: Sequence[tuple[int, str]] = (),
    approve_by: Callable[[str], object] | None = None,
    cycle_for: Callable[[str], int] | None = None,
) -> DecisionSupportRun:
    """Approve and deploy the knowledge object, then simulate EHR visits calling it.

    ``evidence`` (provenance record id, title) is added to the knowledge
    object's evidence, so that its cards can be traced to the analysis and the
    measure run behind it (``careloop provenance show card:<uuid> --chain``).
    ``approve_by`` approves the version under review (the demo's learning
    community decides by its charter's rule); without it the operator does.
    ``cycle_for`` records the learning cycle the deployment runs under and
    returns its id: the knowledge object randomises its card's wording, and a
    randomised test needs a cycle with its QI determination on record.

    Long because it is one scene of the demo's story told in order (the knowledge
    object's lifecycle, its deployment, then the simulated visits); split, the order of
    the scene would be harder to follow.
    """
    truth = network.truth
    package = load_package(KNOWLEDGE_OBJECT)
    data = package.to_dict()
    cited = [{"ref": f"provenance:{pid}", "title": title} for pid, title in evidence]
    targets = data["metadata"].get("measures", [])
    data["metadata"] = {
        **data["metadata"],
        "evidence": [*data["metadata"].get("evidence", []), *cited],
        # The demo's network plants the object's effect on steroid use at visits: it is a
        # measure the object should move, so its impact page and the report show it there.
        "measures": [*targets, *(m for m in DEMO_TARGETS if m not in targets)],
    }
    package = package_from_dict(data, origin=str(KNOWLEDGE_OBJECT))
    ref = f"{package.identifier}@{package.version}"
    add_version(registry, operator, package, reason="Learning community's steroid-sparing priority")
    submit(registry, operator, ref, reason="Tests pass; ready for the clinical lead's review")
    if approve_by is not None:
        approve_by(ref)
    else:
        approve(registry, operator, ref, reason="Reviewed against the ECCO-ESPGHAN guideline")
    activate(
        registry,
        operator,
        ref,
        reason="Deployed at the pilot sites",
        sites=list(truth.ko_sites),
        started_at=datetime.combine(truth.ko_date, datetime.min.time(), tzinfo=UTC),
        cycle_id=cycle_for(ref) if cycle_for is not None else None,
    )
    keys = {}
    for site in truth.ko_sites:
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": f"{site.lower()}-1", "alg": "ES256", "use": "sig"})
        path = settings.data_dir / f"ehr-{site.lower()}-jwks.json"
        path.write_text(json.dumps({"keys": [jwk]}))
        trust_client(
            registry, operator, issuer=ISSUER.format(site=site.lower()), jwks_file=path, site=site
        )
        keys[site] = key
    service_id = package.service_id
    template = package.tests[0]["prefetch"]
    rng = np.random.default_rng(network.seed + 1)
    today = datetime.now(UTC).date().isoformat()
    server = start_server(settings.data_dir)
    url = server.url
    calls = 0
    try:
        with httpx.Client(timeout=10) as client:
            for site, key in keys.items():
                issuer = ISSUER.format(site=site.lower())
                aud = f"{url}/cds-services/{service_id}"

                def token(
                    audience: str, *, k: Any = key, iss: str = issuer, kid: str = site
                ) -> str:
                    now = int(time.time())
                    return jwt.encode(
                        {
                            "iss": iss,
                            "aud": audience,
                            "iat": now,
                            "exp": now + 300,
                            "jti": str(uuid.uuid4()),
                        },
                        k,
                        algorithm="ES256",
                        headers={"kid": f"{kid.lower()}-1", "typ": "JWT"},
                    )

                for i in range(calls_per_site):
                    body = {
                        "hookInstance": str(uuid.uuid4()),
                        "hook": "patient-view",
                        "context": {
                            "userId": clinician_ref(site, i),
                            "patientId": f"{site}-{i}",
                        },
                        "prefetch": _prefetch(template, f"{site}-{i}", today),
                    }
                    answer = client.post(
                        aud, json=body, headers={"Authorization": f"Bearer {token(aud)}"}
                    )
                    answer.raise_for_status()
                    calls += 1
                    feedback = [
                        _answer(card, accepted=bool(rng.random() < truth.card_acceptance))
                        for card in answer.json().get("cards", [])
                    ]
                    if feedback:
                        target = f"{aud}/feedback"
                        client.post(
                            target,
                            json={"feedback": feedback},
                            headers={"Authorization": f"Bearer {token(target)}"},
                        ).raise_for_status()
    finally:
        stop_server(server)
    events = card_events(registry)
    shown = events[events.shown.astype(bool)]
    by_site = {
        str(site): (len(group), int((group.outcome == "accepted").sum()))
        for site, group in shown.groupby("site_code")
    }
    by_clinician = {
        str(user): (len(group), int((group.outcome == "accepted").sum()))
        for user, group in shown.groupby(shown.user_ref.fillna(""))
    }
    return DecisionSupportRun(
        service_id=service_id,
        ko_ref=ref,
        calls=calls,
        cards_shown=len(shown),
        accepted=int((shown.outcome == "accepted").sum()),
        by_site=by_site,
        by_clinician=by_clinician,
    )
