"""The form model: field types, fields, forms and dictionaries, whatever file they came from."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, get_args

from careloop.capture.expressions import Expression
from careloop.core.errors import ErrorDetail


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


def form_list(forms: Dictionary | Form | Iterable[Form]) -> list[Form]:
    """The forms a writer was given: a dictionary's, one form, or several."""
    if isinstance(forms, Dictionary):
        return list(forms.forms)
    if isinstance(forms, Form):
        return [forms]
    return list(forms)
