"""What the OpenAPI description says about errors, ids, request bodies and files.

Each route declares the error statuses it really answers with careloop's one
error shape (:class:`ErrorBody`), so clients and schemathesis know them;
database ids are bounded (a larger number is no id careloop stores, and a
64-bit database refuses it); request bodies refuse fields they do not know
(:class:`Strict`) and bound their text (:data:`Text`, :data:`Short`);
:data:`DICTIONARY_BODY` declares the files the form import takes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

MAX_ID = 2**63 - 1
"""The largest id a 64-bit database column holds."""

RecordId = Annotated[int, Path(ge=1, le=MAX_ID, description="A record's id.")]
OptionalIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
IdField = Annotated[int, Field(ge=1, le=MAX_ID)]
Text = Annotated[str, Field(max_length=20_000)]
"""Free text in a request body (a purpose, a rationale, a note)."""
Short = Annotated[str, Field(max_length=300)]
"""A short text in a request body (a title, an e-mail, a measure's id)."""


class Strict(BaseModel):
    """A request body that refuses a field it does not know (422), so a typo is not lost."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetailBody(BaseModel):
    location: str
    message: str
    value: Any = None


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable error code (docs/errors.md).")
    message: str
    details: list[ErrorDetailBody]
    request_id: str | None


class ErrorBody(BaseModel):
    """careloop's one error shape."""

    error: ErrorInfo


_WHY = {
    400: "The body could not be read.",
    401: "Not signed in, or the token or session is not valid (or needs a recent password).",
    403: "The caller's roles do not allow this, or the CSRF token is missing.",
    404: "No such record that the caller may see.",
    409: "It conflicts with the current state (a duplicate, a stale version, the last admin).",
    413: "The body is too large.",
    422: "A parameter or the body is not valid; the details name each problem.",
    423: "The account is locked after too many failed attempts.",
    429: "Too many requests, or too many failed PROM links, from this network address; "
    "the Retry-After header says when to try again.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, in careloop's error shape."""
    return {status: {"model": ErrorBody, "description": _WHY[status]} for status in statuses}


def files_too(
    description: str, files: dict[str, dict[str, Any]], model: type[BaseModel] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a 200 that is JSON or, on request, a file.

    ``files`` maps each other media type to its schema; ``model`` is the JSON
    answer's model (a JSON array of objects when there is none).
    """
    answer: dict[str, Any] = {"description": description, "content": dict(files)}
    if model is None:
        answer["content"]["application/json"] = {
            "schema": {"type": "array", "items": {"type": "object"}}
        }
    else:
        answer["model"] = model
    return {200: answer}


TEXT: dict[str, Any] = {"schema": {"type": "string"}}
"""A text file's schema."""


class OperationOutcomeBody(BaseModel):
    """A FHIR OperationOutcome: how ``/fhir`` answers an error."""

    resourceType: str = "OperationOutcome"
    issue: list[dict[str, Any]]


FHIR_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OperationOutcomeBody, "description": _WHY[status]}
    for status in (400, 401, 403, 404, 422)
}
"""``/fhir`` errors, as OperationOutcome resources."""


DICTIONARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The data dictionary file, in the format named by `format`.",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/yaml": {"schema": {"type": "string"}},
            "application/fhir+json": {"schema": {"type": "object"}},
        },
    }
}
"""``POST /api/forms``: a REDCap dictionary (CSV), careloop YAML or a FHIR Questionnaire."""
