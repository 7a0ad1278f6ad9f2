"""The example dictionary: the forms of the first active content package.

Content packages (:mod:`careloop.core.content`) hold a registry's forms; by
default that is careloop's paediatric IBD registry, whose ``ibd_registry.yaml``
(the source) and ``ibd_registry.csv`` (the same forms as a REDCap data
dictionary) hold an ImproveCareNow-style visit form and a patient-reported
symptom form. The demo and the tests load them from here.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from careloop.capture.forms import Dictionary
from careloop.capture.native_yaml import read_forms_yaml
from careloop.capture.redcap import read_redcap_dictionary
from careloop.core.content import ContentPackage, active_content

__all__ = ["content_forms", "example_file", "example_forms"]


def example_file(fmt: Literal["yaml", "redcap"] = "yaml") -> bytes:
    """The bytes of the example dictionary in careloop YAML or REDCap CSV."""
    return active_content().default().form_file(fmt).read_bytes()


@cache  # the forms are immutable, so every caller may share them
def content_forms(package: ContentPackage, fmt: Literal["yaml", "redcap"] = "yaml") -> Dictionary:
    """A content package's forms, read from its careloop YAML or REDCap CSV file."""
    path = package.form_file(fmt)
    data = path.read_bytes()
    if fmt == "redcap":
        return read_redcap_dictionary(data, name=path.name)
    return read_forms_yaml(data, name=path.name)


def example_forms(fmt: Literal["yaml", "redcap"] = "yaml") -> Dictionary:
    """The example dictionary (by default the IBD ``ibd_visit`` and ``ibd_symptoms_prom``).

    Args:
        fmt: Load it from the YAML source (default, with titles and the
            patient-reported flag) or from the REDCap CSV.
    """
    return content_forms(active_content().default(), fmt)
