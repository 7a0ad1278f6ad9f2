"""A qualitative project as plain JSON: careloop's own lossless form beside REFI-QDA.

:func:`project_to_dict` gives every document (text, turns, metadata),
code, coded segment and theme with its quotes; :func:`project_from_dict`
reads it back, building the same immutable objects, so a stored project
is checked exactly as a new one is (unknown codes, offsets outside a
document…). GUIDs travel too, so a project read back matches its REFI-QDA
export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from careloop.analysis.qualitative.project import (
    Code,
    Codebook,
    CodedSegment,
    Document,
    QualitativeProject,
    Quote,
    Theme,
    Turn,
)
from careloop.core.errors import InputError

FORMAT = "careloop-qualitative-project/1"


def project_to_dict(project: QualitativeProject) -> dict[str, Any]:
    """The whole project as JSON-ready data (transcripts included)."""
    return {
        "format": FORMAT,
        "name": project.name,
        "description": project.description,
        "documents": [asdict(d) for d in project.documents],
        "codes": [asdict(c) for c in project.codebook.codes],
        "segments": [asdict(s) for s in project.segments],
        "themes": [asdict(t) for t in project.themes],
    }


def _items(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise InputError(f"{key!r} of a qualitative project must be a list of objects.")
    return value


def project_from_dict(data: Mapping[str, Any]) -> QualitativeProject:
    """A project from :func:`project_to_dict`'s form.

    Raises:
        InputError: Not this form, a missing or mistyped field, or a project
            that is inconsistent (the same checks as a project built in code).
    """
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise InputError(
            f"Not a careloop qualitative project: expected an object with format {FORMAT!r} "
            "(write one with project_to_dict, or give a REFI-QDA .qdpx file)."
        )
    try:
        documents = tuple(
            Document(
                name=d["name"],
                text=d["text"],
                kind=d.get("kind", "other"),
                metadata={str(k): str(v) for k, v in dict(d.get("metadata", {})).items()},
                turns=tuple(
                    Turn(t["speaker"], int(t["start"]), int(t["end"])) for t in d.get("turns", [])
                ),
                guid=d.get("guid", ""),
            )
            for d in _items(data, "documents")
        )
        codes = tuple(Code(**dict(c)) for c in _items(data, "codes"))
        segments = tuple(CodedSegment(**dict(s)) for s in _items(data, "segments"))
        themes = tuple(
            Theme(
                name=t["name"],
                description=t.get("description", ""),
                codes=tuple(t.get("codes", ())),
                quotes=tuple(Quote(**dict(q)) for q in t.get("quotes", ())),
                guid=t.get("guid", ""),
            )
            for t in _items(data, "themes")
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"A qualitative project's field is missing or mistyped: {exc!r}.") from exc
    return QualitativeProject(
        name=str(data.get("name", "")),
        documents=documents,
        codebook=Codebook(codes),
        segments=segments,
        themes=themes,
        description=str(data.get("description", "")),
    )
