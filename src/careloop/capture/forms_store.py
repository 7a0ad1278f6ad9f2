"""The registry's forms: importing data dictionaries as versioned form definitions.

A form's version is its content hash (:meth:`careloop.capture.Form.content_hash`).
Importing a dictionary stores, for each form in it, a new version when the
definition changed and nothing when it did not; either way the imported
definition becomes the form's *current* version, the one new responses are
entered against. Every older version stays stored, so a response is always
read and edited against the definition it was entered on.

A form's branching logic or calculations may name a field of another form
(REDCap allows that within a record): the importer resolves such a name in
the same dictionary first, else among the registry's other current forms,
and records the form it belongs to (:attr:`Form.other_form_fields`).

A stored version that cannot be rebuilt raises :class:`StoredFormUnreadable`
for that form alone; listing marks it and every other form keeps working.

Who may do what: form definitions hold no patient data. Every signed-in user
may list and read them (the policy's ``site.read``); importing one changes
the installation, which is the admin's (``form.manage``) and the operator's.
Imports are audited (category ``form_definition``); reads are not.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from threading import Lock
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from careloop.capture.dictionary_files import DictionaryFormat, detect_format, write_dictionary
from careloop.capture.dictionary_files import read_dictionary as read_any
from careloop.capture.forms import Dictionary, Form, OtherFormField
from careloop.capture.native_yaml import FORMAT, read_forms_yaml
from careloop.capture.text_files import read_dictionary_source
from careloop.core.errors import InputError, NotFound, StoredFormUnreadable
from careloop.store.database import Registry
from careloop.store.models.capture import FormDefinition, FormVersion, Response
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work

__all__ = [
    "DictionaryFormat",
    "FormImport",
    "FormSummary",
    "FormVersionInfo",
    "StoredForm",
    "StoredFormUnreadable",
    "export_form",
    "form_of_version",
    "get_form",
    "import_forms",
    "list_forms",
    "load_form_by_url",
    "other_form_values",
    "read_dictionary",
]

DICTIONARY_FORMATS: tuple[DictionaryFormat, ...] = ("redcap", "yaml", "questionnaire")

# Definitions are content-addressed: the same version hash always rebuilds the
# same Form, so a small process-wide cache is safe and saves re-parsing per request.
_FORMS: OrderedDict[str, Form] = OrderedDict()
_FORMS_LOCK = Lock()
_FORMS_MAX = 256


@dataclass(frozen=True)
class FormImport:
    """What importing one form of a dictionary did."""

    name: str
    """The form's name."""
    version: str
    """Its content hash (the version now current)."""
    new_form: bool
    """The registry did not know the form before."""
    new_version: bool
    """The definition differed from every stored version, so a version was added."""
    notes: tuple[str, ...] = ()
    """What the reader did that the importer should know (``location: note``):
    columns ignored, a REDCap field type kept in a simpler form, an encoding
    guessed. Notes about the file as a whole come with its first form."""


@dataclass(frozen=True)
class FormVersionInfo:
    """One stored version of a form."""

    version: str
    """Content hash (64 hex digits)."""
    created_at: datetime
    """When it was first imported."""
    created_by: str | None
    """Who imported it (e-mail, or ``cli:<name>`` for the operator)."""
    source_format: str
    """The file format it came in: ``redcap``, ``yaml`` or ``questionnaire``."""
    fields: int
    """How many fields it has."""


@dataclass(frozen=True)
class FormSummary:
    """A form as listed: name, title, whether patient-reported, current version."""

    name: str
    """The form's name."""
    title: str
    """Human title."""
    patient_reported: bool
    """Filled by patients or carers (a PROM)."""
    version: str
    """The current version's content hash."""
    versions: int
    """How many versions are stored."""
    problem: str = ""
    """Why the current version cannot be loaded (empty when it can); see
    :class:`~careloop.core.errors.StoredFormUnreadable`."""


@dataclass(frozen=True)
class StoredForm:
    """A form with its current (or requested) definition and its version history."""

    name: str
    """The form's name."""
    title: str
    """Human title."""
    patient_reported: bool
    """Filled by patients or carers (a PROM)."""
    version: str
    """The version of :attr:`form`."""
    current: bool
    """Whether :attr:`version` is the current version."""
    form: Form
    """The definition."""
    versions: tuple[FormVersionInfo, ...]
    """Every stored version, oldest first."""

    def definition(self) -> dict[str, Any]:
        """The definition as careloop's native dict (what the JSON API returns)."""
        return self.form.to_dict()


def read_dictionary(
    source: Path | bytes,
    *,
    fmt: DictionaryFormat | None = None,
    name: str | None = None,
    other_fields: Mapping[str, OtherFormField] | None = None,
) -> tuple[Dictionary, DictionaryFormat]:
    """Read a data dictionary file (any of the three formats) and say which format it was.

    The format is ``fmt``, else the file name's suffix, else the content
    (careloop.capture.dictionary_files decides, as for every other door).

    Raises:
        InputError: ``fmt`` is not a dictionary format.
        ValidationFailed: The file is not a valid dictionary (the readers'
            located errors), or not UTF-8.
    """
    if fmt is not None and fmt not in DICTIONARY_FORMATS:
        raise InputError(f"Unknown dictionary format {fmt!r}; use redcap, yaml or questionnaire.")
    label, text, decoded = read_dictionary_source(source, name=name, default="dictionary")
    chosen = fmt or detect_format(text, name=label)
    read = read_any(text, format=chosen, name=label, other_fields=other_fields)
    return (replace(read, notes=(*decoded, *read.notes)) if decoded else read), chosen


def form_of_version(row: FormVersion) -> Form:
    """The :class:`Form` a stored version defines (cached by content hash).

    References to fields outside the form are taken as other forms' fields:
    they were checked when the dictionary was imported, and a version stored
    before careloop recorded which form they belong to must still load.

    Raises:
        StoredFormUnreadable: The stored definition cannot be rebuilt (e.g. it
            was stored under rules that have since changed). Only this form is
            affected; the message names it and says how to recover.
    """
    with _FORMS_LOCK:
        cached = _FORMS.get(row.version)
        if cached is not None:
            _FORMS.move_to_end(row.version)
            return cached
    # JSON is YAML: the native reader rebuilds (and re-checks) the definition.
    definition = row.definition if isinstance(row.definition, dict) else {}
    label = f"form {definition.get('name', '?')!r} version {row.version[:12]}"
    try:
        text = json.dumps({"format": FORMAT, "forms": [row.definition]})
        form = read_forms_yaml(text, name=label, stored=True).forms[0]
    except (InputError, TypeError, ValueError, IndexError) as exc:
        details = exc.details if isinstance(exc, InputError) else []
        raise StoredFormUnreadable(
            f"The stored {label} cannot be loaded: "
            + (exc.message if isinstance(exc, InputError) else str(exc))
            + " Other forms are not affected. Import the form's data dictionary again to "
            "make a readable version current; responses stay with the version they were "
            "entered on.",
            details=list(details),
        ) from exc
    with _FORMS_LOCK:
        _FORMS[row.version] = form
        while len(_FORMS) > _FORMS_MAX:
            _FORMS.popitem(last=False)
    return form


def other_form_values(
    session: Session, form: Form, *, patient_id: int, event_date: date
) -> dict[str, object]:
    """The answers this form's logic reads from other forms, for ``context=`` of validation.

    REDCap evaluates such a reference within the record and event; careloop's
    counterpart is the same patient's response to that form on the same event
    date. A field of a form with such a response is given (``''`` when that
    response left it empty); a field of a form without one is left out, so
    validation knows the answer is not available (see
    :func:`careloop.capture.validation.validate_response`).

    The caller's unit of work must already allow the principal to read and
    write this patient's records: the values only steer branching and
    calculations and are not returned to the person entering data.
    """
    wanted: dict[str, list[str]] = {}
    for field_name, form_name in form.other_form_fields:
        wanted.setdefault(form_name, []).append(field_name)
    if not wanted:
        return {}
    rows = session.execute(
        select(FormDefinition.name, Response.values)
        .join(Response, Response.form_id == FormDefinition.id)
        .where(
            FormDefinition.name.in_(sorted(wanted)),
            Response.patient_id == patient_id,
            Response.event_date == event_date,
        )
    )
    out: dict[str, object] = {}
    for form_name, values in rows:
        for field_name in wanted[form_name]:
            out[field_name] = values.get(field_name, "")
    return out


def _definition_row(session: Session, name: str) -> FormDefinition:
    row = session.scalar(select(FormDefinition).where(FormDefinition.name == name))
    if row is None:
        known = ", ".join(
            session.scalars(select(FormDefinition.name).order_by(FormDefinition.name))
        )
        raise NotFound(
            f"There is no form {name!r}"
            + (f"; the registry has {known}." if known else "; import a data dictionary first.")
        )
    return row


def _version_row(session: Session, definition: FormDefinition, version: str | None) -> FormVersion:
    if version is None:
        row = (
            session.get(FormVersion, definition.current_version_id)
            if definition.current_version_id
            else None
        )
    else:
        matches = list(
            session.scalars(
                select(FormVersion).where(
                    FormVersion.form_id == definition.id,
                    FormVersion.version.startswith(version, autoescape=True),
                )
            )
        )
        row = matches[0] if len(matches) == 1 else None
    if row is None:
        raise NotFound(f"Form {definition.name!r} has no version {version!r}.")
    return row


def load_form(
    session: Session, name: str, version: str | None = None
) -> tuple[FormDefinition, FormVersion, Form]:
    """The form's row, the requested (default: current) version's row and its Form."""
    definition = _definition_row(session, name)
    row = _version_row(session, definition, version)
    return definition, row, form_of_version(row)


def load_form_by_url(
    session: Session, url: str, version: str | None = None
) -> tuple[FormDefinition, FormVersion, Form] | None:
    """The form registered from the FHIR Questionnaire with canonical ``url``, or None.

    With ``version`` (the Questionnaire's own version, as in ``url|version``)
    the stored form version registered from that Questionnaire version;
    without, the form's current version when it came from ``url``, else the
    latest one that did. When several forms came from the same URL, the one
    imported last wins.
    """
    source = FormVersion.definition["questionnaire"]
    query = select(FormVersion).where(source["url"].as_string() == url)
    if version is not None:
        query = query.where(source["version"].as_string() == version)
    rows = list(session.scalars(query.order_by(FormVersion.id.desc())))
    if not rows:
        return None
    definitions = {
        d.id: d
        for d in session.scalars(
            select(FormDefinition).where(FormDefinition.id.in_({r.form_id for r in rows}))
        )
    }
    chosen = next((r for r in rows if definitions[r.form_id].current_version_id == r.id), rows[0])
    return definitions[chosen.form_id], chosen, form_of_version(chosen)


def load_form_version(session: Session, version_id: int) -> tuple[FormVersion, Form]:
    """A stored version by id (what a response points at) and its Form."""
    row = session.get(FormVersion, version_id)
    if row is None:  # pragma: no cover - responses keep a foreign key to it
        raise NotFound(f"There is no form version {version_id}.")
    return row, form_of_version(row)


def import_forms(
    registry: Registry,
    principal: Principal,
    source: Path | bytes,
    *,
    fmt: DictionaryFormat | None = None,
    name: str | None = None,
) -> list[FormImport]:
    """Import a data dictionary: each form gets a new version only if its definition changed.

    Args:
        registry: The registry.
        principal: Who imports (admin or operator).
        source: The dictionary file (a path, or its bytes).
        fmt: ``redcap``, ``yaml`` or ``questionnaire``; guessed from the
            file name when omitted.
        name: How to call the file in error messages (default: the path's name).

    Returns:
        One :class:`FormImport` per form, in file order.

    Raises:
        ValidationFailed: The dictionary is not valid; nothing is stored.
        PermissionDenied: The principal may not change the installation's forms.
    """
    label = name or (source.name if isinstance(source, Path) else "dictionary")
    results: list[FormImport] = []
    # The permission check comes first: an upload is parsed only for those who may import.
    with unit_of_work(registry, principal, "form.manage") as work:
        work.expect("import", "form_definition", details={"source": label})
        session = work.session
        dictionary, chosen = read_dictionary(
            source, fmt=fmt, name=name, other_fields=_RegistryFields(session)
        )
        notes = _notes_by_form(dictionary)
        for form in dictionary.forms:
            digest = form.content_hash()
            definition, new_form = _found_or_added_definition(session, form)
            version, new_version = _found_or_added_version(
                session, definition, form, digest, chosen, principal
            )
            changed = definition.current_version_id != version.id
            definition.current_version_id = version.id
            definition.title = form.title
            definition.patient_reported = form.patient_reported
            if new_version or changed:
                work.audit(
                    "create" if new_form else "update",
                    "form_definition",
                    details={
                        "form": form.name,
                        "version": digest,
                        "new_version": new_version,
                        "source": label,
                        "format": chosen,
                    },
                )
            results.append(
                FormImport(form.name, digest, new_form, new_version, notes.get(form.name, ()))
            )
    return results


def _found_or_added_definition(session: Session, form: Form) -> tuple[FormDefinition, bool]:
    """Return the form's definition row, adding it if the form is new (and whether it was)."""
    definition = session.scalar(select(FormDefinition).where(FormDefinition.name == form.name))
    if definition is not None:
        return definition, False
    definition = FormDefinition(
        name=form.name, title=form.title, patient_reported=form.patient_reported
    )
    session.add(definition)
    session.flush()
    return definition, True


def _found_or_added_version(
    session: Session,
    definition: FormDefinition,
    form: Form,
    digest: str,
    source_format: str,
    principal: Principal,
) -> tuple[FormVersion, bool]:
    """Return the version with this content hash, adding it if new (and whether it was)."""
    version = session.scalar(
        select(FormVersion).where(
            FormVersion.form_id == definition.id, FormVersion.version == digest
        )
    )
    if version is not None:
        return version, False
    version = FormVersion(
        form_id=definition.id,
        version=digest,
        definition=form.to_dict(),
        source_format=source_format,
        created_by=principal.email,
    )
    session.add(version)
    session.flush()
    return version, True


class _RegistryFields(Mapping[str, OtherFormField]):
    """The fields of the registry's current forms, by name, read when first asked.

    A dictionary's own forms are looked up first by the readers, so a form
    being re-imported never resolves a reference to its own older version.
    A current version that cannot be loaded contributes no fields.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._fields: dict[str, OtherFormField] | None = None

    def _load(self) -> dict[str, OtherFormField]:
        if self._fields is None:
            fields: dict[str, OtherFormField] = {}
            rows = self._session.execute(
                select(FormDefinition.name, FormVersion)
                .join(FormVersion, FormVersion.id == FormDefinition.current_version_id)
                .order_by(FormDefinition.name)
            )
            for form_name, version in rows:
                try:
                    form = form_of_version(version)
                except StoredFormUnreadable:
                    continue
                for f in form.fields:
                    seen = fields.get(f.name)
                    if seen is None:
                        fields[f.name] = OtherFormField(form_name, f)
                    else:
                        fields[f.name] = replace(seen, also_in=(*seen.also_in, form_name))
            self._fields = fields
        return self._fields

    def __getitem__(self, key: str) -> OtherFormField:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def _notes_by_form(dictionary: Dictionary) -> dict[str, tuple[str, ...]]:
    """Each note of the reader, with the form whose field it names (else the first form)."""
    home = {f.name: form.name for form in dictionary.forms for f in form.fields}
    out: dict[str, list[str]] = {}
    for note in dictionary.notes:
        form = home.get(note.location.rsplit(":", 1)[-1], dictionary.forms[0].name)
        out.setdefault(form, []).append(f"{note.location}: {note.message}")
    return {k: tuple(v) for k, v in out.items()}


def list_forms(registry: Registry, principal: Principal) -> list[FormSummary]:
    """The registry's forms with their current versions."""
    with unit_of_work(registry, principal, "site.read") as work:
        session = work.session
        out = []
        for definition in session.scalars(select(FormDefinition).order_by(FormDefinition.name)):
            count = len(
                list(
                    session.scalars(
                        select(FormVersion.id).where(FormVersion.form_id == definition.id)
                    )
                )
            )
            current = _version_row(session, definition, None)
            problem = ""
            try:
                form_of_version(current)
            except StoredFormUnreadable as exc:
                problem = exc.message
            out.append(
                FormSummary(
                    definition.name,
                    definition.title,
                    definition.patient_reported,
                    current.version,
                    count,
                    problem,
                )
            )
        return out


def get_form(
    registry: Registry, principal: Principal, name: str, *, version: str | None = None
) -> StoredForm:
    """A form's definition (current, or the version named by a hash or its prefix)."""
    with unit_of_work(registry, principal, "site.read") as work:
        definition, row, form = load_form(work.session, name, version)
        history = tuple(
            FormVersionInfo(
                v.version,
                v.created_at,
                v.created_by,
                v.source_format,
                len(v.definition.get("fields", [])),
            )
            for v in work.session.scalars(
                select(FormVersion)
                .where(FormVersion.form_id == definition.id)
                .order_by(FormVersion.id)
            )
        )
        return StoredForm(
            definition.name,
            definition.title,
            definition.patient_reported,
            row.version,
            row.id == definition.current_version_id,
            form,
            history,
        )


def export_form(
    registry: Registry,
    principal: Principal,
    name: str,
    *,
    fmt: DictionaryFormat,
    version: str | None = None,
) -> str:
    """A form as a REDCap dictionary CSV, careloop YAML or FHIR Questionnaire JSON."""
    if fmt not in DICTIONARY_FORMATS:
        raise InputError(f"Unknown dictionary format {fmt!r}; use redcap, yaml or questionnaire.")
    stored = get_form(registry, principal, name, version=version)
    return write_dictionary(stored.form, format=fmt)
