"""The read-only view of a response with its data history (like REDCap's).

Only for those who may read the patient's records; the capture layer decides
(another site's response is not found) and audits the read as identifiable
access to that patient.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from careloop.capture import entry
from careloop.capture.event_dates import event_date_field
from careloop.trust import patients
from careloop.web.form_render import build_view
from careloop.web.pages.rendering import page_context, render
from careloop.web.security import CallerDep, RegistryDep

router = APIRouter(include_in_schema=False)


@router.get("/responses/{response_id}/view", response_class=HTMLResponse)
def response_view_page(
    request: Request, response_id: int, caller: CallerDep, registry: RegistryDep
) -> Response:
    """A form as saved, answer by answer in words, and each change made to it."""
    history = entry.response_history(registry, caller.principal, response_id)
    patient = patients.get_patient(registry, caller.principal, history.view.patient_id)
    view = build_view(history.form, history.view.values, title=history.form.title)
    event_field = event_date_field(history.form)
    answers = [
        i for i in view.inputs if not i.hidden and i.kind != "descriptive" and i.name != event_field
    ]
    return render(
        request,
        "response_view.html",
        {
            **page_context(caller),
            "patient": patient,
            "response": history.view,
            "title": view.title,
            "answers": answers,
            "revisions": list(reversed(history.revisions)),
            # The care team's entry page; patients and carers change answers in their portal.
            "may_change": caller.principal.scope_for("record.write").patient_ids is None
            and caller.principal.may("record.write"),
        },
    )
