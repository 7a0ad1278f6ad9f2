"""Form responses as FHIR R4 QuestionnaireResponses, out and back in.

:func:`response_to_fhir` is the one builder of careloop's
QuestionnaireResponse (``careloop records export --format fhir``,
``careloop fhir export`` and ``GET /fhir/QuestionnaireResponse`` all use it):

- ``questionnaire`` is ``urn:careloop:form:<name>|<version hash>``;
- ``subject`` is ``Patient/<pseudonym>`` with the patient's local id as
  identifier (system ``urn:careloop:site:<site>:local-id``);
- ``authored`` is the last change of the response; the event (visit) date is
  the extension :data:`EVENT_DATE_EXTENSION` (``valueDate``);
- ``status`` is ``completed`` (complete) or ``in-progress`` (draft);
  ``source`` is the patient when they entered it themselves;
- one item per answered field, ``linkId`` = the field's name, inside a group
  ``<field>__section`` per section header; answers are typed as the
  Questionnaire's items: ``valueCoding`` (choices; one per checked box),
  ``valueBoolean`` (yes/no, true/false), ``valueInteger``, ``valueDecimal``,
  ``valueDate``, ``valueTime``, ``valueString`` (text, notes, datetimes).

:func:`response_from_fhir` reads such a resource back into the values a
response stores, validated by the form like any entry. Every problem is
reported at once, located by FHIR path
(``QuestionnaireResponse.item[3].answer[0]``), with what was expected.

A QuestionnaireResponse of another system names its Questionnaire by that
Questionnaire's canonical URL (``http://hl7.org/fhir/us/core/Questionnaire/
phq-9-example``, optionally ``|version``): :func:`load_response_form` finds
the form registered from it (``careloop forms import`` of the Questionnaire
keeps the URL with the form), and its items are read by their linkIds, the
ones renamed to be field names mapped back (:attr:`Form.link_ids`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlalchemy.orm import Session

from careloop.capture.entry import ResponseStatus, check_values
from careloop.capture.forms import Field, FieldType, Form
from careloop.capture.forms_store import load_form, load_form_by_url
from careloop.capture.questionnaire import EXTENSION, fhir_item_type, fhir_typed_value
from careloop.core.clock import as_utc
from careloop.core.errors import ErrorDetail, NotFound, ValidationFailed
from careloop.store.models.capture import FormDefinition, FormVersion

__all__ = [
    "EVENT_DATE_EXTENSION",
    "EVENT_NAME_EXTENSION",
    "FORM_URL",
    "REPEAT_INSTANCE_EXTENSION",
    "FormReference",
    "ResponseFromFhir",
    "ResponseSubject",
    "StoredResponse",
    "form_reference",
    "load_response_form",
    "response_from_fhir",
    "response_to_fhir",
]

FORM_URL = "urn:careloop:form:"
"""Prefix of a form's canonical URL; ``|<version hash>`` may follow the name."""

EVENT_DATE_EXTENSION = EXTENSION + "event-date"
"""Extension (``valueDate``) on a QuestionnaireResponse holding the response's event date."""
EVENT_NAME_EXTENSION = EXTENSION + "redcap-event"
"""Extension (``valueString``): the REDCap event a response belongs to (longitudinal projects)."""
REPEAT_INSTANCE_EXTENSION = EXTENSION + "repeat-instance"
"""Extension (``valuePositiveInt``): the instance of a repeating form on one date."""

_STATUS_TO_FHIR = {"complete": "completed", "draft": "in-progress"}
_STATUS_FROM_FHIR: dict[str, ResponseStatus] = {
    "completed": "complete",
    "amended": "complete",
    "in-progress": "draft",
}
_NUMBER_DP = re.compile(r"^number_([1-9])dp$")


class StoredResponse(Protocol):
    """What :func:`response_to_fhir` reads of a response (a stored row or a ``ResponseView``)."""

    @property
    def id(self) -> int: ...
    @property
    def event_date(self) -> date: ...
    @property
    def status(self) -> str: ...
    @property
    def values(self) -> Mapping[str, Any]: ...
    @property
    def patient_entered(self) -> bool: ...
    @property
    def updated_at(self) -> datetime: ...


@dataclass(frozen=True)
class ResponseSubject:
    """The patient a response belongs to, as the QuestionnaireResponse names them."""

    pseudo_id: str
    """The patient's pseudonym (``subject.reference`` is ``Patient/<pseudonym>``)."""
    site: str
    """The patient's site code (the identifier's system names it)."""
    local_id: str
    """The patient's local id at the site (``subject.identifier.value``)."""


# ---------------------------------------------------------------------------------- export


def _answers(f: Field, value: Any) -> list[dict[str, Any]]:
    if f.type is FieldType.CHECKBOX:
        labels = {c.code: c.label for c in f.choices}
        codes = value if isinstance(value, list | tuple) else [value]
        return [{"valueCoding": {"code": c, "display": labels.get(c, c)}} for c in codes]
    if f.choices:
        labels = {c.code: c.label for c in f.choices}
        return [{"valueCoding": {"code": value, "display": labels.get(value, value)}}]
    if f.type in (FieldType.YESNO, FieldType.TRUEFALSE):
        return [{"valueBoolean": value == "1"}]
    typed = fhir_typed_value(str(value), fhir_item_type(f), "value")
    return [typed if typed is not None else {"valueString": str(value)}]


def response_to_fhir(
    response: StoredResponse, *, form: Form, form_version: str, subject: ResponseSubject
) -> QuestionnaireResponse:
    """A response as an R4 QuestionnaireResponse, validated by fhir.resources.

    Args:
        response: The stored response (or a ``ResponseView`` of it).
        form: The form version the response was entered against.
        form_version: That version's content hash (goes into ``questionnaire``).
        subject: The patient, as the resource names them.

    Returns:
        The resource; ``model_dump_json(exclude_none=True)`` gives its JSON.
    """
    values = response.values
    items: list[dict[str, Any]] = []
    group: dict[str, Any] | None = None
    for f in form.fields:
        if f.section_header:
            group = {"linkId": f"{f.name}__section", "text": f.section_header, "item": []}
            items.append(group)
        value = values.get(f.name)
        if value in (None, "", []) or not f.stores_value:
            continue
        answer: dict[str, Any] = {"linkId": f.name, "answer": _answers(f, value)}
        if f.label:
            answer["text"] = f.label
        (group["item"] if group is not None else items).append(answer)
    items = [i for i in items if i.get("answer") or i.get("item")]
    reference = {
        "reference": f"Patient/{subject.pseudo_id}",
        "identifier": {
            "system": f"urn:careloop:site:{subject.site}:local-id",
            "value": subject.local_id,
        },
    }
    extensions: list[dict[str, Any]] = [
        {"url": EVENT_DATE_EXTENSION, "valueDate": response.event_date.isoformat()}
    ]
    # The rest of the response's key, so that two REDCap events or repeat instances on
    # one date come back as two responses.
    event_name = getattr(response, "event_name", "") or ""
    instance = int(getattr(response, "repeat_instance", 1) or 1)
    if event_name:
        extensions.append({"url": EVENT_NAME_EXTENSION, "valueString": event_name})
    if instance != 1:
        extensions.append({"url": REPEAT_INSTANCE_EXTENSION, "valuePositiveInt": instance})
    data: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": f"response-{response.id}",
        "extension": extensions,
        "questionnaire": f"{FORM_URL}{form.name}|{form_version}",
        "status": _STATUS_TO_FHIR.get(response.status, "in-progress"),
        "subject": reference,
        "authored": as_utc(response.updated_at).isoformat(),
        "item": items,
    }
    if response.patient_entered:
        data["source"] = {"reference": f"Patient/{subject.pseudo_id}"}
    return QuestionnaireResponse.model_validate(data)


# ---------------------------------------------------------------------------------- import


@dataclass(frozen=True)
class FormReference:
    """The form a QuestionnaireResponse answers, from its ``questionnaire``."""

    name: str
    """The form's name."""
    version: str | None
    """The version hash (or a prefix of it) after ``|``; None: the current version."""


def form_reference(canonical: str) -> FormReference | None:
    """The form a ``questionnaire`` canonical names by name, or None when it names none.

    ``urn:careloop:form:<name>[|<version>]`` is careloop's own; any other URL
    is read by its last path part as the form's Questionnaire id (the name
    with ``-`` for ``_``), e.g. ``https://example.org/Questionnaire/ibd-visit``
    — the fallback :func:`load_response_form` uses when no form was
    registered from that URL.
    """
    url, _, version = canonical.strip().partition("|")
    if url.startswith(FORM_URL):
        name = url[len(FORM_URL) :]
    else:
        name = url.rstrip("/").rsplit("/", 1)[-1].replace("-", "_")
    if not name:
        return None
    return FormReference(name, version.strip() or None)


@dataclass(frozen=True)
class ResponseFromFhir:
    """A QuestionnaireResponse read back as a form response (validated by the form)."""

    form: str
    """The form's name."""
    form_version: str
    """The content hash of the form version the values were validated against."""
    event_date: date
    """The event (visit) date: the event-date extension, else the date of ``authored``."""
    status: ResponseStatus
    """``complete`` (``completed``/``amended``) or ``draft`` (``in-progress``)."""
    values: dict[str, Any]
    """The stored values (text; a checkbox a list of codes), calculated fields computed."""
    patient_entered: bool
    """``source`` is the subject patient: they entered it themselves."""
    resource_id: str | None
    """The resource's own id, when it has one."""
    event_name: str = ""
    """The REDCap event (:data:`EVENT_NAME_EXTENSION`), ``""`` when none."""
    repeat_instance: int = 1
    """The repeat instance (:data:`REPEAT_INSTANCE_EXTENSION`), 1 when none."""


def _where(location: str, path: str) -> str:
    return f"{location}: {path}" if location else path


def load_response_form(
    session: Session, resource: Mapping[str, Any], *, location: str = ""
) -> tuple[FormDefinition, FormVersion, Form]:
    """The registered form (and version) a QuestionnaireResponse answers.

    ``questionnaire`` is read in this order: careloop's own
    ``urn:careloop:form:<name>[|<version hash>]``; the canonical URL (and
    ``|version``) of the Questionnaire a form was registered from; the URL's
    last path part as a form's Questionnaire id (forms registered from a data
    dictionary, e.g. ``…/Questionnaire/ibd-visit`` → ``ibd_visit``).

    Raises:
        ValidationFailed: ``questionnaire`` is missing or names no registered
            form or version; located at ``QuestionnaireResponse.questionnaire``.
    """
    where = _where(location, "QuestionnaireResponse.questionnaire")
    canonical = resource.get("questionnaire")
    if isinstance(canonical, str) and not canonical.strip().startswith(FORM_URL):
        url, _, version = canonical.strip().partition("|")
        found = load_form_by_url(session, url, version.strip() or None)
        if found is not None:
            return found
        if version.strip() and load_form_by_url(session, url) is not None:
            raise ValidationFailed(
                "The QuestionnaireResponse answers a Questionnaire version careloop does not have.",
                details=[
                    ErrorDetail(
                        where,
                        f"no form was registered from version {version.strip()!r} of {url}; "
                        "Fix: register that version (careloop forms import of the Questionnaire), "
                        "or leave out '|<version>' to use the current one.",
                        canonical,
                    )
                ],
            )
    reference = form_reference(canonical) if isinstance(canonical, str) else None
    if reference is None:
        raise ValidationFailed(
            "The QuestionnaireResponse names no form.",
            details=[
                ErrorDetail(
                    where,
                    "name the Questionnaire answered: its canonical URL (of a Questionnaire "
                    f"registered with careloop forms import) or {FORM_URL}<form name>"
                    "[|<version hash>]",
                    canonical,
                )
            ],
        )
    try:
        return load_form(session, reference.name, reference.version)
    except NotFound as exc:
        fix = (
            "register that form version (careloop forms import), or leave out '|<version>' "
            "to use the current one"
            if reference.version and "no version" in exc.message
            else "register the form first (careloop forms import FILE)"
        )
        if isinstance(canonical, str) and not canonical.strip().startswith(FORM_URL):
            fix = (
                "register the form from that Questionnaire first (careloop forms import "
                "<the Questionnaire's JSON file>)"
            )
        raise ValidationFailed(
            "The QuestionnaireResponse answers a form careloop does not have.",
            details=[ErrorDetail(where, f"{exc.message} Fix: {fix}.", canonical)],
        ) from None


def _walk(items: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(FHIR path, item) of every item, groups' children included."""
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        if isinstance(item, dict):
            here = f"{path}.item[{index}]"
            yield here, item
            yield from _walk(item.get("item"), here)


def _expected(f: Field) -> tuple[str, ...]:
    """The answer value[x] keys a field takes."""
    if f.choices:
        return ("valueCoding",)
    if f.type in (FieldType.YESNO, FieldType.TRUEFALSE):
        return ("valueBoolean",)
    kind = fhir_item_type(f)
    return {
        "integer": ("valueInteger",),
        "decimal": ("valueDecimal", "valueInteger"),
        "date": ("valueDate",),
        "dateTime": ("valueString", "valueDateTime"),
        "time": ("valueTime",),
    }.get(kind, ("valueString",))


def _number_text(value: Any, f: Field) -> str:
    """A JSON number as the text the field stores (its fixed decimal places kept)."""
    number = Decimal(str(value))  # str(float) is the shortest text that round-trips
    places = _NUMBER_DP.match(f.validation or "")
    if places is not None:
        wanted = int(places.group(1))
        exponent = number.normalize().as_tuple().exponent
        # More places than the field keeps stay as sent, so validation refuses them
        # instead of this rounding them silently.
        if isinstance(exponent, int) and -exponent <= wanted:
            return f"{number:.{wanted}f}"
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def _answer_text(f: Field, key: str, value: Any) -> str:
    if key == "valueCoding":
        return str(value.get("code") or "") if isinstance(value, dict) else ""
    if key == "valueBoolean":
        return "1" if value is True else "0"
    if key == "valueDecimal" or (key == "valueInteger" and fhir_item_type(f) == "decimal"):
        return _number_text(value, f)
    if key == "valueInteger":
        return str(value)
    if key == "valueTime":
        text = str(value)
        return text[:5] if text.endswith(":00") and len(text) == 8 else text
    if key == "valueDateTime":
        # A datetime field holds a wall-clock time: kept as written, the offset dropped.
        text = str(value)
        day, _, clock = text.partition("T")
        seconds = (f.validation or "").startswith("datetime_seconds")
        return f"{day} {clock[: 8 if seconds else 5]}" if clock else day
    return str(value)


def _event_key(
    resource: Mapping[str, Any], location: str, problems: list[ErrorDetail]
) -> tuple[str, int]:
    """The REDCap event and repeat instance the extensions give (``""`` and 1 without)."""
    event, instance = "", 1
    for index, extension in enumerate(resource.get("extension") or []):
        if not isinstance(extension, dict):
            continue
        where = _where(location, f"QuestionnaireResponse.extension[{index}]")
        if extension.get("url") == EVENT_NAME_EXTENSION:
            value = extension.get("valueString")
            if not isinstance(value, str) or not value.strip() or len(value) > 100:
                problems.append(
                    ErrorDetail(
                        where, "the event extension needs valueString, the event's name", value
                    )
                )
            else:
                event = value.strip()
        elif extension.get("url") == REPEAT_INSTANCE_EXTENSION:
            value = extension.get("valuePositiveInt")
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(
                    ErrorDetail(
                        where,
                        "the repeat-instance extension needs valuePositiveInt (1, 2, …)",
                        value,
                    )
                )
            else:
                instance = value
    return event, instance


def _event_date(
    resource: Mapping[str, Any], location: str, problems: list[ErrorDetail]
) -> date | None:
    for index, extension in enumerate(resource.get("extension") or []):
        if isinstance(extension, dict) and extension.get("url") == EVENT_DATE_EXTENSION:
            text = extension.get("valueDate")
            try:
                return date.fromisoformat(str(text))
            except ValueError:
                problems.append(
                    ErrorDetail(
                        _where(location, f"QuestionnaireResponse.extension[{index}]"),
                        "the event-date extension needs valueDate as a full date, YYYY-MM-DD",
                        text,
                    )
                )
                return None
    authored = resource.get("authored")
    if isinstance(authored, str):
        try:
            return date.fromisoformat(authored[:10])
        except ValueError:
            pass
    problems.append(
        ErrorDetail(
            _where(location, "QuestionnaireResponse.authored"),
            f"needs the event (visit) date: add the extension {EVENT_DATE_EXTENSION} "
            "with valueDate, or authored with a full date",
            authored,
        )
    )
    return None


def response_from_fhir(
    resource: Mapping[str, Any], form: Form, *, location: str = ""
) -> ResponseFromFhir:
    """Read a QuestionnaireResponse (as JSON data) as a response to ``form``.

    Long because it reads the resource's elements one after another, each with its own
    check, so that every problem in the resource is reported at once.

    Items are matched to fields by ``linkId`` at any depth (groups are
    containers); answers must have the type the field's Questionnaire item
    has (see the module docs); the values are then validated by the form as
    at entry (a draft may leave required fields empty). Calculated fields are
    computed, whatever the resource says.

    Args:
        resource: The QuestionnaireResponse as parsed JSON (already valid FHIR).
        form: The form (version) it answers, e.g. from :func:`load_response_form`.
        location: Where the resource is (``file:line``), put before each FHIR path.

    Raises:
        ValidationFailed: Every problem, each located at its FHIR path
            (``QuestionnaireResponse.item[3].answer[0]``) with what was expected.
    """
    problems: list[ErrorDetail] = []
    status_text = resource.get("status")
    status = _STATUS_FROM_FHIR.get(str(status_text))
    if status is None:
        problems.append(
            ErrorDetail(
                _where(location, "QuestionnaireResponse.status"),
                "careloop keeps complete and draft responses: use completed (or amended) "
                "or in-progress",
                status_text,
            )
        )
    day = _event_date(resource, location, problems)
    event_name, repeat_instance = _event_key(resource, location, problems)
    values: dict[str, Any] = {}
    places: dict[str, str] = {}
    for path, item in _walk(resource.get("item"), "QuestionnaireResponse"):
        given_link = str(item.get("linkId"))
        # The field the linkId names: renamed linkIds (``/44250-9``) mapped back.
        link_id = form.field_name_of(given_link)
        answers = item.get("answer") or []
        if not answers:
            continue  # a group, or a question left unanswered
        try:
            f = form.field(link_id)
        except KeyError:
            problems.append(
                ErrorDetail(
                    _where(location, f"{path}.linkId"),
                    f"form {form.name!r} has no field {given_link!r}; use the linkIds of the "
                    "form's Questionnaire (or its field names)",
                    given_link,
                )
            )
            continue
        if link_id in places:
            problems.append(
                ErrorDetail(
                    _where(location, f"{path}.linkId"),
                    f"field {link_id!r} is answered twice (also at {places[link_id]}); "
                    "give one item per field",
                    link_id,
                )
            )
            continue
        places[link_id] = path
        if not f.stores_value:
            problems.append(
                ErrorDetail(
                    _where(location, f"{path}.answer[0]"),
                    f"field {link_id!r} is descriptive text and holds no answer; remove it",
                )
            )
            continue
        if len(answers) > 1 and f.type is not FieldType.CHECKBOX:
            problems.append(
                ErrorDetail(
                    _where(location, f"{path}.answer[1]"),
                    f"field {link_id!r} takes one answer (only checkboxes take several)",
                )
            )
            continue
        expected = _expected(f)
        texts: list[str] = []
        for index, answer in enumerate(answers):
            where = _where(location, f"{path}.answer[{index}]")
            given = [k for k in answer if k.startswith("value")] if isinstance(answer, dict) else []
            key = given[0] if given else None
            if f.type is FieldType.CALC:
                break  # calculated here: what the resource says is not used
            if key not in expected:
                problems.append(
                    ErrorDetail(
                        where,
                        f"field {link_id!r} ({f.type.value}"
                        f"{', ' + f.validation if f.validation else ''}) takes "
                        f"{' or '.join(expected)}, not {key or 'no value'}",
                        None if key is None else _echo(answer[key]),
                    )
                )
                continue
            if answer.get("item"):
                problems.append(
                    ErrorDetail(
                        f"{where}.item", "items nested in an answer are not read; move them up"
                    )
                )
                continue
            try:
                texts.append(_answer_text(f, key, answer[key]))
            except (InvalidOperation, ValueError):
                problems.append(ErrorDetail(where, "not a number", _echo(answer[key])))
        if f.type is FieldType.CALC or len(texts) != len(answers):
            continue
        values[link_id] = texts if f.type is FieldType.CHECKBOX else texts[0]
    if problems or status is None or day is None:
        raise _invalid(problems, form)
    try:
        clean = check_values(form, values, status=status)
    except ValidationFailed as exc:
        raise _invalid([_locate(d, places, values, location) for d in exc.details], form) from None
    source = (resource.get("source") or {}).get("reference")
    subject = (resource.get("subject") or {}).get("reference")
    raw_id = resource.get("id")
    return ResponseFromFhir(
        form=form.name,
        form_version=form.content_hash(),
        event_date=day,
        status=status,
        values=clean,
        patient_entered=bool(source) and source == subject,
        resource_id=str(raw_id) if raw_id else None,
        event_name=event_name,
        repeat_instance=repeat_instance,
    )


def _echo(value: Any) -> Any:
    """A scalar answer echoed back in an error; objects by their code only."""
    if isinstance(value, dict):
        return value.get("code")
    return value if isinstance(value, str | int | float | bool) else None


def _invalid(problems: list[ErrorDetail], form: Form) -> ValidationFailed:
    n = len(problems)
    return ValidationFailed(
        f"{n} problem{'s' if n != 1 else ''} in a QuestionnaireResponse to form {form.name!r}.",
        details=problems,
    )


def _locate(
    detail: ErrorDetail, places: Mapping[str, str], values: Mapping[str, Any], location: str
) -> ErrorDetail:
    """A validation error at a field name, moved to the item that answered it."""
    field_name = detail.location
    path = places.get(field_name)
    if path is None:
        # Not answered at all (e.g. required): the fix is an item with that linkId.
        return ErrorDetail(
            _where(location, "QuestionnaireResponse.item"),
            f"field {field_name!r}: {detail.message}; add an item with linkId {field_name!r}",
            detail.value,
        )
    given = values.get(field_name)
    answer = ".answer[0]" if not isinstance(given, list) or len(given) == 1 else ""
    return ErrorDetail(
        _where(location, f"{path}{answer}"),
        f"field {field_name!r}: {detail.message}",
        detail.value,
    )
