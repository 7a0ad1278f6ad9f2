"""Knowledge into practice: the CDS Hooks 2.0 service, its security, card feedback and variants.

- the HTTP side of the service (``/cds-services`` discovery, calls and
  feedback) is :mod:`careloop.web.cds_hooks`, mounted by the web app;
- :func:`trust_client` / :func:`verify_call` — trusted CDS clients and the
  JWT checks the spec requires;
- :func:`invoke`, :func:`discovery`, :func:`record_feedback` — the service
  itself, storing invocations, cards, variants and feedback;
- :func:`allocate` / :func:`trial_allocator` — card variants through
  :mod:`careloop.analysis.trials`;
- :func:`card_events` — cards, their invocations and feedback as a table for
  the warehouse and measures;
- :mod:`careloop.practice.feedback` — feedback to practice: measure
  dashboards, a deployment's impact, a site's audit-and-feedback report
  (imported on use: it needs the SPC/ITS stack, which the CDS service does not).
"""

from careloop.practice.cds_hooks import (
    CdsHooksError,
    HookRequest,
    feedback_problems,
    fill_template,
    parse_request,
    request_problems,
    token_values,
)
from careloop.practice.clients import (
    TrustedClient,
    Unauthorised,
    VerifiedCall,
    distrust_client,
    list_clients,
    trust_client,
    verify_call,
)
from careloop.practice.events import card_events
from careloop.practice.service import (
    FeedbackReceipt,
    complete_prefetch,
    discovery,
    invoke,
    record_feedback,
)
from careloop.practice.variants import allocate, trial_allocator

__all__ = [
    "CdsHooksError",
    "FeedbackReceipt",
    "HookRequest",
    "TrustedClient",
    "Unauthorised",
    "VerifiedCall",
    "allocate",
    "card_events",
    "complete_prefetch",
    "discovery",
    "distrust_client",
    "feedback_problems",
    "fill_template",
    "invoke",
    "list_clients",
    "parse_request",
    "record_feedback",
    "request_problems",
    "token_values",
    "trial_allocator",
    "trust_client",
    "verify_call",
]
