"""The qualitative part of a cycle's Study: themes with their weight, and coders' agreement.

:func:`qualitative_findings` summarises a coded project (focus groups,
interviews) for the Study without a word of the transcripts: the documents'
metadata, the codebook, each theme with the segments, documents and
participants behind it, and — where two coders coded the same documents —
Cohen's kappa per code with Landis & Koch's words for it, and
Krippendorff's alpha. The transcripts themselves stay with the stored
project, which only a few members may read.

Pure: no database, no web.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from careloop.analysis.qualitative import QualitativeProject, agreement_by_code, agreement_words

__all__ = ["CodeAgreement", "QualitativeFindings", "ThemeWeight", "qualitative_findings"]


@dataclass(frozen=True)
class ThemeWeight:
    """A theme and how much of the material stands behind it."""

    name: str
    description: str
    codes: tuple[str, ...]
    """Its codes (segments coded with a code below one of them count too)."""
    segments: int
    """Coded segments with one of its codes, every coder's."""
    segments_by_coder: dict[str, int]
    """The same, per coder (double coding counts a passage once per coder)."""
    participants: int
    """Distinct speakers of those segments, per document: the same pseudonym in
    two documents counts twice (focus groups reuse "P1")."""
    documents: int
    """Documents holding one of those segments."""
    quotes: int
    """Supporting quotes recorded for it (their words stay with the project)."""


@dataclass(frozen=True)
class CodeAgreement:
    """Two coders' agreement on applying one code to the documents both coded."""

    code: str
    coders: tuple[str, str]
    unit: Literal["turn", "document"]
    """What was compared: speaker turns, or whole documents when some have no turns."""
    units: int
    percent_agreement: float
    kappa: float | None
    """Cohen's kappa; None when the code shows no variation (see ``interpretation``)."""
    kappa_ci_low: float | None
    kappa_ci_high: float | None
    alpha: float | None
    """Krippendorff's alpha (nominal) over the same units."""
    interpretation: str
    """Landis & Koch's words for the kappa, or why there is none."""


@dataclass(frozen=True)
class QualitativeFindings:
    """A coded project summarised for a cycle's Study (no transcript text)."""

    name: str
    description: str
    documents: list[dict[str, Any]]
    """Per document: name, kind, metadata, speakers (count), characters, coders."""
    codebook: list[dict[str, str | None]]
    """Per code: name, definition, parent."""
    coders: tuple[str, ...]
    segments: int
    themes: tuple[ThemeWeight, ...]
    agreement: tuple[CodeAgreement, ...]
    """Kappa per code for every pair of coders who coded the same documents."""
    double_coded_documents: int
    """Documents coded by at least two coders."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes null)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        return dict(clean(asdict(self)))


def _theme_weight(project: QualitativeProject, theme_index: int) -> ThemeWeight:
    theme = project.themes[theme_index]
    codes = set(theme.codes)
    for code in theme.codes:
        codes.update(project.codebook.descendants(code))
    segments = [s for s in project.segments if s.code in codes]
    by_coder: dict[str, int] = {}
    speakers: set[tuple[str, str]] = set()
    for s in segments:
        by_coder[s.coder] = by_coder.get(s.coder, 0) + 1
        doc = project.document(s.document)
        for turn in doc.turns:
            if s.start < turn.end and turn.start < s.end:
                speakers.add((doc.name, turn.speaker))
    return ThemeWeight(
        name=theme.name,
        description=theme.description,
        codes=theme.codes,
        segments=len(segments),
        segments_by_coder=dict(sorted(by_coder.items())),
        participants=len(speakers),
        documents=len({s.document for s in segments}),
        quotes=len(theme.quotes),
    )


def _pair_agreement(project: QualitativeProject, pair: tuple[str, str]) -> list[CodeAgreement]:
    coded = {c: {s.document for s in project.segments if s.coder == c} for c in pair}
    shared = coded[pair[0]] & coded[pair[1]]
    if not shared:
        return []
    docs = tuple(d for d in project.documents if d.name in shared)
    unit: Literal["turn", "document"] = "turn" if all(d.turns for d in docs) else "document"
    # Only the documents both coded, and only their coding: a document one coder never
    # read must not count as "code not applied" by that coder.
    sub = replace(
        project,
        documents=docs,
        segments=tuple(s for s in project.segments if s.document in shared and s.coder in pair),
        themes=(),
    )
    table = agreement_by_code(sub, coders=list(pair), unit=unit)
    out = []
    for row in table.to_dict("records"):
        kappa = row["kappa"]
        has_kappa = kappa is not None and not (isinstance(kappa, float) and math.isnan(kappa))
        out.append(
            CodeAgreement(
                code=str(row["code"]),
                coders=pair,
                unit=unit,
                units=int(row["units"]),
                percent_agreement=float(row["percent_agreement"]),
                kappa=float(kappa) if has_kappa else None,
                kappa_ci_low=float(row["kappa_ci_low"]) if has_kappa else None,
                kappa_ci_high=float(row["kappa_ci_high"]) if has_kappa else None,
                alpha=None if row["alpha"] is None else float(row["alpha"]),
                interpretation=(
                    f"{agreement_words(float(kappa))} agreement beyond chance (Landis & Koch)"
                    if has_kappa
                    else str(row["note"])
                ),
            )
        )
    return out


def qualitative_findings(project: QualitativeProject) -> QualitativeFindings:
    """Summarise a coded project for a cycle's Study: themes and agreement, no transcripts."""
    coders = project.coders
    agreement: list[CodeAgreement] = []
    for pair in itertools.combinations(coders, 2):
        agreement += _pair_agreement(project, pair)
    coders_of: dict[str, set[str]] = {}
    for s in project.segments:
        coders_of.setdefault(s.document, set()).add(s.coder)
    return QualitativeFindings(
        name=project.name,
        description=project.description,
        documents=[
            {
                "name": d.name,
                "kind": d.kind,
                "metadata": dict(d.metadata),
                "speakers": len(d.speakers),
                "characters": len(d.text),
                "coders": sorted(coders_of.get(d.name, ())),
            }
            for d in project.documents
        ],
        codebook=[
            {"name": c.name, "definition": c.definition, "parent": c.parent}
            for c in project.codebook.codes
        ],
        coders=coders,
        segments=len(project.segments),
        themes=tuple(_theme_weight(project, i) for i in range(len(project.themes))),
        agreement=tuple(agreement),
        double_coded_documents=sum(1 for c in coders_of.values() if len(c) >= 2),
    )
