"""Entering responses: validated, site-scoped, versioned and audited.

A response is one patient's answers to one form for one event (visit) date;
there is at most one per patient × form × date × REDCap event × repeat
instance (the last two only set by imports of REDCap exports: ``''`` and
``1`` otherwise, so for entry on careloop's pages it is one per patient ×
form × date). It records the form version
it was entered against, and it is always validated, shown and edited against
that version, so importing a changed dictionary never makes old data
unreadable.

Each function runs in one unit of work (careloop.trust.work): the policy
decides the action (``record.read`` or ``record.write``), the scoped session
decides which rows exist for the caller (another site's response is simply
not found), and exactly one audit entry records the request — with the
field names that changed, never their values. Rules:

- Validation is careloop.capture's (:func:`validate_response`): every field
  error at once, as :class:`ValidationFailed` with one detail per field
  (``location`` = the field name). A *draft* may leave required fields
  empty; a *complete* response may not.
- Editing a complete response needs a reason for change (audited).
- Optimistic concurrency: pass the version you read (the API's ETag); a
  stale one is a :class:`Conflict` and nothing is overwritten.
- Patients and carers (their own or proxied record) may enter only
  patient-reported forms; what they enter is marked ``patient_entered``.
"""

from __future__ import annotations

from careloop.capture.entry.history import (
    FieldChange,
    ResponseHistory,
    Revision,
    response_history,
)
from careloop.capture.entry.reading import (
    ResponseMatches,
    ResponseWithSubject,
    find_responses,
    get_response,
    get_response_form,
    get_response_with_subject,
    list_responses,
    patient_timeline,
)
from careloop.capture.entry.saving import (
    ResponseToSave,
    SavedResponse,
    create_response,
    save_response,
    save_responses,
    update_response,
)
from careloop.capture.entry.views import (
    ResponseStatus,
    ResponseView,
    Timeline,
    TimelineEvent,
    check_values,
)

__all__ = [
    "FieldChange",
    "ResponseHistory",
    "ResponseMatches",
    "ResponseStatus",
    "ResponseToSave",
    "ResponseView",
    "ResponseWithSubject",
    "Revision",
    "SavedResponse",
    "Timeline",
    "TimelineEvent",
    "check_values",
    "create_response",
    "find_responses",
    "get_response",
    "get_response_form",
    "get_response_with_subject",
    "list_responses",
    "patient_timeline",
    "response_history",
    "save_response",
    "save_responses",
    "update_response",
]
