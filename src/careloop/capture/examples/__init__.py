"""Example dictionaries shipped with careloop: a paediatric IBD registry.

``ibd_registry.yaml`` (the source) and ``ibd_registry.csv`` (the same forms
as a REDCap data dictionary) hold an ImproveCareNow-style visit form and a
patient-reported symptom form. The demo and the tests load them from here.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

from careloop.capture.forms import Dictionary
from careloop.capture.native_yaml import read_forms_yaml
from careloop.capture.redcap import read_redcap_dictionary

__all__ = ["example_file", "example_forms"]

_FILES = {"yaml": "ibd_registry.yaml", "redcap": "ibd_registry.csv"}


def example_file(fmt: Literal["yaml", "redcap"] = "yaml") -> bytes:
    """The bytes of the example dictionary in careloop YAML or REDCap CSV."""
    return resources.files(__name__).joinpath(_FILES[fmt]).read_bytes()


@cache  # the forms are immutable, so every caller may share them
def example_forms(fmt: Literal["yaml", "redcap"] = "yaml") -> Dictionary:
    """The example IBD dictionary (``ibd_visit`` and ``ibd_symptoms_prom``).

    Args:
        fmt: Load it from the YAML source (default, with titles and the
            patient-reported flag) or from the REDCap CSV.
    """
    data = example_file(fmt)
    if fmt == "redcap":
        return read_redcap_dictionary(data, name=_FILES["redcap"])
    return read_forms_yaml(data, name=_FILES["yaml"])
