"""Capture: form definitions from a portable data dictionary, and validation.

A registry's forms are defined once — as a REDCap data dictionary CSV,
careloop's YAML, or a FHIR R4 Questionnaire — read into frozen
:class:`Form` objects whose :meth:`Form.content_hash` is their version, and
checked with precise, located errors. :func:`validate_response` judges one
response (types, ranges, choices, required-when-shown, calculated fields);
:func:`read_records_csv` validates a whole CSV in REDCap's export shape.
Nothing here touches a database: the registry, the API and the CLI call these
functions.
"""

from careloop.capture.dictionary_files import (
    DictionaryFormat,
    detect_format,
    read_dictionary,
    write_dictionary,
)
from careloop.capture.examples import example_file, example_forms
from careloop.capture.expressions import Expression, parse_expression
from careloop.capture.forms import (
    Choice,
    Dictionary,
    Field,
    FieldType,
    Form,
    StandardCode,
    check_forms,
    checkbox_column,
)
from careloop.capture.native_yaml import read_forms_yaml, write_forms_yaml
from careloop.capture.questionnaire import (
    form_to_questionnaire,
    read_questionnaire,
    write_questionnaire,
)
from careloop.capture.records_csv import RecordRow, RecordsFile, read_records_csv
from careloop.capture.redcap import REDCAP_COLUMNS, read_redcap_dictionary, write_redcap_dictionary
from careloop.capture.validation import (
    FieldError,
    FormValidator,
    ValidationResult,
    validate_response,
)

__all__ = [
    "REDCAP_COLUMNS",
    "Choice",
    "Dictionary",
    "DictionaryFormat",
    "Expression",
    "Field",
    "FieldError",
    "FieldType",
    "Form",
    "FormValidator",
    "RecordRow",
    "RecordsFile",
    "StandardCode",
    "ValidationResult",
    "check_forms",
    "checkbox_column",
    "detect_format",
    "example_file",
    "example_forms",
    "form_to_questionnaire",
    "parse_expression",
    "read_dictionary",
    "read_forms_yaml",
    "read_questionnaire",
    "read_records_csv",
    "read_redcap_dictionary",
    "validate_response",
    "write_dictionary",
    "write_forms_yaml",
    "write_questionnaire",
    "write_redcap_dictionary",
]
