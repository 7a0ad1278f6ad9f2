"""What the coding says: code frequencies, co-occurrence, quotes, coder agreement."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from careloop.analysis.qualitative.agreement import cohen_kappa, krippendorff_alpha
from careloop.analysis.qualitative.project import CodedSegment, QualitativeProject
from careloop.core.errors import InputError

Unit = Literal["document", "turn"]


def _segments(
    project: QualitativeProject, coder: str | None, include_descendants: bool
) -> list[CodedSegment]:
    segs = [s for s in project.segments if coder is None or s.coder == coder]
    if coder is not None and not segs:
        raise InputError(
            f"Coder {coder!r} coded nothing; coders are: {', '.join(project.coders) or 'none'}."
        )
    if not include_descendants:
        return segs
    # a segment coded with a child counts for every ancestor as well
    out = []
    for s in segs:
        for name in project.codebook.path(s.code):
            out.append(CodedSegment(s.document, s.start, s.end, name, s.coder, s.memo))
    return out


def code_frequencies(
    project: QualitativeProject,
    *,
    by: str = "document",
    coder: str | None = None,
    include_descendants: bool = False,
) -> pd.DataFrame:
    """How often each code was applied, by document, speaker or a metadata field.

    Args:
        project: The project.
        by: ``"document"``, ``"speaker"`` or a document metadata key such as
            ``"site"`` or ``"group"``.
        coder: Count one coder's segments only (default: every coder).
        include_descendants: Count a child code's segments for its ancestors too.

    Returns:
        One row per code and group with ``segments`` (times applied) and
        ``documents`` (distinct documents where it was applied).
    """
    segs = _segments(project, coder, include_descendants)
    rows = []
    for s in segs:
        doc = project.document(s.document)
        if by == "document":
            group = doc.name
        elif by == "speaker":
            group = doc.speaker_at(s.start) or "(no speaker)"
        else:
            if by not in doc.metadata:
                raise InputError(
                    f"Document {doc.name!r} has no metadata field {by!r}; "
                    f"its fields are {', '.join(sorted(doc.metadata)) or 'none'}."
                )
            group = doc.metadata[by]
        rows.append({"code": s.code, "group": group, "doc": doc.name})
    columns = ["code", by, "segments", "documents"]
    if not rows:
        return pd.DataFrame(columns=columns)
    out = (
        pd.DataFrame(rows)
        .groupby(["code", "group"], sort=True)
        .agg(segments=("doc", "size"), documents=("doc", "nunique"))
        .reset_index()
        .rename(columns={"group": by})
    )
    return out[columns]


def co_occurrence(
    project: QualitativeProject,
    *,
    within: Literal["overlap", "turn", "document"] = "overlap",
    coder: str | None = None,
) -> pd.DataFrame:
    """How often two codes appear together.

    Args:
        project: The project.
        within: ``"overlap"`` counts pairs of segments whose text overlaps;
            ``"turn"`` counts speaker turns holding both codes; ``"document"``
            counts documents holding both.
        coder: One coder's segments only (default: every coder).

    Returns:
        A symmetric code × code table; the diagonal counts units holding the code.
    """
    segs = _segments(project, coder, include_descendants=False)
    names = [c.name for c in project.codebook.codes]
    pos = {n: i for i, n in enumerate(names)}
    counts = np.zeros((len(names), len(names)), dtype=int)
    if within == "overlap":
        by_doc: dict[str, list[CodedSegment]] = {}
        for s in segs:
            by_doc.setdefault(s.document, []).append(s)
            counts[pos[s.code], pos[s.code]] += 1
        for doc_segs in by_doc.values():
            for first, second in itertools.combinations(doc_segs, 2):
                overlap = first.start < second.end and second.start < first.end
                if first.code != second.code and overlap:
                    counts[pos[first.code], pos[second.code]] += 1
                    counts[pos[second.code], pos[first.code]] += 1
        return pd.DataFrame(counts, index=names, columns=names)
    if within not in ("turn", "document"):
        raise InputError(f"within must be 'overlap', 'turn' or 'document', got {within!r}.")
    units: dict[tuple[str, int], set[str]] = {}
    for s in segs:
        doc = project.document(s.document)
        if within == "document":
            units.setdefault((doc.name, 0), set()).add(s.code)
            continue
        if not doc.turns:
            raise InputError(f"Document {doc.name!r} has no speaker turns.")
        for i, t in enumerate(doc.turns):
            if s.start < t.end and t.start < s.end:
                units.setdefault((doc.name, i), set()).add(s.code)
    for codes in units.values():
        for code in codes:
            counts[pos[code], pos[code]] += 1
        for x, y in itertools.combinations(sorted(codes), 2):
            counts[pos[x], pos[y]] += 1
            counts[pos[y], pos[x]] += 1
    return pd.DataFrame(counts, index=names, columns=names)


def quotes_for(project: QualitativeProject, code: str, *, coder: str | None = None) -> pd.DataFrame:
    """Every passage coded with ``code``: document, speaker, metadata and words."""
    if code not in project.codebook:
        raise InputError(f"No code named {code!r} in the codebook.")
    rows = []
    for s in project.segments:
        if s.code != code or (coder is not None and s.coder != coder):
            continue
        doc = project.document(s.document)
        rows.append(
            {
                "document": doc.name,
                "speaker": doc.speaker_at(s.start),
                "coder": s.coder,
                "start": s.start,
                "end": s.end,
                "text": project.text_of(s),
                **doc.metadata,
            }
        )
    return pd.DataFrame(rows)


def coding_table(project: QualitativeProject, *, unit: Unit = "turn") -> pd.DataFrame:
    """Whether each coder applied each code to each unit (1/0), one row per unit × coder × code.

    Every coder of the project is taken to have read every document: a unit a
    coder left uncoded counts as "no code applied" by that coder, which is
    what agreement on applying codes needs. Give only the documents all
    coders read.
    """
    coders = project.coders
    rows = []
    for doc in project.documents:
        if unit == "turn":
            if not doc.turns:
                raise InputError(
                    f"Document {doc.name!r} has no speaker turns; use unit='document'."
                )
            spans = [(f"{doc.name}#{i + 1}", t.start, t.end) for i, t in enumerate(doc.turns)]
        else:
            spans = [(doc.name, 0, len(doc.text))]
        doc_segs = [s for s in project.segments if s.document == doc.name]
        for unit_id, start, end in spans:
            for coder in coders:
                present = {
                    s.code for s in doc_segs if s.coder == coder and s.start < end and start < s.end
                }
                for code in project.codebook.codes:
                    rows.append(
                        {
                            "unit": unit_id,
                            "coder": coder,
                            "code": code.name,
                            "applied": int(code.name in present),
                        }
                    )
    return pd.DataFrame(rows, columns=["unit", "coder", "code", "applied"])


def agreement_by_code(
    project: QualitativeProject,
    *,
    coders: Sequence[str] | None = None,
    unit: Unit = "turn",
    n_boot: int = 0,
) -> pd.DataFrame:
    """Inter-coder agreement on applying each code, per speaker turn or document.

    For each code, every unit is "applied" or "not applied" by each coder;
    Cohen's kappa (two coders) and Krippendorff's alpha (nominal, any number)
    measure agreement beyond chance. A code nobody applied, or that every
    coder applied everywhere, has no variation: its kappa and alpha are left
    empty and ``note`` says why, rather than reporting a misleading number.

    Raises:
        InputError: Fewer than two coders.
    """
    chosen = list(coders) if coders is not None else list(project.coders)
    if len(chosen) < 2:
        raise InputError(
            f"Agreement needs at least two coders; the project has {len(chosen)} "
            f"({', '.join(chosen) or 'none'}). With one coder only it cannot be measured."
        )
    unknown = [c for c in chosen if c not in project.coders]
    if unknown:
        raise InputError(f"Coder(s) with no coding: {', '.join(unknown)}.")
    table = coding_table(project, unit=unit)
    table = table[table["coder"].isin(chosen)]
    rows = []
    for code in project.codebook.codes:
        sub = table[table["code"] == code.name]
        wide = sub.pivot(index="unit", columns="coder", values="applied")[chosen]
        row: dict[str, object] = {
            "code": code.name,
            "units": len(wide),
            "percent_agreement": float((wide.nunique(axis=1) == 1).mean() * 100),
            "kappa": None,
            "kappa_ci_low": None,
            "kappa_ci_high": None,
            "alpha": None,
            "note": "",
        }
        if wide.to_numpy().min() == wide.to_numpy().max():
            row["note"] = (
                "never applied" if wide.to_numpy().max() == 0 else "applied to every unit"
            ) + ": no variation, agreement beyond chance undefined"
            rows.append(row)
            continue
        if len(chosen) == 2:
            a, b = wide[chosen[0]], wide[chosen[1]]
            if a.nunique() == 1 and b.nunique() == 1:
                row["note"] = "each coder used one value only: kappa undefined"
            else:
                k = cohen_kappa(list(a), list(b), categories=[0, 1])
                row.update(kappa=k.kappa, kappa_ci_low=k.ci_low, kappa_ci_high=k.ci_high)
        alpha = krippendorff_alpha(wide.T.to_numpy(dtype=object), level="nominal", n_boot=n_boot)
        row["alpha"] = alpha.alpha
        rows.append(row)
    return pd.DataFrame(rows)


def theme_report(project: QualitativeProject) -> str:
    """The themes with their codes and supporting quotes, as readable text."""
    if not project.themes:
        return f"Project {project.name!r} has no themes yet."
    lines = [f"Themes of {project.name!r}"]
    for theme in project.themes:
        lines.append("")
        lines.append(f"{theme.name}: {theme.description}".rstrip(": "))
        if theme.codes:
            lines.append(f"  Codes: {', '.join(theme.codes)}")
        for q in theme.quotes:
            doc = project.document(q.document)
            who = doc.speaker_at(q.start)
            source = f"{doc.name}{', ' + who if who else ''}"
            lines.append(f'  "{project.text_of(q).strip()}" ({source})')
    return "\n".join(lines)
