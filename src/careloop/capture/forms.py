"""The form model: what a data dictionary says, whatever file it came from.

A :class:`Dictionary` holds one or more :class:`Form` objects (REDCap calls
them instruments); a form is an ordered tuple of :class:`Field` objects. All
are frozen: a changed definition is a new object with a new
:meth:`Form.content_hash`, which the registry uses as the form's version.

The readers (:mod:`~careloop.capture.redcap`,
:mod:`~careloop.capture.native_yaml`, :mod:`~careloop.capture.questionnaire`)
build these objects and then run :func:`check_forms`, so every format gets the
same dictionary-level checks with errors located in its own terms.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal, get_args

from careloop.capture.expressions import Expression, FieldRef, parse_expression
from careloop.core.errors import ErrorDetail, InputError, ValidationFailed

__all__ = [
    "OMOP_DOMAINS",
    "VALIDATION_TYPES",
    "Choice",
    "Dictionary",
    "Field",
    "FieldType",
    "Form",
    "OmopDomain",
    "OtherFormField",
    "StandardCode",
    "check_forms",
    "checkbox_column",
    "link_other_forms",
    "number_text",
    "parse_choices",
    "parse_field_type",
    "parse_validation_type",
]


class FieldType(StrEnum):
    """REDCap's field types that careloop supports."""

    TEXT = "text"
    NOTES = "notes"
    DROPDOWN = "dropdown"
    RADIO = "radio"
    CHECKBOX = "checkbox"
    YESNO = "yesno"
    TRUEFALSE = "truefalse"
    CALC = "calc"
    DESCRIPTIVE = "descriptive"
    SLIDER = "slider"
    FILE = "file"
    """A REDCap file-upload or signature field: kept so the dictionary round-trips,
    but reference-only: careloop stores no file and no value for it."""


CHOICE_TYPES = frozenset({FieldType.DROPDOWN, FieldType.RADIO, FieldType.CHECKBOX})
"""Types whose answers come from a list of coded choices."""

VALIDATION_TYPES = frozenset(
    {
        "alpha_only",
        "autocomplete",
        "date_dmy",
        "date_mdy",
        "date_ymd",
        "datetime_dmy",
        "datetime_mdy",
        "datetime_seconds_dmy",
        "datetime_seconds_mdy",
        "datetime_seconds_ymd",
        "datetime_ymd",
        "email",
        "integer",
        "mrn_10d",
        "mrn_generic",
        "number",
        "number_comma_decimal",
        "phone",
        "phone_australia",
        "phone_uk",
        "postalcode_australia",
        "postalcode_canada",
        "postalcode_french",
        "postalcode_germany",
        "postalcode_uk",
        "signature",
        "ssn",
        "time",
        "time_hh_mm_ss",
        "time_mm_ss",
        "vmrn",
        "zipcode",
    }
)
"""REDCap's standard text validation types (its ``redcap_validation_types`` table).

``number_Ndp`` and ``number_Ndp_comma_decimal`` (e.g. ``number_2dp``) are
accepted too. ``autocomplete`` is what REDCap writes in that column for a
searchable dropdown, ``signature`` for a file field that takes a signature.
"""

VALIDATION_ALIASES = {"int": "integer", "float": "number"}
"""Names older REDCap versions wrote for the same types (its ``legacy_value``)."""

_NUMBER_DP = re.compile(r"^number_([1-9])dp(_comma_decimal)?$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Letters, digits, '_' and '.', with a leading '-' (REDCap's "-1, None") and
# inner hyphens as real dictionaries use them ("RXCUI-2393", "in-progress").
_CODE = re.compile(r"^-?[A-Za-z0-9_.]+(?:-+[A-Za-z0-9_.]+)*$")

OmopDomain = Literal["Measurement", "Observation", "Condition", "Drug", "Procedure"]
OMOP_DOMAINS: tuple[str, ...] = get_args(OmopDomain)
CodeSystem = Literal["LOINC", "SNOMED", "local"]
CODE_SYSTEMS: tuple[str, ...] = get_args(CodeSystem)
ALIGNMENTS = ("", "RV", "RH", "LV", "LH")


@dataclass(frozen=True)
class Choice:
    """One coded answer of a dropdown, radio or checkbox field."""

    code: str
    """The stored value, e.g. ``"1"``."""
    label: str
    """What the person filling the form sees."""


@dataclass(frozen=True)
class StandardCode:
    """The concept a field records, so the warehouse can map it to OMOP."""

    system: CodeSystem
    """``LOINC``, ``SNOMED`` (SNOMED CT) or ``local`` (kept as a source value)."""
    code: str
    """The code in that system, e.g. ``8302-2``."""
    display: str = ""
    """The code's preferred name, e.g. ``Body height``."""


@dataclass(frozen=True)
class Field:
    """One variable of a form, with everything REDCap's dictionary row says."""

    name: str
    """Variable name: lower-case letters, digits and ``_``, starting with a letter."""
    type: FieldType
    """What kind of input it is."""
    label: str = ""
    """The question or caption shown."""
    note: str = ""
    """Help text shown under the input (REDCap's Field Note)."""
    section_header: str = ""
    """A heading shown before this field."""
    choices: tuple[Choice, ...] = ()
    """Coded answers (dropdown, radio, checkbox)."""
    validation: str | None = None
    """Text validation type (text fields), e.g. ``integer``, ``date_ymd``, ``number_1dp``."""
    min_value: str | None = None
    """Lowest allowed value as REDCap writes it (numbers, ``YYYY-MM-DD``, ``today``, ``now``)."""
    max_value: str | None = None
    """Highest allowed value, written like :attr:`min_value`."""
    calculation: Expression | None = None
    """The formula of a calc field."""
    branching_logic: Expression | None = None
    """Show the field only if this holds."""
    required: bool = False
    """An answer is required whenever the field is shown."""
    identifier: bool = False
    """Holds identifying information (removed on de-identified export)."""
    slider_labels: tuple[str, ...] = ()
    """Left, middle and right labels of a slider."""
    slider_show_number: bool = False
    """Show the slider's number to the person filling it."""
    alignment: str = ""
    """REDCap's Custom Alignment: ``RV``, ``RH``, ``LV``, ``LH`` or empty."""
    question_number: str = ""
    """Question number shown on surveys."""
    matrix_group: str = ""
    """Name of the matrix group the field belongs to."""
    matrix_ranking: bool = False
    """Ranking within the matrix group."""
    annotation: str = ""
    """Field Annotation: free text and REDCap action tags such as ``@DEFAULT``."""
    code: StandardCode | None = None
    """The concept recorded, for mapping to the warehouse."""
    omop_domain: OmopDomain | None = None
    """The OMOP CDM table family the answer belongs in."""
    unit: str | None = None
    """UCUM unit of a measurement, e.g. ``cm`` or ``kg``."""
    ontology: str = ""
    """A REDCap BioPortal ontology (``RXNORM``, ``ICD10CM`` …) a text field looks its
    answer up in; careloop takes the answer as text and keeps the name for REDCap."""

    @property
    def stores_value(self) -> bool:
        """Whether answers to this field are stored (descriptive and file fields store none)."""
        return self.type not in (FieldType.DESCRIPTIVE, FieldType.FILE)

    @property
    def choice_codes(self) -> tuple[str, ...]:
        """The codes of :attr:`choices`, in order."""
        return tuple(c.code for c in self.choices)

    def to_dict(self, *, canonical: bool = False) -> dict[str, Any]:
        """The field as plain data in the native YAML layout (empty parts left out)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type.value}
        if self.label:
            out["label"] = self.label
        if self.section_header:
            out["section"] = self.section_header
        if self.note:
            out["note"] = self.note
        if self.choices:
            out["choices"] = {c.code: c.label for c in self.choices}
        if self.validation:
            out["validation"] = self.validation
        if self.min_value is not None:
            out["min"] = self.min_value
        if self.max_value is not None:
            out["max"] = self.max_value
        if self.type is FieldType.SLIDER and (self.slider_labels or self.slider_show_number):
            out["slider"] = {
                "labels": list(self.slider_labels),
                "show_number": self.slider_show_number,
            }
        if self.calculation is not None:
            out["calculation"] = (
                self.calculation.canonical if canonical else self.calculation.source
            )
        if self.branching_logic is not None:
            logic = self.branching_logic
            out["show_if"] = logic.canonical if canonical else logic.source
        if self.required:
            out["required"] = True
        if self.identifier:
            out["identifier"] = True
        if self.code is not None:
            code = {"system": self.code.system, "code": self.code.code}
            if self.code.display:
                code["display"] = self.code.display
            out["code"] = code
        if self.omop_domain:
            out["omop_domain"] = self.omop_domain
        if self.unit:
            out["unit"] = self.unit
        if self.ontology:
            out["ontology"] = self.ontology
        if self.alignment:
            out["alignment"] = self.alignment
        if self.question_number:
            out["question_number"] = self.question_number
        if self.matrix_group:
            out["matrix_group"] = self.matrix_group
        if self.matrix_ranking:
            out["matrix_ranking"] = True
        if self.annotation:
            out["annotation"] = self.annotation
        return out


def _default_title(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


@dataclass(frozen=True)
class Form:
    """An instrument: an ordered set of fields entered together."""

    name: str
    """REDCap's Form Name: lower-case letters, digits and ``_``."""
    fields: tuple[Field, ...]
    """The fields in the order they are shown."""
    title: str = ""
    """Human title; defaults to the name with spaces."""
    patient_reported: bool = False
    """Filled by the patient or their carer (a PROM), not by staff."""
    description: str = ""
    """What the form is for."""
    questionnaire_url: str = ""
    """The canonical URL of the FHIR Questionnaire the form was registered from, if any:
    the identity QuestionnaireResponses name it by (``questionnaire``)."""
    questionnaire_version: str = ""
    """That Questionnaire's own ``version``, if it has one."""
    link_ids: tuple[tuple[str, str], ...] = ()
    """(linkId, field name) of the Questionnaire's items whose linkId is not a valid
    field name and was renamed (``/44250-9`` → ``q__44250_9``), so answers find them."""
    other_form_fields: tuple[tuple[str, str], ...] = ()
    """(field, form) for each field of another form that this form's branching
    logic or calculations read, sorted by field (REDCap allows such references
    within a record). Filled by the readers from the dictionary or the registry."""
    _cache: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", _default_title(self.name))
        object.__setattr__(self, "other_form_fields", tuple(sorted(self.other_form_fields)))

    def field(self, name: str) -> Field:
        """The field called ``name``.

        Raises:
            KeyError: No such field on this form.
        """
        index = self._cache.get("index")
        if index is None:
            index = {f.name: f for f in self.fields}
            self._cache["index"] = index
        return index[name]  # type: ignore[no-any-return]

    def field_name_of(self, link_id: str) -> str:
        """The field a Questionnaire item's ``linkId`` names (renamed ones mapped back)."""
        return dict(self.link_ids).get(link_id, link_id)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of all fields, in order."""
        return tuple(f.name for f in self.fields)

    def to_dict(self, *, canonical: bool = False) -> dict[str, Any]:
        """The form as plain data in the native YAML layout."""
        out: dict[str, Any] = {"name": self.name, "title": self.title}
        if self.description:
            out["description"] = self.description
        out["patient_reported"] = self.patient_reported
        if self.questionnaire_url or self.link_ids:
            # Only forms registered from a Questionnaire carry it, so no other hash changes.
            source: dict[str, Any] = {}
            if self.questionnaire_url:
                source["url"] = self.questionnaire_url
            if self.questionnaire_version:
                source["version"] = self.questionnaire_version
            if self.link_ids:
                source["link_ids"] = dict(self.link_ids)
            out["questionnaire"] = source
        out["fields"] = [f.to_dict(canonical=canonical) for f in self.fields]
        if self.other_form_fields:
            out["other_form_fields"] = dict(self.other_form_fields)
        return out

    def content_hash(self) -> str:
        """SHA-256 (hex) of the normalised definition: the form's version.

        Spacing and quoting inside expressions do not change it; any change
        of meaning — a field, label, choice, rule or code — does.
        """
        cached = self._cache.get("hash")
        if cached is None:
            blob = json.dumps(
                self.to_dict(canonical=True),
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
            )
            cached = hashlib.sha256(blob.encode("utf-8")).hexdigest()
            self._cache["hash"] = cached
        return str(cached)

    @property
    def version(self) -> str:
        """Short form of :meth:`content_hash` (12 hex digits) for display."""
        return self.content_hash()[:12]


@dataclass(frozen=True)
class Dictionary:
    """A data dictionary: one or more forms whose field names are unique across all."""

    forms: tuple[Form, ...]
    """The forms in file order."""
    notes: tuple[ErrorDetail, ...] = field(default=(), compare=False)
    """What the reader did that the person importing should know, though nothing
    is wrong: columns ignored, a field type kept in a simpler form, an encoding
    guessed. Each note is located like an error (``file:row:field``)."""

    def form(self, name: str) -> Form:
        """The form called ``name``.

        Raises:
            KeyError: No such form; the message lists those there are.
        """
        for f in self.forms:
            if f.name == name:
                return f
        raise KeyError(f"no form {name!r}; the dictionary has {', '.join(self.form_names)}")

    @property
    def form_names(self) -> tuple[str, ...]:
        """Names of the forms, in order."""
        return tuple(f.name for f in self.forms)

    def fields(self) -> Iterator[Field]:
        """All fields of all forms, in order."""
        for form in self.forms:
            yield from form.fields

    def content_hash(self) -> str:
        """SHA-256 (hex) over the forms' hashes, in order."""
        joined = "\n".join(f"{f.name}:{f.content_hash()}" for f in self.forms)
        return hashlib.sha256(joined.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- parsing helpers


def parse_field_type(text: str) -> FieldType:
    """REDCap's Field Type column → :class:`FieldType`.

    Raises:
        InputError: Not a supported type; the message lists the supported ones.
    """
    value = text.strip().lower()
    try:
        return FieldType(value)
    except ValueError:
        supported = ", ".join(t.value for t in FieldType)
        hint = ""
        if value in ("select", "textarea"):
            hint = f" (REDCap's dictionary calls it {'dropdown' if value == 'select' else 'notes'})"
        raise InputError(
            f"unknown field type {text!r}{hint}; supported types are {supported}"
        ) from None


def parse_validation_type(text: str) -> str:
    """REDCap's Text Validation Type → the canonical type name.

    Raises:
        InputError: Not a supported validation type.
    """
    value = text.strip().lower()
    value = VALIDATION_ALIASES.get(value, value)
    if value in VALIDATION_TYPES or _NUMBER_DP.match(value):
        return value
    supported = ", ".join(
        sorted(VALIDATION_TYPES | {"number_Ndp (N = 1–9)", "number_Ndp_comma_decimal"})
    )
    raise InputError(f"unknown validation type {text!r}; supported types are {supported}")


def parse_choices(text: str) -> tuple[Choice, ...]:
    """REDCap's choices string, e.g. ``"1, Yes | 2, No"``, → choices.

    Raises:
        InputError: An item has no code, a code is malformed or repeated.
    """
    choices: list[Choice] = []
    seen: set[str] = set()
    for raw in text.split("|"):
        item = raw.strip()
        if not item:
            raise InputError(
                f"empty choice in {text!r}; separate choices with ' | ' and none empty"
            )
        code, comma, label = item.partition(",")
        code, label = code.strip(), label.strip()
        if not comma:
            raise InputError(
                f"choice {item!r} has no code; write each choice as 'code, label', e.g. '1, {item}'"
            )
        if not _CODE.match(code):
            raise InputError(
                f"choice code {code!r} is not valid; codes are letters, digits, '_', '.' and "
                "inner '-', optionally with a leading '-'"
            )
        if code in seen:
            raise InputError(f"choice code {code!r} is used twice")
        seen.add(code)
        choices.append(Choice(code, label))
    return tuple(choices)


def format_choices(choices: Iterable[Choice]) -> str:
    """Choices → REDCap's ``"1, Yes | 2, No"``."""
    return " | ".join(f"{c.code}, {c.label}" for c in choices)


def checkbox_column(field_name: str, code: str) -> str:
    """The export column of one checkbox option, as REDCap names it (``cb___2``).

    REDCap writes ``-`` and ``.`` in codes as ``_`` and lower-cases letters.
    """
    return f"{field_name}___{code.replace('-', '_').replace('.', '_').lower()}"


# --------------------------------------------------------------------------- checks

Locate = Callable[[str, str], str]
"""(form name, field name) → a location such as ``dict.csv:12:weight``."""


def _date_bound(text: str, validation: str) -> bool:
    low = text.lower()
    if low in ("today", "now"):
        return True
    if validation.startswith("datetime"):
        return bool(
            re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}(:[0-9]{2})?)?$", text)
        )
    return bool(re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", text))


def number_text(text: str, validation: str) -> str:
    """A number as written for ``validation``, with a decimal comma made a point.

    The comma-decimal types (``number_comma_decimal``, ``number_1dp_comma_decimal`` …)
    take ``1,5``; careloop stores, compares and computes with ``1.5``.
    """
    if validation.endswith("comma_decimal"):
        return text.replace(",", ".", 1)
    return text


def _bound_ok(text: str, field: Field) -> bool:
    v = field.validation or ""
    if field.type is FieldType.SLIDER or v == "integer":
        return bool(re.match(r"^-?[0-9]+$", text))
    if v == "number" or v == "number_comma_decimal" or _NUMBER_DP.match(v):
        try:
            value = float(number_text(text, v))
        except ValueError:
            return False
        return math.isfinite(value)
    if v.startswith("date"):
        return _date_bound(text, v)
    if v == "time":
        return bool(re.match(r"^[0-9]{2}:[0-9]{2}$", text))
    if v == "time_hh_mm_ss":
        return bool(re.match(r"^[0-9]{2}:[0-9]{2}:[0-9]{2}$", text))
    if v == "time_mm_ss":
        return bool(re.match(r"^[0-9]{2}:[0-9]{2}$", text))
    return False


@dataclass(frozen=True)
class OtherFormField:
    """A field that lives outside the forms being read, e.g. on a registered form."""

    form: str
    """The form it belongs to."""
    field: Field | None = None
    """Its definition, when known (to check ``[cb(code)]`` references against it)."""
    also_in: tuple[str, ...] = ()
    """Further forms that have a field of this name: the reference is ambiguous."""


def check_forms(
    forms: Iterable[Form],
    *,
    locate: Locate,
    other_fields: Mapping[str, OtherFormField] | None = None,
    stored: bool = False,
) -> list[ErrorDetail]:
    """Dictionary-level problems: each with the place ``locate`` gives for it.

    Checks names, duplicates across forms, choices present where needed,
    validation types fitting their field type, min/max matching the type,
    calculations on calc fields only, and every ``[field]`` or ``[cb(code)]``
    in branching logic or calculations naming a field (and option) that
    exists. Syntax errors are found earlier, by the reader that parsed them.

    A reference may name a field of another form: of the same dictionary, one
    the form lists in :attr:`Form.other_form_fields`, or one of
    ``other_fields`` (the registry's other forms). ``stored`` is for a form
    careloop stored itself, checked when it was imported: a reference it
    cannot resolve is then taken as another form's field, not an error.
    """
    forms = list(forms)
    outside = other_fields if other_fields is not None else {}
    problems: list[ErrorDetail] = []
    by_name: dict[str, Field] = {}
    for form in forms:
        if not _NAME.match(form.name):
            problems.append(
                ErrorDetail(
                    locate(form.name, form.fields[0].name if form.fields else ""),
                    f"form name {form.name!r} must be lower-case letters, digits and '_', "
                    "starting with a letter",
                    form.name,
                )
            )
        if not form.fields:
            problems.append(ErrorDetail(locate(form.name, ""), f"form {form.name!r} has no fields"))
        for f in form.fields:
            here = locate(form.name, f.name)
            if f.name in by_name:
                problems.append(
                    ErrorDetail(
                        here,
                        f"duplicate field name {f.name!r}; names must be unique "
                        "across the whole dictionary",
                        f.name,
                    )
                )
            else:
                by_name[f.name] = f
            if not _NAME.match(f.name):
                problems.append(
                    ErrorDetail(
                        here,
                        f"field name {f.name!r} must be lower-case letters, digits "
                        "and '_', starting with a letter",
                        f.name,
                    )
                )
            problems.extend(_check_field(f, here))
    for form in forms:
        declared = dict(form.other_form_fields)
        for f in form.fields:
            here = locate(form.name, f.name)
            for what, expr in (
                ("branching logic", f.branching_logic),
                ("calculation", f.calculation),
            ):
                if expr is None:
                    continue
                for ref in expr.references:
                    problems.extend(
                        _check_reference(
                            ref, f, what, expr, here, by_name, declared, outside, stored
                        )
                    )
    return problems


def _check_reference(
    ref: FieldRef,
    f: Field,
    what: str,
    expr: Expression,
    here: str,
    by_name: Mapping[str, Field],
    declared: Mapping[str, str],
    outside: Mapping[str, OtherFormField],
    stored: bool,
) -> list[ErrorDetail]:
    target = by_name.get(ref.name)
    if target is None:
        other = outside.get(ref.name)
        if other is not None and other.also_in:
            forms = ", ".join((other.form, *other.also_in))
            return [
                ErrorDetail(
                    here,
                    f"{what} refers to [{ref.name}], which is a field of several registered "
                    f"forms ({forms}); import the forms that belong together in one dictionary",
                    expr.source,
                )
            ]
        if other is not None and ref.name not in declared:
            target = other.field
        if target is None:
            if ref.name in declared or other is not None or stored:
                return []  # another form's field, known by name only
            return [
                ErrorDetail(
                    here,
                    f"{what} refers to [{ref.name}], which is not a field of this dictionary"
                    + (" nor of another registered form" if outside else ""),
                    expr.source,
                )
            ]
    if ref.code is not None:
        if target.type is not FieldType.CHECKBOX:
            return [
                ErrorDetail(
                    here,
                    f"{what} uses [{ref.name}({ref.code})] but {ref.name} is a "
                    f"{target.type.value} field, not a checkbox; write [{ref.name}]",
                    expr.source,
                )
            ]
        if ref.code not in target.choice_codes:
            return [
                ErrorDetail(
                    here,
                    f"{what} uses [{ref.name}({ref.code})] but {ref.name} has no option "
                    f"{ref.code!r} (it has {', '.join(target.choice_codes)})",
                    expr.source,
                )
            ]
        return []
    if target.type is FieldType.CHECKBOX:
        first = target.choice_codes[0] if target.choice_codes else "1"
        return [
            ErrorDetail(
                here,
                f"{what} uses [{ref.name}] but {ref.name} is a checkbox; name one option, "
                f"e.g. [{ref.name}({first})] = '1'",
                expr.source,
            )
        ]
    if target.name == f.name and what == "calculation":
        return [ErrorDetail(here, "a calculation cannot refer to its own field", expr.source)]
    return []


def link_other_forms(
    forms: Iterable[Form], *, other_fields: Mapping[str, OtherFormField] | None = None
) -> tuple[Form, ...]:
    """The forms with :attr:`Form.other_form_fields` filled in.

    Each reference to a field that is not on the form itself is resolved to
    the form of the same dictionary that has it, else to the form the
    definition already declared, else to ``other_fields``; declarations no
    expression uses are dropped. Call it after :func:`check_forms` found no
    problem.
    """
    forms = list(forms)
    home = {f.name: form.name for form in forms for f in form.fields}
    outside = other_fields if other_fields is not None else {}
    out = []
    for form in forms:
        own = set(form.field_names)
        declared = dict(form.other_form_fields)
        links: dict[str, str] = {}
        for f in form.fields:
            for expr in (f.branching_logic, f.calculation):
                if expr is None:
                    continue
                for name in expr.referenced_fields() - own:
                    if name in home:
                        links[name] = home[name]
                    elif name in declared:
                        links[name] = declared[name]
                    elif name in outside and not outside[name].also_in:
                        links[name] = outside[name].form
        linked = tuple(sorted(links.items()))
        out.append(
            form if linked == form.other_form_fields else replace(form, other_form_fields=linked)
        )
    return tuple(out)


def _check_field(f: Field, here: str) -> list[ErrorDetail]:
    out: list[ErrorDetail] = []
    if f.type in CHOICE_TYPES and not f.choices:
        out.append(
            ErrorDetail(here, f"a {f.type.value} field needs choices, e.g. '1, Yes | 2, No'")
        )
    if f.type not in CHOICE_TYPES and f.choices:
        out.append(ErrorDetail(here, f"a {f.type.value} field cannot have choices"))
    if f.type is FieldType.CALC and f.calculation is None:
        out.append(ErrorDetail(here, "a calc field needs a calculation in the choices column"))
    if f.type is not FieldType.CALC and f.calculation is not None:
        out.append(ErrorDetail(here, f"a {f.type.value} field cannot have a calculation"))
    if f.validation is not None:
        if f.validation == "autocomplete":
            if f.type is not FieldType.DROPDOWN:
                out.append(
                    ErrorDetail(
                        here, "'autocomplete' applies to dropdown fields only", f.validation
                    )
                )
        elif f.validation == "signature":
            if f.type is not FieldType.FILE:
                out.append(
                    ErrorDetail(here, "'signature' applies to file fields only", f.validation)
                )
        elif f.type is not FieldType.TEXT:
            out.append(
                ErrorDetail(
                    here,
                    f"validation type {f.validation!r} applies to text fields, not {f.type.value}",
                    f.validation,
                )
            )
    for bound, text in (("min", f.min_value), ("max", f.max_value)):
        if text is None:
            continue
        if not _bound_ok(text, f):
            kind = f.validation or f.type.value
            out.append(
                ErrorDetail(
                    here,
                    f"{bound} {text!r} does not fit validation {kind!r} "
                    "(numbers for integer/number/slider, YYYY-MM-DD or 'today' "
                    "for dates, HH:MM for time, HH:MM:SS or MM:SS for those times)",
                    text,
                )
            )
    if f.ontology and f.type is not FieldType.TEXT:
        out.append(
            ErrorDetail(here, f"an ontology applies to text fields, not {f.type.value}", f.ontology)
        )
    if f.alignment not in ALIGNMENTS:
        out.append(
            ErrorDetail(
                here, f"custom alignment {f.alignment!r} is not one of RV, RH, LV, LH", f.alignment
            )
        )
    if f.omop_domain is not None and f.omop_domain not in OMOP_DOMAINS:
        out.append(
            ErrorDetail(
                here,
                f"OMOP domain {f.omop_domain!r} is not one of {', '.join(OMOP_DOMAINS)}",
                f.omop_domain,
            )
        )
    if f.code is not None and f.code.system not in CODE_SYSTEMS:
        out.append(
            ErrorDetail(
                here,
                f"code system {f.code.system!r} is not one of {', '.join(CODE_SYSTEMS)}",
                f.code.system,
            )
        )
    return out


def raise_problems(problems: list[ErrorDetail], *, source: str) -> None:
    """Raise one :class:`ValidationFailed` listing every problem, if there are any."""
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise ValidationFailed(
            f"{source}: the data dictionary has {len(problems)} {noun}; nothing was imported.",
            details=problems,
        )


def expression_or_problem(
    text: str, *, where: str, problems: list[ErrorDetail], what: str
) -> Expression | None:
    """Parse ``text``; on a syntax error record a located problem and return None."""
    if not text.strip():
        return None
    try:
        return parse_expression(text, where=where)
    except InputError as exc:
        detail = exc.details[0].message if exc.details else exc.message
        problems.append(ErrorDetail(where, f"{what} syntax error: {detail}", text))
        return None
