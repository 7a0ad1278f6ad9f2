"""Running a learning cycle from the pages: recording a cycle's Act, a new cycle with its
Plan and Do, a problem or idea to prioritise, and a decision or reflection for the log.

Each form is an ordinary POST carrying the session's CSRF token (checked with the
session by :func:`careloop.web.security.authenticate`). The :mod:`careloop.community`
service checks membership, validates and audits, as it does for the API and the CLI;
a refusal comes back on the same page with its reasons beside the fields and what was
typed kept, nothing recorded, and success redirects (303) to the page that shows
what was recorded. As on every community page, an outsider gets "not found".
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from careloop import community
from careloop.core.errors import CareloopError
from careloop.web.openapi import RecordId
from careloop.web.pages.community import cycle_response
from careloop.web.pages.community_assessment import PostedForm
from careloop.web.security import CallerDep, RegistryDep, SettingsDep

router = APIRouter(include_in_schema=False)


@router.post("/communities/{community_id}/cycles/{cycle_id}/act")
def act_submit(
    request: Request,
    community_id: RecordId,
    cycle_id: RecordId,
    caller: CallerDep,
    registry: RegistryDep,
    settings: SettingsDep,
    form: PostedForm,
) -> Response:
    """Record the cycle's Act: adopt, adapt or abandon the change, and why."""
    try:
        community.record_act(
            registry,
            caller.principal,
            cycle_id,
            decision=form.get("decision", ""),
            rationale=form.get("rationale", ""),
            community_id=community_id,
        )
    except CareloopError as exc:
        # A non-member gets "not found" from the page itself (the service audited the
        # refusal); a member sees what to fix beside the fields, nothing recorded.
        return cycle_response(
            request,
            caller,
            registry,
            community_id,
            cycle_id,
            settings=settings,
            entered=form,
            error=exc,
        )
    return RedirectResponse(
        f"/communities/{community_id}/cycles/{cycle_id}?recorded=1#act", status_code=303
    )
