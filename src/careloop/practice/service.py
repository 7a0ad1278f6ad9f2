"""The CDS Hooks service: discovery, calls, feedback — everything stored as data.

Each call is answered from the active version of the knowledge object
behind the service id. Prefetch keys the client did not send are fetched
from its ``fhirServer`` with the ``fhirAuthorization`` token; without either
the call gets 412, as the spec says. Card variants are allocated through
:mod:`careloop.practice.variants`; a trial that randomises patients allocates
only a patient whose consent covers its purpose, and gives anyone else usual
care (the rule's own card, no variant), recorded in the audit trail with the
reason. Silent deployments evaluate and store
their cards but answer ``{"cards": []}``. The invocation, its cards (with
the knowledge object version and variant) and later feedback are rows the
warehouse and measures can read.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlalchemy import select

from careloop.analysis.trials import TrialDesign
from careloop.core.clock import utcnow
from careloop.knowledge import USUAL_CARE, KnowledgePackage, ProposedCard
from careloop.knowledge.cards import Problem, card_problems, response_problems
from careloop.knowledge.library import ActiveService, active_services
from careloop.practice.cds_hooks import (
    CdsHooksError,
    HookRequest,
    feedback_problems,
    fill_template,
    parse_request,
    token_values,
)
from careloop.practice.clients import VerifiedCall, normalise_fhir_server, remember_jti
from careloop.practice.variants import (
    ConsentCheck,
    allocate,
    patient_consent,
    patient_local_ids,
    unit_of,
)
from careloop.store.database import Registry
from careloop.store.models.knowledge import CdsCard, CdsFeedback, CdsInvocation
from careloop.trust import audit
from careloop.trust.audit import AuditEvent

log = logging.getLogger("careloop.practice")
FHIR_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class FeedbackReceipt:
    """What the feedback endpoint stored."""

    stored: int
    """Feedback items stored."""


def discovery(registry: Registry, call: VerifiedCall) -> dict[str, Any]:
    """The discovery document: the active services the calling client's site may use."""
    services = active_services(registry)
    return {
        "services": [
            svc.package.discovery_entry()
            for _, svc in sorted(services.items())
            if svc.serves_site(call.site_code)
        ]
    }


def _service(registry: Registry, service_id: str, call: VerifiedCall) -> ActiveService:
    svc = active_services(registry).get(service_id)
    if svc is None or not svc.serves_site(call.site_code):
        raise CdsHooksError(404, f"There is no active CDS service {service_id!r}.")
    return svc


def complete_prefetch(
    templates: Mapping[str, str],
    request: HookRequest,
    *,
    fhir_servers: Collection[str] = (),
    http: httpx.Client | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The prefetch data with the keys the client left out fetched from its FHIR server.

    Only a ``fhirServer`` among ``fhir_servers`` (the client's registered FHIR
    servers) is ever contacted: careloop never sends the call's bearer token,
    or any request, to an address the client's registration does not name.

    Returns the data and the keys that were fetched. Raises CdsHooksError(412)
    when a key is missing and there is no FHIR server and token to fetch it
    with, the server is not registered for the client, or it does not answer.
    """
    data = dict(request.prefetch)
    missing = [key for key in templates if key not in data]
    if not missing:
        return data, []
    if not request.fhir_server or not request.access_token:
        raise CdsHooksError(
            412,
            "The request lacks prefetch data this service needs "
            f"({', '.join(missing)}) and gives no fhirServer with fhirAuthorization to fetch it.",
        )
    base = normalise_fhir_server(request.fhir_server)
    if base not in {normalise_fhir_server(u) for u in fhir_servers}:
        raise CdsHooksError(
            412,
            f"The request lacks prefetch data this service needs ({', '.join(missing)}), and "
            "careloop fetches only from the FHIR servers registered for this client "
            f"({', '.join(sorted(fhir_servers)) or 'none'}); {base} is not one of them. "
            "Send the prefetch data, or ask the careloop administrator to register the server "
            "(careloop cds trust-client --fhir-server URL).",
        )
    values = token_values(request.context)
    fetched = []
    headers = {
        "Authorization": f"Bearer {request.access_token}",
        "Accept": "application/fhir+json",
    }
    client = http or httpx.Client(timeout=FHIR_TIMEOUT_SECONDS)
    try:
        for key in missing:
            query = fill_template(templates[key], values)
            if query is None:
                continue  # a token the context does not provide: the key stays absent
            url = httpx.URL(f"{base}/{query}")
            if not _under(url, base):
                raise CdsHooksError(
                    412, f"The prefetch template for {key!r} leads outside the FHIR server."
                )
            try:
                response = client.get(url, headers=headers, follow_redirects=False)
            except httpx.HTTPError as exc:
                raise CdsHooksError(
                    412, f"The FHIR server did not answer for prefetch key {key!r}."
                ) from exc
            if response.status_code == 404:
                data[key] = None
            elif response.status_code == 200:
                try:
                    data[key] = response.json()
                except ValueError as exc:
                    raise CdsHooksError(
                        412, f"The FHIR server's answer for {key!r} is not JSON."
                    ) from exc
            else:
                raise CdsHooksError(
                    412,
                    f"The FHIR server answered {response.status_code} for prefetch key {key!r}.",
                )
            fetched.append(key)
    finally:
        if http is None:
            client.close()
    return data, fetched


def _under(url: httpx.URL, base: str) -> bool:
    """Whether ``url`` (with its dot segments resolved) is on the server at ``base``."""
    root = httpx.URL(base)
    path = root.path.rstrip("/") + "/"
    return (url.scheme, url.host, url.port) == (root.scheme, root.host, root.port) and (
        url.path.startswith(path)
    )


def _with_uuids(card: dict[str, Any]) -> dict[str, Any]:
    out = {"uuid": str(uuid.uuid4()), **card}
    if "suggestions" in out:
        out["suggestions"] = [
            {"uuid": str(uuid.uuid4()), **s} if "uuid" not in s else dict(s)
            for s in out["suggestions"]
        ]
    return out


def invoke(
    registry: Registry,
    service_id: str,
    body: Any,
    call: VerifiedCall,
    *,
    today: date | None = None,
    http: httpx.Client | None = None,
) -> dict[str, Any]:
    """Answer one CDS Hooks call and store the invocation and its cards."""
    started = time.perf_counter()
    svc = _service(registry, service_id, call)
    package = svc.package
    request = parse_request(body, hook=package.hook)
    prefetch, fetched = complete_prefetch(
        package.service.get("prefetch", {}), request, fhir_servers=call.fhir_servers, http=http
    )

    consent: list[ConsentCheck] = []  # read once per call, when a trial randomises patients
    usual_care: list[AuditEvent] = []

    def choose_arm(design: TrialDesign) -> str | None:
        unit = unit_of(design, request.context)
        if unit is None:
            return None
        if design.unit == "patient":
            if not consent:
                consent.append(
                    patient_consent(
                        registry,
                        patient_local_ids(request.context, prefetch),
                        site_code=call.site_code,
                        consent_purpose=svc.consent_purpose,
                    )
                )
            if not consent[0].allowed:
                if design.name not in {e.details["trial"] for e in usual_care if e.details}:
                    usual_care.append(_usual_care_event(svc, design, consent[0], call, request))
                return USUAL_CARE
        return allocate(registry, design, unit, ko_identifier=package.identifier)

    proposed = package.evaluate(
        request.context, prefetch, today=today or utcnow().date(), choose_arm=choose_arm
    )
    cards = _valid_cards(proposed, package.identifier)
    live = svc.mode == "live"
    response: dict[str, Any] = {"cards": [card for _, card in cards] if live else []}
    actions = package.system_actions(request.context)
    if live and actions:
        response["systemActions"] = actions
    if response_problems(response):  # cannot happen after the checks above; never send one
        raise CdsHooksError(500, "The service produced a response that breaks the spec.")
    user = request.context.get("userId")
    patient = request.context.get("patientId")
    with registry.transaction() as session:
        remember_jti(session, call)
        invocation = CdsInvocation(
            hook_instance=request.hook_instance[:200],
            service_id=service_id,
            hook=request.hook,
            ko_identifier=package.identifier,
            ko_version=package.version,
            mode=svc.mode,
            issuer=call.issuer,
            tenant=call.tenant,
            site_code=call.site_code,
            user_ref=user[:200] if isinstance(user, str) else None,
            patient_ref=patient[:200] if isinstance(patient, str) else None,
            fetched_keys=json.dumps(fetched),
            cards_count=len(cards),
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        session.add(invocation)
        session.flush()
        session.add_all(
            _card_row(item, card, invocation.id, service_id, package, shown=live)
            for item, card in cards
        )
        audit.append_many(session, usual_care)
    return response


def _usual_care_event(
    svc: ActiveService,
    design: TrialDesign,
    check: ConsentCheck,
    call: VerifiedCall,
    request: HookRequest,
) -> AuditEvent:
    """The record that a patient was not allocated to a randomised test, and why."""
    purpose = svc.consent_purpose or "research"
    return AuditEvent(
        action="cds.usual_care",
        category="consent",
        site_code=call.site_code,
        patient_id=check.patient_id,
        patient_pseudo_id=check.pseudo_id,
        reason=f"{check.reason} Usual care: the rule's own card, no variant.",
        details={
            "service": svc.package.service["id"],
            "ko": f"{svc.package.identifier}@{svc.package.version}",
            "trial": design.name,
            "consent_purpose": purpose,
            "consent_state": check.consent_state,
            "hook_instance": request.hook_instance[:200],
            "issuer": call.issuer,
        },
    )


def _valid_cards(
    proposed: Sequence[ProposedCard], package_identifier: str
) -> list[tuple[ProposedCard, dict[str, Any]]]:
    """The proposed cards with their uuids, leaving out (and logging) any that break the spec."""
    cards = []
    for item in proposed:
        card = _with_uuids(item.card)
        problems = card_problems(card, f"rule {item.rule_id}")
        if problems:
            # A token filled with an empty value can break a card: never send it.
            log.warning("Dropped an invalid card of %s: %s", package_identifier, problems)
            continue
        cards.append((item, card))
    return cards


def _card_row(
    item: ProposedCard,
    card: dict[str, Any],
    invocation_id: int,
    service_id: str,
    package: KnowledgePackage,
    *,
    shown: bool,
) -> CdsCard:
    """The stored record of one card (and whether the user was shown it)."""
    return CdsCard(
        uuid=card["uuid"],
        invocation_id=invocation_id,
        service_id=service_id,
        ko_identifier=package.identifier,
        ko_version=package.version,
        rule_id=item.rule_id,
        variant=item.variant,
        shown=shown,
        indicator=card["indicator"],
        summary=card["summary"],
        suggestions=json.dumps(
            [{"uuid": s["uuid"], "label": s["label"]} for s in card.get("suggestions", [])]
        ),
    )


def _timestamp(text: str) -> datetime:
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)  # the spec's times are UTC


def _clip(value: Any, size: int) -> str | None:
    return str(value)[:size] if value is not None else None


def record_feedback(
    registry: Registry, service_id: str, body: Any, call: VerifiedCall
) -> FeedbackReceipt:
    """Store feedback on cards this service showed to this client, all or nothing."""
    problems = feedback_problems(body)
    if problems:
        raise CdsHooksError(400, "The feedback is not valid.", problems)
    items = body["feedback"]
    with registry.transaction() as session:
        remember_jti(session, call)
        uuids = {str(item["card"]) for item in items}
        found = {
            card.uuid: (card, issuer)
            for card, issuer in session.execute(
                select(CdsCard, CdsInvocation.issuer)
                .join(CdsInvocation, CdsInvocation.id == CdsCard.invocation_id)
                .where(CdsCard.uuid.in_(uuids))
            ).all()
        }
        unknown: list[Problem] = []
        for i, item in enumerate(items):
            hit = found.get(str(item["card"]))
            if (
                hit is None
                or hit[1] != call.issuer
                or hit[0].service_id != service_id
                or not hit[0].shown
            ):
                unknown.append(
                    Problem(
                        f"feedback[{i}].card", "No card with this uuid was shown by this service."
                    )
                )
                continue
            offered = {s["uuid"] for s in json.loads(hit[0].suggestions)}
            for j, accepted in enumerate(item.get("acceptedSuggestions") or []):
                if accepted["id"] not in offered:
                    unknown.append(
                        Problem(
                            f"feedback[{i}].acceptedSuggestions[{j}].id",
                            "The card offered no suggestion with this uuid.",
                        )
                    )
        if unknown:
            raise CdsHooksError(400, "The feedback names unknown cards or suggestions.", unknown)
        for item in items:
            card = found[str(item["card"])][0]
            reason = item.get("overrideReason") or {}
            coding = reason.get("reason") or {}
            session.add(
                CdsFeedback(
                    card_id=card.id,
                    card_uuid=card.uuid,
                    service_id=service_id,
                    ko_identifier=card.ko_identifier,
                    ko_version=card.ko_version,
                    outcome=item["outcome"],
                    accepted_suggestions=json.dumps(
                        [s["id"] for s in item.get("acceptedSuggestions") or []]
                    ),
                    override_code=_clip(coding.get("code"), 200),
                    override_system=_clip(coding.get("system"), 500),
                    override_display=_clip(coding.get("display"), 500),
                    user_comment=reason.get("userComment"),
                    outcome_timestamp=_timestamp(item["outcomeTimestamp"]),
                    issuer=call.issuer,
                )
            )
    return FeedbackReceipt(stored=len(items))
