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

from careloop.capture.forms.checks import (
    OtherFormField,
    check_forms,
    expression_or_problem,
    link_other_forms,
    number_text,
    raise_problems,
)
from careloop.capture.forms.model import (
    CODE_SYSTEMS,
    OMOP_DOMAINS,
    VALIDATION_TYPES,
    Choice,
    CodeSystem,
    Dictionary,
    Field,
    FieldType,
    Form,
    OmopDomain,
    StandardCode,
    form_list,
)
from careloop.capture.forms.parsing import (
    checkbox_column,
    format_choices,
    parse_choices,
    parse_field_type,
    parse_validation_type,
)

__all__ = [
    "CODE_SYSTEMS",
    "OMOP_DOMAINS",
    "VALIDATION_TYPES",
    "Choice",
    "CodeSystem",
    "Dictionary",
    "Field",
    "FieldType",
    "Form",
    "OmopDomain",
    "OtherFormField",
    "StandardCode",
    "check_forms",
    "checkbox_column",
    "expression_or_problem",
    "form_list",
    "format_choices",
    "link_other_forms",
    "number_text",
    "parse_choices",
    "parse_field_type",
    "parse_validation_type",
    "raise_problems",
]
