"""Reading what a page sent: a posted form's fields, a live check's JSON values."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from careloop.core.errors import InputError
from careloop.core.limits import loads_json


async def posted(request: Request) -> dict[str, list[str]]:
    """A posted form's text fields, each with all the values sent for it."""
    form = await request.form()
    data: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            data.setdefault(key, []).append(value)
    return data


async def json_body(request: Request) -> Any:
    """The request's JSON body; InputError saying what to send when it is not JSON."""
    try:
        return loads_json(await request.body(), where="request body")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError('Send {"values": {field: value}} as JSON.') from None


def json_values(body: Any) -> dict[str, object]:
    """The ``values`` object of a live check's body."""
    if not isinstance(body, dict) or not isinstance(body.get("values"), dict):
        raise InputError('Send {"values": {field: value}} as JSON.')
    return dict(body["values"])
