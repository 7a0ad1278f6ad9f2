"""Helpers for CDS Hooks tests: client keys, signed JWTs, knowledge objects per hook."""

from __future__ import annotations

import copy
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from careloop.community import CharterTerms, CycleInput, add_cycle, create_community
from careloop.content.ibd import PACKAGE as IBD
from careloop.knowledge import (
    KnowledgePackage,
    activate,
    add_version,
    approve,
    load_package,
    package_from_dict,
    submit,
)
from careloop.practice import trust_client
from tests.foundation import Installation

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "data" / "cds_hooks_examples"
ISSUER = "https://ehr.example.org/"
BASE = "http://testserver"


@dataclass
class ClientKeys:
    """A CDS client's key pair, in the shapes tests need."""

    issuer: str
    kid: str
    alg: str
    private_key: Any
    jwks: dict[str, Any]

    def token(self, aud: str, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": aud,
            "exp": now + 300,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "tenant": "tenant-1",
        }
        headers = {"kid": self.kid, "typ": "JWT"}
        headers.update(overrides.pop("headers", {}))
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=headers)


def ec_client(issuer: str = ISSUER, kid: str = "ec-1") -> ClientKeys:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "ES384"})
    return ClientKeys(issuer, kid, "ES384", key, {"keys": [jwk]})


def rsa_client(issuer: str, kid: str = "rsa-1") -> ClientKeys:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS384"})
    return ClientKeys(issuer, kid, "RS384", key, {"keys": [jwk]})


def trust(inst: Installation, keys: ClientKeys, tmp: Path, **kwargs: Any) -> None:
    path = tmp / f"jwks-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(keys.jwks))
    trust_client(inst.registry, inst.operator, issuer=keys.issuer, jwks_file=path, **kwargs)


def auth(keys: ClientKeys, path: str, **overrides: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.token(BASE + path, **overrides)}"}


def trial_cycle(
    inst: Installation,
    *,
    purpose: str = "qi",
    determination: tuple[str, str] | None = ("qi_determination", "QI-TEST-1"),
) -> int:
    """A learning cycle (in a community of its own) that a randomised test of card variants
    runs under; without ``determination`` it records none."""
    op = inst.operator
    name = f"Card wording test {uuid.uuid4().hex[:8]}"
    created = create_community(
        inst.registry,
        op,
        name=name,
        purpose="Test the card's wording",
        problem="Which wording helps clinicians act",
        scale="network",
        charter=CharterTerms(purpose="Test the card's wording", decision_rule="majority"),
        known_measures=(),
        facilitator=inst.emails["admin"],
    )
    kind, ref = determination or (None, None)
    return add_cycle(
        inst.registry,
        op,
        created.community.id,
        CycleInput(
            title="Two wordings of the steroid review card",
            kind="process",
            purpose=purpose,
            randomised=determination is not None,
            determination_kind=kind,
            determination_ref=ref,
        ),
        known_measures=(),
    ).id


def deploy(inst: Installation, package: KnowledgePackage, **kwargs: Any) -> None:
    """Add, approve and activate a package (under a trial cycle when it randomises)."""
    ref = f"{package.identifier}@{package.version}"
    op = inst.operator
    add_version(inst.registry, op, package, reason="test")
    submit(inst.registry, op, ref, reason="test")
    approve(inst.registry, op, ref, reason="test")
    if package.trials() and "cycle_id" not in kwargs:
        kwargs["cycle_id"] = trial_cycle(inst)
    activate(inst.registry, op, ref, reason="test", **kwargs)


def ibd_package(identifier: str, **changes: Any) -> KnowledgePackage:
    data = copy.deepcopy(load_package(IBD.knowledge_object("ibd_steroid_review")).to_dict())
    data["metadata"]["identifier"] = identifier
    data["service"]["id"] = identifier
    for key, value in changes.items():
        data[key] = value
    return package_from_dict(data)


def hook_package(hook: str, prefetch: dict[str, str] | None = None) -> KnowledgePackage:
    """A KO for ``hook`` whose one rule always fires (for conformance runs)."""
    identifier = f"conf-{hook}"
    return package_from_dict(
        {
            "metadata": {
                "identifier": identifier,
                "version": "1.0.0",
                "title": f"Conformance service for {hook}",
                "description": "Answers every valid request with one card.",
                "contributors": ["tests"],
                "license": "CC0-1.0",
            },
            "service": {
                "id": identifier,
                "hook": hook,
                "description": f"Conformance service for {hook}",
                **({"prefetch": prefetch} if prefetch else {}),
            },
            "rules": {
                "rules": [
                    {
                        "id": "always",
                        "when": {"not": {"exists": {"context": "noSuchField"}}},
                        "card": {
                            "summary": "Conformance card",
                            "indicator": "info",
                            "source": {"label": "careloop tests", "url": "https://example.org"},
                            "selectionBehavior": "any",
                            "suggestions": [{"label": "Note it"}],
                            "links": [
                                {
                                    "label": "Spec",
                                    "url": "https://cds-hooks.hl7.org",
                                    "type": "absolute",
                                }
                            ],
                        },
                    }
                ]
            },
            "tests": [{"name": "fires", "context": {}, "expect": [{"rule": "always"}]}],
        }
    )


def ibd_prefetch(*, sparing: bool = False, courses: int = 2) -> dict[str, Any]:
    """Prefetch data of a steroid-dependent child (courses in the last months)."""
    case = load_package(IBD.knowledge_object("ibd_steroid_review")).tests[0]
    prefetch = copy.deepcopy(case["prefetch"])
    meds = prefetch["medications"]["entry"][:courses]
    today = time.strftime("%Y-%m-%d")
    for entry in meds:
        entry["resource"]["authoredOn"] = today
    if sparing:
        meds.append(
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                "code": "1256",
                            }
                        ]
                    },
                }
            }
        )
    prefetch["medications"]["entry"] = meds
    return prefetch


def hook_request(hook: str, context: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"hookInstance": str(uuid.uuid4()), "hook": hook, "context": context, **extra}
