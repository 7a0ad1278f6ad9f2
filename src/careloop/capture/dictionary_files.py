"""One entry point for dictionary files in any of the three formats.

``careloop forms import FILE [--format …]`` and ``careloop forms export FORM
--format …`` call :func:`read_dictionary` and :func:`write_dictionary`, so the
CLI and the web upload choose a reader the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

from careloop.capture.forms import Dictionary, Form, OtherFormField, form_list
from careloop.capture.native_yaml import read_forms_yaml, write_forms_yaml
from careloop.capture.questionnaire import read_questionnaire, write_questionnaire
from careloop.capture.redcap import read_redcap_dictionary, write_redcap_dictionary
from careloop.capture.text_files import read_dictionary_source
from careloop.core.errors import InputError

__all__ = ["DictionaryFormat", "detect_format", "read_dictionary", "write_dictionary"]

DictionaryFormat = Literal["redcap", "yaml", "questionnaire"]

_SUFFIXES: dict[str, DictionaryFormat] = {
    ".csv": "redcap",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "questionnaire",
}


def detect_format(text: str, *, name: str = "") -> DictionaryFormat:
    """The format of a dictionary file, from its name's suffix or else its content."""
    suffix = Path(name).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("{"):
        return "questionnaire"
    first_line = head.split("\n", 1)[0].lower()
    if "variable / field name" in first_line or first_line.startswith(
        ("field_name,", '"field_name"')
    ):
        return "redcap"
    return "yaml"


def read_dictionary(
    source: str | Path | bytes,
    *,
    format: DictionaryFormat | None = None,
    name: str | None = None,
    other_fields: Mapping[str, OtherFormField] | None = None,
) -> Dictionary:
    """Read a data dictionary in any supported format.

    Args:
        source: A path, the file's bytes, or its text.
        format: ``redcap``, ``yaml`` or ``questionnaire``; by default taken
            from the file name's suffix (``.csv``, ``.yaml``/``.yml``,
            ``.json``) or else from the content.
        name: How to call the file in error messages.
        other_fields: Fields of forms outside the file (the registry's) that
            its branching logic and calculations may name.

    Raises:
        ValidationFailed: The file's problems, each located (see the readers).
    """
    label, text, decoded = read_dictionary_source(source, name=name, default="dictionary")
    chosen = format or detect_format(text, name=label)
    if chosen == "redcap":
        read = read_redcap_dictionary(text, name=label, other_fields=other_fields)
    elif chosen == "yaml":
        read = read_forms_yaml(text, name=label, other_fields=other_fields)
    else:
        read = Dictionary((read_questionnaire(text, name=label, other_fields=other_fields),))
    return replace(read, notes=(*decoded, *read.notes)) if decoded else read


def write_dictionary(
    forms: Dictionary | Form | Iterable[Form],
    *,
    format: DictionaryFormat,
) -> str:
    """Write forms in a supported format.

    Raises:
        InputError: ``questionnaire`` was asked for more than one form (a
            Questionnaire holds one form; export them one at a time).
    """
    forms_given = form_list(forms)
    if format == "redcap":
        return write_redcap_dictionary(forms_given)
    if format == "yaml":
        return write_forms_yaml(forms_given)
    if len(forms_given) != 1:
        names = ", ".join(f.name for f in forms_given)
        raise InputError(
            f"A FHIR Questionnaire holds one form, but {len(forms_given)} were given ({names}); "
            "export them one at a time."
        )
    return write_questionnaire(forms_given[0])
