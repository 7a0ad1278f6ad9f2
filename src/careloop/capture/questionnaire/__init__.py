"""FHIR R4 Questionnaire import and export (``fhir.resources.R4B`` models).

A :class:`~careloop.capture.forms.Form` becomes a Questionnaire whose items
carry the field names as ``linkId``. Types, choices (``answerOption``),
required, read-only calculated fields, ranges (``minValue``/``maxValue``),
units and codes use the standard elements and extensions; branching logic
becomes ``enableWhen`` wherever REDCap's expression says no more than a list
of comparisons joined by one ``and``/``or``. What FHIR has no element for —
the REDCap field type, validation type, calculations, logic that
``enableWhen`` cannot say — travels in careloop extensions
(``urn:careloop:fhir:extension:…``, listed in docs/capture/forms.md), so a
form exported and imported again is the same form.

Section headers become ``group`` items holding the fields that follow them.

A Questionnaire's canonical ``url`` (and ``version``) is kept with the form
it becomes, and so is each linkId that had to be renamed to be a field name
(``/44250-9`` → ``q__44250_9``): QuestionnaireResponses name their
Questionnaire by that URL and their items by those linkIds
(:mod:`careloop.capture.fhir_responses`). A form exported again keeps both
in careloop extensions (``…source-url``, ``…source-version``, ``…link-id``).
"""

from __future__ import annotations

from careloop.capture.questionnaire.exporting import (
    EXTENSION,
    SYSTEMS,
    fhir_item_type,
    fhir_typed_value,
    form_to_questionnaire,
    write_questionnaire,
)
from careloop.capture.questionnaire.importing import (
    questionnaire_to_form,
    read_questionnaire,
)

__all__ = [
    "EXTENSION",
    "SYSTEMS",
    "fhir_item_type",
    "fhir_typed_value",
    "form_to_questionnaire",
    "questionnaire_to_form",
    "read_questionnaire",
    "write_questionnaire",
]
