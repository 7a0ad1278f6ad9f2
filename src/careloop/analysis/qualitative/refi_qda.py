"""REFI-QDA project exchange (``.qdpx``): move coding to and from NVivo, ATLAS.ti, MAXQDA.

A ``.qdpx`` file is a zip holding ``project.qde`` — XML in the namespace
``urn:QDA-XML:project:1.0`` following the REFI-QDA Project schema (version
1.0, 18 March 2019; REFI-QDA standard 1.5) — and the source texts under
``sources/``. careloop writes and reads:

============================  ==============================================
careloop                      REFI-QDA
============================  ==============================================
coder                         ``User``
codebook (hierarchy)          ``CodeBook/Codes/Code`` (nested), definition as
                              ``Description``
document                      ``TextSource`` with ``plainTextPath``
                              ``internal://<guid>.txt``
document metadata and kind    ``Variable`` (Text) + ``VariableValue``
coded segment                 ``PlainTextSelection`` with one ``Coding``
                              (``creatingUser`` = coder), memo as
                              ``Description``
speaker turn                  ``PlainTextSelection`` without coding, listed by
                              the speaker's ``Case`` (``SelectionRef``)
theme                         ``Set`` with ``MemberCode``; each supporting
                              quote a ``PlainTextSelection`` linked from the
                              set by a ``Link`` named "supporting quote"
============================  ==============================================

Offsets are character (code point) positions in the plain text, as the
standard requires.
"""

from __future__ import annotations

import io
import re
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from careloop.analysis.qualitative.project import (
    Code,
    Codebook,
    CodedSegment,
    Document,
    QualitativeProject,
    Quote,
    Theme,
    Turn,
    stable_guid,
)
from careloop.core.errors import InputError

NS = "urn:QDA-XML:project:1.0"
_Q = f"{{{NS}}}"
_KIND_VARIABLE = "Document kind"
_QUOTE_LINK = "supporting quote"
_KINDS = ("focus_group", "interview", "survey_response", "field_notes", "other")
_GUID = re.compile(
    r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$"
)


def _sub(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, f"{_Q}{tag}", attrs)


def _turn_guid(doc: Document, index: int, turn: Turn) -> str:
    return stable_guid("turn", f"{doc.name}|{index}|{turn.start}|{turn.end}")


def project_to_qde(project: QualitativeProject, *, created: datetime | None = None) -> bytes:
    """The ``project.qde`` XML of a project (UTF-8 bytes).

    Long because it writes the document's sections one after another in the order the
    REFI-QDA schema requires (users, codebook, variables, cases, sources, links, sets).
    """
    when = (created or datetime.now(UTC)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    ET.register_namespace("", NS)
    root = ET.Element(
        f"{_Q}Project", {"name": project.name, "origin": "careloop", "creationDateTime": when}
    )
    user_guid = {c: stable_guid("coder", c) for c in project.coders}
    if user_guid:
        users = _sub(root, "Users")
        for name, guid in user_guid.items():
            _sub(users, "User", guid=guid, name=name)
    codes = project.codebook
    if codes.codes:
        codes_el = _sub(_sub(root, "CodeBook"), "Codes")

        def add(parent_el: ET.Element, parent: str | None) -> None:
            for code in codes.children(parent):
                attrs = {"guid": code.guid, "name": code.name, "isCodable": "true"}
                if code.color:
                    attrs["color"] = code.color
                el = _sub(parent_el, "Code", **attrs)
                if code.definition:
                    _sub(el, "Description").text = code.definition
                add(el, code.name)

        add(codes_el, None)
    keys = sorted({k for d in project.documents for k in d.metadata})
    var_guid = {k: stable_guid("variable", k) for k in [_KIND_VARIABLE, *keys]}
    if project.documents:
        variables = _sub(root, "Variables")
        for name, guid in var_guid.items():
            _sub(variables, "Variable", guid=guid, name=name, typeOfVariable="Text")
    speakers: dict[str, list[str]] = {}
    for doc in project.documents:
        for i, t in enumerate(doc.turns):
            speakers.setdefault(t.speaker, []).append(_turn_guid(doc, i, t))
    if speakers:
        cases = _sub(root, "Cases")
        for speaker, refs in speakers.items():
            case = _sub(cases, "Case", guid=stable_guid("speaker", speaker), name=speaker)
            for ref in refs:
                _sub(case, "SelectionRef", targetGUID=ref)
    if project.documents:
        sources = _sub(root, "Sources")
        for doc in project.documents:
            src = _sub(
                sources,
                "TextSource",
                guid=doc.guid,
                name=doc.name,
                plainTextPath=f"internal://{doc.guid}.txt",
                creationDateTime=when,
            )
            for seg in (s for s in project.segments if s.document == doc.name):
                sel = _sub(
                    src,
                    "PlainTextSelection",
                    guid=seg.guid,
                    name=seg.code,
                    startPosition=str(seg.start),
                    endPosition=str(seg.end),
                    creatingUser=user_guid[seg.coder],
                    creationDateTime=when,
                )
                if seg.memo:
                    _sub(sel, "Description").text = seg.memo
                coding = _sub(
                    sel,
                    "Coding",
                    guid=stable_guid("coding", seg.guid),
                    creatingUser=user_guid[seg.coder],
                    creationDateTime=when,
                )
                _sub(coding, "CodeRef", targetGUID=codes[seg.code].guid)
            for i, t in enumerate(doc.turns):
                _sub(
                    src,
                    "PlainTextSelection",
                    guid=_turn_guid(doc, i, t),
                    name=f"turn: {t.speaker}",
                    startPosition=str(t.start),
                    endPosition=str(t.end),
                )
            for theme in project.themes:
                for q in (q for q in theme.quotes if q.document == doc.name):
                    _sub(
                        src,
                        "PlainTextSelection",
                        guid=q.guid,
                        name=f"quote: {theme.name}",
                        startPosition=str(q.start),
                        endPosition=str(q.end),
                    )
            values = {_KIND_VARIABLE: doc.kind, **doc.metadata}
            for name, value in values.items():
                vv = _sub(src, "VariableValue")
                _sub(vv, "VariableRef", targetGUID=var_guid[name])
                _sub(vv, "TextValue").text = value
    links = [(t, q) for t in project.themes for q in t.quotes]
    if links:
        links_el = _sub(root, "Links")
        for theme, q in links:
            _sub(
                links_el,
                "Link",
                guid=stable_guid("link", f"{theme.guid}|{q.guid}"),
                name=_QUOTE_LINK,
                direction="OneWay",
                originGUID=theme.guid,
                targetGUID=q.guid,
            )
    if project.themes:
        sets = _sub(root, "Sets")
        for theme in project.themes:
            set_el = _sub(sets, "Set", guid=theme.guid, name=theme.name)
            if theme.description:
                _sub(set_el, "Description").text = theme.description
            for c in theme.codes:
                _sub(set_el, "MemberCode", targetGUID=codes[c].guid)
    if project.description:
        _sub(root, "Description").text = project.description
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def write_qdpx(
    project: QualitativeProject, path: str | Path, *, created: datetime | None = None
) -> Path:
    """Write a REFI-QDA ``.qdpx`` file (project.qde plus sources/*.txt)."""
    target = Path(path)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("project.qde", project_to_qde(project, created=created))
        for doc in project.documents:
            zf.writestr(f"sources/{doc.guid}.txt", doc.text.encode("utf-8"))
    return target


# --- reading ---------------------------------------------------------------------


def _children(el: ET.Element | None, tag: str) -> Iterator[ET.Element]:
    if el is None:
        return iter(())
    return iter(el.findall(f"{_Q}{tag}"))


def _text(el: ET.Element | None, tag: str) -> str:
    if el is None:
        return ""
    child = el.find(f"{_Q}{tag}")
    return (child.text or "") if child is not None else ""


def _color(value: str | None) -> str | None:
    if not value:
        return None
    if re.fullmatch(r"#[0-9A-Fa-f]{3}", value):
        return "#" + "".join(ch * 2 for ch in value[1:])
    return value if re.fullmatch(r"#[0-9A-Fa-f]{6}", value) else None


def read_qdpx(path: str | Path) -> QualitativeProject:
    """Read a REFI-QDA ``.qdpx`` file into a project.

    Text sources are read (from ``sources/`` or inline ``PlainTextContent``);
    picture, PDF, audio and video sources are skipped. Codings become coded
    segments, with the coding's (or the selection's) creating user as coder.

    Raises:
        InputError: Not a zip, no ``project.qde``, not the REFI-QDA namespace,
            or references that point nowhere.
    """
    try:
        zf = zipfile.ZipFile(Path(path))
    except (zipfile.BadZipFile, FileNotFoundError) as exc:
        raise InputError(f"{path} is not a readable .qdpx (zip) file: {exc}") from exc
    with zf:
        names = set(zf.namelist())
        if "project.qde" not in names:
            raise InputError(f"{path} has no project.qde; it is not a REFI-QDA project.")
        xml = zf.read("project.qde")

        def source_text(ref: str) -> str:
            member = ref.removeprefix("internal://")
            for candidate in (f"sources/{member}", f"Sources/{member}", member):
                if candidate in names:
                    return zf.read(candidate).decode("utf-8-sig")
            raise InputError(f"Source file {ref!r} named in project.qde is not in the archive.")

        return _project_from_xml(xml, source_text)


def _project_from_xml(xml: bytes, source_text: Callable[[str], str]) -> QualitativeProject:
    """Read a REFI-QDA project document (project.qde) into a QualitativeProject.

    Long because it reads the document's sections one after another (users, codebook,
    cases, links, sources, sets), later ones resolving the ids of earlier ones.
    """
    # ElementTree resolves no external entities and Python's expat refuses
    # entity-expansion bombs, so parsing an untrusted project file is safe here.
    try:
        root = ET.parse(io.BytesIO(xml)).getroot()  # noqa: S314
    except ET.ParseError as exc:
        raise InputError(f"project.qde is not well-formed XML: {exc}") from exc
    if root.tag != f"{_Q}Project":
        raise InputError(
            f"project.qde's root is {root.tag!r}, not a REFI-QDA Project in namespace {NS}."
        )
    users = {
        u.get("guid", ""): (u.get("name") or u.get("guid") or "")
        for u in _children(root.find(f"{_Q}Users"), "User")
    }
    codes, by_guid_name = _codebook(root)
    variables = {
        v.get("guid", ""): v.get("name", "")
        for v in _children(root.find(f"{_Q}Variables"), "Variable")
    }
    speaker_of: dict[str, str] = {}
    for case in _children(root.find(f"{_Q}Cases"), "Case"):
        for ref in _children(case, "SelectionRef"):
            speaker_of[ref.get("targetGUID", "")] = case.get("name", "") or "(unnamed case)"
    quote_links: dict[str, list[str]] = {}
    for link in _children(root.find(f"{_Q}Links"), "Link"):
        if link.get("name") == _QUOTE_LINK:
            quote_links.setdefault(link.get("originGUID", ""), []).append(
                link.get("targetGUID", "")
            )
    documents: list[Document] = []
    segments: list[CodedSegment] = []
    selections: dict[str, Quote] = {}
    for src in _children(root.find(f"{_Q}Sources"), "TextSource"):
        name = src.get("name") or src.get("guid") or ""
        inline = src.find(f"{_Q}PlainTextContent")
        if inline is not None:
            text = inline.text or ""
        elif src.get("plainTextPath"):
            text = source_text(src.get("plainTextPath", ""))
        else:
            raise InputError(f"Text source {name!r} has neither PlainTextContent nor a path.")
        metadata: dict[str, str] = {}
        kind = "other"
        for vv in _children(src, "VariableValue"):
            var_ref = vv.find(f"{_Q}VariableRef")
            var = variables.get(var_ref.get("targetGUID", "") if var_ref is not None else "", "")
            value = next((child.text or "" for child in vv if child.tag != f"{_Q}VariableRef"), "")
            if var == _KIND_VARIABLE and value in _KINDS:
                kind = value
            elif var:
                metadata[var] = value
        turns: list[Turn] = []
        for sel in _children(src, "PlainTextSelection"):
            guid = sel.get("guid", "")
            start, end = int(sel.get("startPosition", "0")), int(sel.get("endPosition", "0"))
            codings = list(_children(sel, "Coding"))
            if guid in speaker_of and not codings:
                turns.append(Turn(speaker_of[guid], start, end))
                continue
            if not codings:
                selections[guid] = Quote(name, start, end, guid=guid)
                continue
            memo = _text(sel, "Description")
            for coding in codings:
                code_ref = coding.find(f"{_Q}CodeRef")
                target = code_ref.get("targetGUID", "") if code_ref is not None else ""
                if target not in by_guid_name:
                    raise InputError(
                        f"A coding in {name!r} refers to code {target!r}, not in the codebook."
                    )
                user = coding.get("creatingUser") or sel.get("creatingUser") or ""
                coder = users.get(user, user) or "unknown coder"
                seg_guid = guid if len(codings) == 1 else coding.get("guid", "")
                segments.append(
                    CodedSegment(
                        name,
                        start,
                        end,
                        by_guid_name[target],
                        coder,
                        memo,
                        guid=seg_guid if _GUID.match(seg_guid or "") else "",
                    )
                )
        documents.append(
            Document(
                name=name,
                text=text,
                kind=kind,  # type: ignore[arg-type]
                metadata=metadata,
                turns=tuple(sorted(turns, key=lambda t: t.start)),
                guid=src.get("guid", "") or str(uuid.uuid4()),
            )
        )
    themes = []
    for set_el in _children(root.find(f"{_Q}Sets"), "Set"):
        member_codes = tuple(
            by_guid_name[m.get("targetGUID", "")]
            for m in _children(set_el, "MemberCode")
            if m.get("targetGUID", "") in by_guid_name
        )
        guid = set_el.get("guid", "")
        quotes = tuple(selections[g] for g in quote_links.get(guid, []) if g in selections)
        themes.append(
            Theme(
                name=set_el.get("name", ""),
                description=_text(set_el, "Description"),
                codes=member_codes,
                quotes=quotes,
                guid=guid,
            )
        )
    return QualitativeProject(
        name=root.get("name", ""),
        documents=tuple(documents),
        codebook=Codebook(codes),
        segments=tuple(segments),
        themes=tuple(themes),
        description=_text(root, "Description"),
    )


def _codebook(root: ET.Element) -> tuple[tuple[Code, ...], dict[str, str]]:
    """The project's codes, and each code's name by its GUID.

    Names must be unique in careloop: a repeated name is prefixed with its
    parent's, and one still taken gets the start of its GUID.
    """
    raw_codes: list[tuple[ET.Element, str | None]] = []

    def walk(el: ET.Element, parent_guid: str | None) -> None:
        for c in _children(el, "Code"):
            raw_codes.append((c, parent_guid))
            walk(c, c.get("guid"))

    codebook_el = root.find(f"{_Q}CodeBook")
    if codebook_el is not None:
        codes_el = codebook_el.find(f"{_Q}Codes")
        walk(codes_el if codes_el is not None else codebook_el, None)
    by_guid_name: dict[str, str] = {}
    counts: dict[str, int] = {}
    for c, _ in raw_codes:
        counts[c.get("name", "")] = counts.get(c.get("name", ""), 0) + 1
    for c, parent in raw_codes:
        name = c.get("name", "") or c.get("guid", "")
        if counts.get(name, 0) > 1 and parent is not None:
            name = f"{by_guid_name[parent]}/{name}"
        if name in by_guid_name.values():
            name = f"{name} [{c.get('guid', '')[:8]}]"
        by_guid_name[c.get("guid", "")] = name
    codes = tuple(
        Code(
            name=by_guid_name[c.get("guid", "")],
            definition=_text(c, "Description"),
            parent=by_guid_name[parent] if parent else None,
            color=_color(c.get("color")),
            guid=c.get("guid", ""),
        )
        for c, parent in raw_codes
    )
    return codes, by_guid_name
