"""A qualitative project: documents, a codebook, coded segments and themes.

Documents are focus-group or interview transcripts and free-text answers,
with speaker turns and metadata (site, group, date…). Codes form a hierarchy
with definitions. Each coder's coding is a set of segments (document, start
and end character offsets, code). Themes gather codes and supporting quotes.
Everything is immutable: a change returns a new project.

Identity is by name — documents, codes and coders have unique names — and
each carries a GUID for exchange with other software (REFI-QDA), derived
from the name unless given, so that a round trip keeps them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from careloop.core.errors import ErrorDetail, InputError

DocumentKind = Literal["focus_group", "interview", "survey_response", "field_notes", "other"]

_NAMESPACE = uuid.UUID("6f1c1e2a-4d0b-5b7e-9a51-7c2f0e3d9b10")


def stable_guid(kind: str, name: str) -> str:
    """A GUID derived from a name (UUID 5), stable across runs and machines."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}"))


@dataclass(frozen=True)
class Turn:
    """One speaker's stretch of a transcript."""

    speaker: str
    """Who speaks (a pseudonym or role, never a real name in shared data)."""
    start: int
    """Offset of the first character of the turn in the document text."""
    end: int
    """Offset just past the last character."""


@dataclass(frozen=True)
class Document:
    """A transcript or free-text answer with its speakers and metadata."""

    name: str
    """Unique name, e.g. ``"FG1 Site A parents"``."""
    text: str
    """Full plain text; segment offsets index into it."""
    kind: DocumentKind = "other"
    """What sort of document it is."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Attributes such as ``site``, ``group``, ``date``."""
    turns: tuple[Turn, ...] = ()
    """Speaker turns, in order (empty for a single-voice text)."""
    guid: str = ""
    """Exchange identifier; derived from the name when empty."""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InputError("A document needs a name.")
        if not self.guid:
            object.__setattr__(self, "guid", stable_guid("document", self.name))
        object.__setattr__(self, "metadata", dict(self.metadata))
        for t in self.turns:
            if not 0 <= t.start < t.end <= len(self.text):
                raise InputError(
                    f"Turn of {t.speaker!r} ({t.start}–{t.end}) lies outside document "
                    f"{self.name!r} ({len(self.text)} characters)."
                )

    @classmethod
    def from_transcript(
        cls,
        name: str,
        transcript: str,
        *,
        kind: DocumentKind = "focus_group",
        metadata: Mapping[str, str] | None = None,
    ) -> Document:
        """Build a document from lines written ``Speaker: what they said``.

        A line without a ``Speaker:`` prefix continues the previous turn.
        """
        turns: list[Turn] = []
        pattern = re.compile(r"^([^:\n]{1,60}):\s")
        offset = 0
        current: tuple[str, int] | None = None
        for line in transcript.splitlines(keepends=True):
            match = pattern.match(line)
            if match:
                if current is not None:
                    turns.append(Turn(current[0], current[1], offset))
                current = (match.group(1).strip(), offset)
            offset += len(line)
        if current is not None:
            turns.append(Turn(current[0], current[1], len(transcript.rstrip("\n"))))
        trimmed = tuple(
            Turn(t.speaker, t.start, t.start + len(transcript[t.start : t.end].rstrip()))
            for t in turns
        )
        return cls(name, transcript, kind, dict(metadata or {}), trimmed)

    def speaker_at(self, offset: int) -> str | None:
        """The speaker whose turn contains ``offset`` (None outside any turn)."""
        for t in self.turns:
            if t.start <= offset < t.end:
                return t.speaker
        return None

    @property
    def speakers(self) -> tuple[str, ...]:
        """Speakers in order of first appearance."""
        return tuple(dict.fromkeys(t.speaker for t in self.turns))


@dataclass(frozen=True)
class Code:
    """A code of the codebook."""

    name: str
    """Unique name."""
    definition: str = ""
    """When to apply it (and when not): the codebook definition."""
    parent: str | None = None
    """Name of the parent code; None at the top level."""
    color: str | None = None
    """Display colour ``#RRGGBB``."""
    guid: str = ""
    """Exchange identifier; derived from the name when empty."""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InputError("A code needs a name.")
        if self.color is not None and not re.fullmatch(r"#[0-9A-Fa-f]{6}", self.color):
            raise InputError(f"Colour of code {self.name!r} must be #RRGGBB, got {self.color!r}.")
        if not self.guid:
            object.__setattr__(self, "guid", stable_guid("code", self.name))


@dataclass(frozen=True)
class Codebook:
    """A hierarchy of codes with definitions."""

    codes: tuple[Code, ...]
    """All codes, parents before or after children (any order)."""

    def __post_init__(self) -> None:
        names = [c.name for c in self.codes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InputError(f"Code names must be unique; repeated: {', '.join(dup)}.")
        known = set(names)
        problems = [
            ErrorDetail(c.name, f"parent {c.parent!r} is not a code")
            for c in self.codes
            if c.parent is not None and c.parent not in known
        ]
        if problems:
            raise InputError("Some codes name a parent that does not exist.", problems)
        for c in self.codes:
            seen = {c.name}
            parent = c.parent
            while parent is not None:
                if parent in seen:
                    raise InputError(f"The codebook has a cycle through {c.name!r}.")
                seen.add(parent)
                parent = self[parent].parent

    def __getitem__(self, name: str) -> Code:
        for c in self.codes:
            if c.name == name:
                return c
        raise InputError(f"No code named {name!r} in the codebook.")

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.codes)

    def children(self, name: str | None) -> tuple[Code, ...]:
        """Direct children of a code (top-level codes for None)."""
        return tuple(c for c in self.codes if c.parent == name)

    def descendants(self, name: str) -> tuple[str, ...]:
        """Names of all codes below ``name``."""
        out: list[str] = []
        stack = [c.name for c in self.children(name)]
        while stack:
            n = stack.pop(0)
            out.append(n)
            stack.extend(c.name for c in self.children(n))
        return tuple(out)

    def path(self, name: str) -> tuple[str, ...]:
        """Names from the top-level ancestor down to ``name``."""
        out = [name]
        parent = self[name].parent
        while parent is not None:
            out.append(parent)
            parent = self[parent].parent
        return tuple(reversed(out))

    def render(self) -> str:
        """The hierarchy as indented text with definitions."""
        lines: list[str] = []

        def walk(parent: str | None, depth: int) -> None:
            for c in self.children(parent):
                definition = f" — {c.definition}" if c.definition else ""
                lines.append(f"{'  ' * depth}- {c.name}{definition}")
                walk(c.name, depth + 1)

        walk(None, 0)
        return "\n".join(lines)


@dataclass(frozen=True)
class CodedSegment:
    """A stretch of a document that a coder tagged with a code."""

    document: str
    """Document name."""
    start: int
    """Offset of the first character."""
    end: int
    """Offset just past the last character."""
    code: str
    """Code name."""
    coder: str
    """Who applied the code."""
    memo: str = ""
    """The coder's note on this segment."""
    guid: str = ""
    """Exchange identifier; derived from the other fields when empty."""

    def __post_init__(self) -> None:
        if not self.guid:
            key = f"{self.document}|{self.start}|{self.end}|{self.code}|{self.coder}"
            object.__setattr__(self, "guid", stable_guid("segment", key))


@dataclass(frozen=True)
class Quote:
    """A supporting quote for a theme: a stretch of a document."""

    document: str
    """Document name."""
    start: int
    """Offset of the first character."""
    end: int
    """Offset just past the last character."""
    guid: str = ""
    """Exchange identifier; derived when empty."""

    def __post_init__(self) -> None:
        if not self.guid:
            key = f"{self.document}|{self.start}|{self.end}"
            object.__setattr__(self, "guid", stable_guid("quote", key))


@dataclass(frozen=True)
class Theme:
    """A theme: a pattern of meaning across codes, with supporting quotes."""

    name: str
    """Theme name."""
    description: str = ""
    """What the theme says."""
    codes: tuple[str, ...] = ()
    """Codes that make up the theme."""
    quotes: tuple[Quote, ...] = ()
    """Supporting quotes."""
    guid: str = ""
    """Exchange identifier; derived from the name when empty."""

    def __post_init__(self) -> None:
        if not self.guid:
            object.__setattr__(self, "guid", stable_guid("theme", self.name))


@dataclass(frozen=True)
class QualitativeProject:
    """Documents, codebook, coded segments and themes of one qualitative study."""

    name: str
    """Project name."""
    documents: tuple[Document, ...] = ()
    """Transcripts and texts."""
    codebook: Codebook = field(default_factory=lambda: Codebook(()))
    """The codes."""
    segments: tuple[CodedSegment, ...] = ()
    """Coded segments of every coder."""
    themes: tuple[Theme, ...] = ()
    """Themes with supporting quotes."""
    description: str = ""
    """What the project is about."""

    def __post_init__(self) -> None:
        names = [d.name for d in self.documents]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InputError(f"Document names must be unique; repeated: {', '.join(dup)}.")
        problems: list[ErrorDetail] = []
        for i, s in enumerate(self.segments):
            where = f"segment {i}"
            if s.document not in names:
                problems.append(ErrorDetail(where, f"document {s.document!r} does not exist"))
                continue
            length = len(self.document(s.document).text)
            if not 0 <= s.start < s.end <= length:
                problems.append(
                    ErrorDetail(
                        where,
                        f"offsets {s.start}–{s.end} outside {s.document!r} ({length} characters)",
                    )
                )
            if s.code not in self.codebook:
                problems.append(ErrorDetail(where, f"code {s.code!r} is not in the codebook"))
            if not s.coder.strip():
                problems.append(ErrorDetail(where, "no coder named"))
        for t in self.themes:
            for c in t.codes:
                if c not in self.codebook:
                    problems.append(ErrorDetail(f"theme {t.name}", f"code {c!r} not in codebook"))
            for q in t.quotes:
                if q.document not in names:
                    problems.append(
                        ErrorDetail(
                            f"theme {t.name}", f"quote from unknown document {q.document!r}"
                        )
                    )
                elif not 0 <= q.start < q.end <= len(self.document(q.document).text):
                    problems.append(
                        ErrorDetail(f"theme {t.name}", f"quote {q.start}–{q.end} out of range")
                    )
        if problems:
            raise InputError("The qualitative project is inconsistent.", problems)

    # --- look-up ---------------------------------------------------------------

    def document(self, name: str) -> Document:
        """A document by name."""
        for d in self.documents:
            if d.name == name:
                return d
        raise InputError(f"No document named {name!r}.")

    @property
    def coders(self) -> tuple[str, ...]:
        """Coders in order of first appearance."""
        return tuple(dict.fromkeys(s.coder for s in self.segments))

    def text_of(self, item: CodedSegment | Quote) -> str:
        """The words a segment or quote covers."""
        return self.document(item.document).text[item.start : item.end]

    def summary(self) -> str:
        """What the project holds, in a sentence or two."""
        kinds = sorted({d.kind.replace("_", " ") for d in self.documents})
        speakers = {s for d in self.documents for s in d.speakers}
        return (
            f"Project {self.name!r}: {len(self.documents)} documents "
            f"({', '.join(kinds) or 'none'}) with {len(speakers)} speakers; a codebook of "
            f"{len(self.codebook.codes)} codes ({len(self.codebook.children(None))} at the top "
            f"level); {len(self.segments)} coded segments by {len(self.coders)} coders "
            f"({', '.join(self.coders) or 'none'}); {len(self.themes)} themes."
        )

    # --- changes (each returns a new project) ------------------------------------

    def with_documents(self, documents: Iterable[Document]) -> QualitativeProject:
        """A copy with documents added."""
        return replace(self, documents=(*self.documents, *documents))

    def with_segments(self, segments: Iterable[CodedSegment]) -> QualitativeProject:
        """A copy with coded segments added."""
        return replace(self, segments=(*self.segments, *segments))

    def with_themes(self, themes: Iterable[Theme]) -> QualitativeProject:
        """A copy with themes added."""
        return replace(self, themes=(*self.themes, *themes))

    def code(
        self,
        document: str,
        fragment: str,
        code: str,
        *,
        coder: str,
        occurrence: int = 1,
        memo: str = "",
    ) -> QualitativeProject:
        """A copy with ``fragment`` of ``document`` coded — offsets found for you.

        Args:
            document: Document name.
            fragment: Exact text to code.
            code: Code name.
            coder: Who codes.
            occurrence: Which occurrence of ``fragment`` (1 = first).
            memo: Optional note.
        """
        text = self.document(document).text
        start = -1
        for _ in range(occurrence):
            start = text.find(fragment, start + 1)
            if start < 0:
                raise InputError(
                    f"{fragment!r} occurs fewer than {occurrence} time(s) in {document!r}."
                )
        return self.with_segments(
            [CodedSegment(document, start, start + len(fragment), code, coder, memo)]
        )

    def quote(self, document: str, fragment: str) -> Quote:
        """A quote for ``fragment`` (its first occurrence) in ``document``."""
        start = self.document(document).text.find(fragment)
        if start < 0:
            raise InputError(f"{fragment!r} does not occur in {document!r}.")
        return Quote(document, start, start + len(fragment))


def codebook_from_rows(rows: Sequence[Mapping[str, str | None]]) -> Codebook:
    """A codebook from rows with ``name``, ``definition`` and optional ``parent``, ``color``."""
    codes = []
    for i, row in enumerate(rows):
        name = (row.get("name") or "").strip()
        if not name:
            raise InputError("Every codebook row needs a name.", [ErrorDetail(f"row {i}", "empty")])
        codes.append(
            Code(
                name=name,
                definition=(row.get("definition") or "").strip(),
                parent=(row.get("parent") or "").strip() or None,
                color=(row.get("color") or "").strip() or None,
            )
        )
    return Codebook(tuple(codes))
