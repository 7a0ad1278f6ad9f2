"""Qualitative projects: transcripts, codebook, frequencies, co-occurrence, agreement, REFI-QDA."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from datetime import UTC, datetime

import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from careloop.analysis.qualitative import (
    Code,
    Codebook,
    CodedSegment,
    Document,
    QualitativeProject,
    Theme,
    agreement_by_code,
    co_occurrence,
    code_frequencies,
    codebook_from_rows,
    coding_table,
    project_to_qde,
    quotes_for,
    read_qdpx,
    theme_report,
    write_qdpx,
)
from careloop.core.errors import InputError

FG1 = """Moderator: What makes clinic visits hard?
Parent A: The drive is two hours and parking costs a fortune.
Parent B: We never know who we will see, a different doctor each time.
Parent A: And nobody calls back about results.
"""

FG2 = """Moderator: What helps?
Teen C: Texting the nurse. She answers the same day.
Parent D: Seeing the same doctor, who knows our story.
"""

CODEBOOK = Codebook(
    (
        Code("Access", "Anything that makes reaching care hard or easy", color="#1F77B4"),
        Code("Travel", "Distance, transport, parking", parent="Access"),
        Code("Communication", "Information flow between family and team"),
        Code("Continuity", "Seeing the same clinician over time", parent="Communication"),
        Code("Responsiveness", "How fast the team answers", parent="Communication"),
    )
)


def _project() -> QualitativeProject:
    docs = (
        Document.from_transcript("FG1", FG1, metadata={"site": "A", "group": "parents"}),
        Document.from_transcript("FG2", FG2, metadata={"site": "B", "group": "mixed"}),
    )
    p = QualitativeProject("Clinic visits", docs, CODEBOOK, description="Two focus groups")
    for coder in ("ana", "ben"):
        p = p.code(
            "FG1", "The drive is two hours and parking costs a fortune", "Travel", coder=coder
        )
        p = p.code("FG1", "a different doctor each time", "Continuity", coder=coder)
        p = p.code("FG2", "Seeing the same doctor, who knows our story", "Continuity", coder=coder)
    p = p.code(
        "FG1",
        "nobody calls back about results",
        "Responsiveness",
        coder="ana",
        memo="results follow-up",
    )
    p = p.code("FG2", "She answers the same day", "Responsiveness", coder="ana")
    p = p.code("FG2", "She answers the same day", "Responsiveness", coder="ben")
    p = p.code("FG1", "parking costs a fortune", "Access", coder="ben")
    theme = Theme(
        "Relationships carry care",
        "Families value knowing who they will see and being answered quickly.",
        codes=("Continuity", "Responsiveness"),
        quotes=(p.quote("FG2", "Seeing the same doctor, who knows our story"),),
    )
    return p.with_themes([theme])


def test_transcript_lines_become_speaker_turns():
    doc = Document.from_transcript("FG1", FG1)
    assert doc.speakers == ("Moderator", "Parent A", "Parent B")
    assert len(doc.turns) == 4
    assert doc.text[doc.turns[1].start : doc.turns[1].end].startswith("Parent A: The drive")
    assert doc.speaker_at(FG1.index("nobody")) == "Parent A"
    assert doc.speaker_at(FG1.index("different")) == "Parent B"


def test_codebook_is_a_hierarchy_with_definitions():
    assert CODEBOOK.path("Continuity") == ("Communication", "Continuity")
    assert set(CODEBOOK.descendants("Communication")) == {"Continuity", "Responsiveness"}
    assert "  - Travel — Distance, transport, parking" in CODEBOOK.render()
    rows = [{"name": "A", "definition": "a"}, {"name": "B", "parent": "A", "definition": ""}]
    assert codebook_from_rows(rows).path("B") == ("A", "B")


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        ((Code("A"), Code("A")), "unique"),
        ((Code("A", parent="Z"),), "parent"),
        ((Code("A", parent="B"), Code("B", parent="A")), "cycle"),
    ],
)
def test_bad_codebooks_are_refused(codes, message):
    with pytest.raises(InputError, match=message):
        Codebook(codes)


def test_code_colours_must_be_hex():
    with pytest.raises(InputError, match="RRGGBB"):
        Code("A", color="blue")


def test_segments_must_point_at_real_text_and_codes():
    p = _project()
    with pytest.raises(InputError, match="inconsistent") as info:
        p.with_segments(
            [
                CodedSegment("FG1", 10, 10_000, "Travel", "ana"),
                CodedSegment("FG1", 0, 5, "Nope", "ana"),
            ]
        )
    text = str(info.value)
    assert "outside" in text and "not in the codebook" in text


def test_code_frequencies_by_document_site_and_speaker():
    p = _project()
    by_doc = code_frequencies(p, coder="ana")
    # by hand, coder ana: FG1 Travel 1, Continuity 1, Responsiveness 1; FG2 Continuity 1,
    # Responsiveness 1
    got = {(r.code, r.document): r.segments for r in by_doc.itertuples()}
    assert got == {
        ("Continuity", "FG1"): 1,
        ("Continuity", "FG2"): 1,
        ("Responsiveness", "FG1"): 1,
        ("Responsiveness", "FG2"): 1,
        ("Travel", "FG1"): 1,
    }
    by_site = code_frequencies(p, by="site", include_descendants=True)
    row = by_site[(by_site["code"] == "Communication") & (by_site["site"] == "B")].iloc[0]
    assert row["segments"] == 4  # 2 Continuity + 2 Responsiveness in FG2 (both coders)
    by_speaker = code_frequencies(p, by="speaker")
    parent_a = by_speaker[by_speaker["speaker"] == "Parent A"]
    assert set(parent_a["code"]) == {"Travel", "Responsiveness", "Access"}
    with pytest.raises(InputError, match="no metadata field"):
        code_frequencies(p, by="region")


def test_co_occurrence_counts_overlaps_turns_and_documents():
    p = _project()
    overlap = co_occurrence(p)
    # ben's Access segment lies inside both coders' Travel segments
    assert overlap.loc["Access", "Travel"] == 2 == overlap.loc["Travel", "Access"]
    assert overlap.loc["Continuity", "Travel"] == 0
    turns = co_occurrence(p, within="turn", coder="ana")
    assert turns.loc["Travel", "Responsiveness"] == 0  # different turns of Parent A
    docs = co_occurrence(p, within="document", coder="ana")
    assert docs.loc["Travel", "Responsiveness"] == 1  # both in FG1
    assert docs.loc["Continuity", "Continuity"] == 2  # documents with Continuity


def test_quotes_for_a_code_carry_speaker_and_metadata():
    quotes = quotes_for(_project(), "Continuity", coder="ben")
    assert list(quotes["speaker"]) == ["Parent B", "Parent D"]
    assert list(quotes["site"]) == ["A", "B"]
    assert quotes.iloc[1]["text"] == "Seeing the same doctor, who knows our story"


def test_agreement_by_code_matches_sklearn_on_the_coding_table():
    p = _project()
    result = agreement_by_code(p, unit="turn").set_index("code")
    table = coding_table(p, unit="turn")
    resp = table[table["code"] == "Responsiveness"].pivot(
        index="unit", columns="coder", values="applied"
    )
    # ana coded Responsiveness in 2 turns, ben in 1 → kappa by sklearn
    assert result.loc["Responsiveness", "kappa"] == pytest.approx(
        cohen_kappa_score(resp["ana"], resp["ben"])
    )
    assert result.loc["Continuity", "kappa"] == pytest.approx(1.0)
    assert result.loc["Continuity", "percent_agreement"] == 100
    # nobody applied the parent code Communication: no number, a reason instead
    assert pd.isna(result.loc["Communication", "kappa"])
    assert "no variation" in result.loc["Communication", "note"]


def test_agreement_needs_two_coders():
    p = _project()
    one = QualitativeProject(
        p.name, p.documents, p.codebook, tuple(s for s in p.segments if s.coder == "ana")
    )
    with pytest.raises(InputError, match="one coder only"):
        agreement_by_code(one)


def test_theme_report_quotes_the_speaker():
    text = theme_report(_project())
    assert "Relationships carry care" in text
    assert '"Seeing the same doctor, who knows our story" (FG2, Parent D)' in text


# --- REFI-QDA -----------------------------------------------------------------------

Q = "{urn:QDA-XML:project:1.0}"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Child order and required attributes of the element types careloop writes, transcribed
# from the REFI-QDA Project.xsd (QDA-XML 1.0, 18 March 2019) sequences.
ORDER = {
    "Project": [
        "Users",
        "CodeBook",
        "Variables",
        "Cases",
        "Sources",
        "Notes",
        "Links",
        "Sets",
        "Graphs",
        "Description",
        "NoteRef",
    ],
    "Code": ["Description", "NoteRef", "Code"],
    "Case": ["Description", "CodeRef", "VariableValue", "SourceRef", "SelectionRef"],
    "TextSource": [
        "Description",
        "PlainTextContent",
        "PlainTextSelection",
        "Coding",
        "NoteRef",
        "VariableValue",
    ],
    "PlainTextSelection": ["Description", "Coding", "NoteRef"],
    "Coding": ["CodeRef", "NoteRef"],
    "VariableValue": ["VariableRef", "TextValue"],
    "Set": ["Description", "MemberCode", "MemberSource", "MemberNote"],
}
REQUIRED = {
    "Project": ["name"],
    "User": ["guid"],
    "Code": ["guid", "name", "isCodable"],
    "Variable": ["guid", "name", "typeOfVariable"],
    "Case": ["guid"],
    "TextSource": ["guid"],
    "PlainTextSelection": ["guid", "startPosition", "endPosition"],
    "Coding": ["guid"],
    "CodeRef": ["targetGUID"],
    "SelectionRef": ["targetGUID"],
    "VariableRef": ["targetGUID"],
    "Set": ["guid", "name"],
    "MemberCode": ["targetGUID"],
    "Link": ["guid"],
}


def _check_against_schema_rules(root: ET.Element) -> None:
    assert root.tag == f"{Q}Project"
    guids = set()
    for el in root.iter():
        assert el.tag.startswith(Q), f"{el.tag} is outside the REFI-QDA namespace"
        tag = el.tag[len(Q) :]
        for attr in REQUIRED.get(tag, []):
            assert el.get(attr), f"{tag} lacks required {attr}"
        if tag in ORDER:
            positions = [ORDER[tag].index(child.tag[len(Q) :]) for child in el]
            assert positions == sorted(positions), f"children of {tag} out of schema order"
        for attr in ("guid", "targetGUID", "creatingUser", "originGUID"):
            if el.get(attr):
                assert GUID.match(el.get(attr)), f"{tag}@{attr} is not a GUID"
        if el.get("guid"):
            guids.add(el.get("guid"))
        if tag == "Variable":
            assert el.get("typeOfVariable") in {
                "Text",
                "Boolean",
                "Integer",
                "Float",
                "Date",
                "DateTime",
            }
        if el.get("color"):
            assert re.fullmatch(r"#([A-Fa-f0-9]{6}|[A-Fa-f0-9]{3})", el.get("color"))
    for el in root.iter():
        for attr in ("targetGUID", "creatingUser", "originGUID"):
            if el.get(attr):
                assert el.get(attr) in guids, f"{attr} {el.get(attr)} points nowhere"


def test_qdpx_export_follows_the_refi_qda_schema(tmp_path):
    path = write_qdpx(
        _project(), tmp_path / "clinic.qdpx", created=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    )
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        root = ET.fromstring(zf.read("project.qde"))
    assert "project.qde" in names
    _check_against_schema_rules(root)
    sources = list(root.iter(f"{Q}TextSource"))
    assert {f"sources/{s.get('guid')}.txt" for s in sources} <= names
    assert all(s.get("plainTextPath").startswith("internal://") for s in sources)
    assert root.get("creationDateTime") == "2026-01-02T03:04:05Z"


def test_qdpx_round_trip_keeps_documents_codes_segments_and_themes(tmp_path):
    original = _project()
    again = read_qdpx(write_qdpx(original, tmp_path / "p.qdpx"))
    assert again.name == original.name and again.description == original.description
    assert again.documents == original.documents
    assert set(again.codebook.codes) == set(original.codebook.codes)
    assert set(again.segments) == set(original.segments)
    assert again.themes == original.themes
    assert code_frequencies(again).equals(code_frequencies(original))


def test_qdpx_from_another_tool_is_read(tmp_path):
    # Hand-written like other tools' exports: inline text, #RGB colour, a code name
    # used under two parents, coding user on the selection only.
    qde = """<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="Imported">
 <Users><User guid="11111111-1111-1111-1111-111111111111" name="Zoe"/></Users>
 <CodeBook><Codes>
  <Code guid="22222222-2222-2222-2222-222222222222" name="Barriers" isCodable="true" color="#F00">
   <Code guid="33333333-3333-3333-3333-333333333333" name="Other" isCodable="true"/>
  </Code>
  <Code guid="44444444-4444-4444-4444-444444444444" name="Enablers" isCodable="true">
   <Code guid="55555555-5555-5555-5555-555555555555" name="Other" isCodable="true"/>
  </Code>
 </Codes></CodeBook>
 <Sources>
  <TextSource guid="66666666-6666-6666-6666-666666666666" name="Survey 12">
   <PlainTextContent>The bus never comes on time.</PlainTextContent>
   <PlainTextSelection guid="77777777-7777-7777-7777-777777777777" startPosition="4"
     endPosition="7" creatingUser="11111111-1111-1111-1111-111111111111">
    <Coding guid="88888888-8888-8888-8888-888888888888">
     <CodeRef targetGUID="33333333-3333-3333-3333-333333333333"/>
    </Coding>
   </PlainTextSelection>
  </TextSource>
 </Sources>
</Project>"""
    path = tmp_path / "other.qdpx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.qde", qde)
    p = read_qdpx(path)
    assert p.codebook["Barriers"].color == "#FF0000"
    assert {c.name for c in p.codebook.codes} == {
        "Barriers",
        "Barriers/Other",
        "Enablers",
        "Enablers/Other",
    }
    (seg,) = p.segments
    assert (seg.code, seg.coder, p.text_of(seg)) == ("Barriers/Other", "Zoe", "bus")


def test_bad_qdpx_files_give_clear_errors(tmp_path):
    not_zip = tmp_path / "a.qdpx"
    not_zip.write_text("hello")
    with pytest.raises(InputError, match="not a readable"):
        read_qdpx(not_zip)
    empty = tmp_path / "b.qdpx"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("other.xml", "<x/>")
    with pytest.raises(InputError, match=r"no project\.qde"):
        read_qdpx(empty)
    wrong = tmp_path / "c.qdpx"
    with zipfile.ZipFile(wrong, "w") as zf:
        zf.writestr("project.qde", "<Project name='x'/>")
    with pytest.raises(InputError, match="namespace"):
        read_qdpx(wrong)


def test_project_to_qde_is_utf8_xml_with_declaration():
    xml = project_to_qde(_project())
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")


def test_project_summary_counts_what_it_holds():
    text = _project().summary()
    assert "2 documents (focus group)" in text
    assert "5 codes (2 at the top level)" in text
    assert "by 2 coders (ana, ben)" in text and "1 themes" in text
