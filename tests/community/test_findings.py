"""Qualitative findings of a cycle: themes and kappa in its Study, transcripts restricted."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import func, select
from typer.testing import CliRunner

from careloop.analysis.qualitative import project_to_dict, write_qdpx
from careloop.cli.main import app
from careloop.community import (
    CycleInput,
    CycleMeasureInput,
    add_cycle,
    add_findings,
    list_findings,
    read_findings_project,
    read_project_file,
)
from careloop.community.study import qualitative_findings
from careloop.core.errors import InputError, NotFound, PermissionDenied
from careloop.store.models import CycleFindings
from tests.community.helpers import KNOWN_MEASURES, audit_rows, make_community, principal
from tests.community.qualitative_fixture import focus_group
from tests.foundation import build_installation, make_settings

runner = CliRunner()


def turn_vectors(project, code, coder):
    """Whether ``coder`` applied ``code`` (or a code below it, no: exactly it) to each turn."""
    out = []
    for doc in project.documents:
        for turn in doc.turns:
            out.append(
                int(
                    any(
                        s.document == doc.name
                        and s.coder == coder
                        and s.code == code
                        and s.start < turn.end
                        and turn.start < s.end
                        for s in project.segments
                    )
                )
            )
    return out


def test_kappa_per_code_matches_scikit_learn_on_the_turns_both_coders_coded():
    project = focus_group()
    found = qualitative_findings(project)
    by_code = {a.code: a for a in found.agreement}
    assert set(by_code) == {"preparation", "phone call", "delays", "access"}
    for code, agreement in by_code.items():
        ana, ben = turn_vectors(project, code, "Ana"), turn_vectors(project, code, "Ben")
        # Independent implementation: scikit-learn's cohen_kappa_score on the same turns.
        assert agreement.kappa == pytest.approx(cohen_kappa_score(ana, ben), abs=1e-12)
        assert agreement.units == len(ana) == 11
        assert agreement.coders == ("Ana", "Ben")
    # 'preparation' agrees on its one turn and nowhere else: perfect agreement.
    assert by_code["preparation"].kappa == pytest.approx(1.0)
    assert by_code["preparation"].interpretation.startswith("almost perfect")
    assert by_code["delays"].interpretation.startswith(
        {True: "moderate", False: "fair"}[by_code["delays"].kappa > 0.4]
    )


def test_themes_count_segments_participants_and_documents_with_codes_below_them():
    found = qualitative_findings(focus_group())
    themes = {t.name: t for t in found.themes}
    expect = themes["Knowing what to expect"]  # preparation and the phone call below it
    assert (expect.segments, expect.participants, expect.documents) == (7, 4, 2)
    assert expect.segments_by_coder == {"Ana": 4, "Ben": 3}
    waiting = themes["Waiting undoes the gains"]
    assert (waiting.segments, waiting.participants, waiting.documents) == (5, 3, 2)
    text = json.dumps(found.to_dict())
    assert "The call helped" not in text  # no transcript words in the Study
    assert found.double_coded_documents == 2


def test_a_document_only_one_coder_coded_does_not_count_against_agreement():
    project = focus_group()
    extra = project.with_documents(
        [type(project.documents[0]).from_transcript("FG3", "P1: Only Ana read this.\n")]
    ).code("FG3", "Only Ana read this", "access", coder="Ana")
    again = {a.code: a.kappa for a in qualitative_findings(extra).agreement}
    assert again == {a.code: a.kappa for a in qualitative_findings(project).agreement}


def cycle_of(inst, cid):
    data = CycleInput(
        title="Pre-visit planning",
        kind="process",
        do_start=date(2024, 2, 1),
        determination_kind="qi_determination",
        determination_ref="QI-1",
        measures=(CycleMeasureInput("remission-prevalence"),),
    )
    return add_cycle(
        inst.registry, principal(inst, "clinician@B"), cid, data, known_measures=KNOWN_MEASURES
    )


def count(inst) -> int:
    with inst.registry.transaction() as session:
        return session.scalar(select(func.count()).select_from(CycleFindings))


def test_researchers_and_the_owner_attach_and_read_members_see_the_study_others_nothing(
    installation,
):
    inst = installation
    cid = make_community(inst).community.id
    cycle = cycle_of(inst, cid)
    project = focus_group()
    before = count(inst)
    for key, error in (("patient@A", PermissionDenied), ("site_lead@B", PermissionDenied)):
        with pytest.raises(error):
            add_findings(inst.registry, principal(inst, key), cycle.id, project, source="json")
    with pytest.raises(NotFound):
        add_findings(inst.registry, principal(inst, "analyst"), 9999, project, source="json")
    assert count(inst) == before
    refused = [
        o for _, o, d in audit_rows(inst, "cycle.findings.add") if d.get("cycle") == cycle.id
    ]
    assert refused == ["denied", "denied"]

    added = add_findings(
        inst.registry, principal(inst, "analyst"), cycle.id, project, source="json"
    )
    assert count(inst) == before + 1
    seen = list_findings(inst.registry, principal(inst, "patient@A"), cycle.id)
    assert [f.id for f in seen] == [added.id]
    assert seen[0].summary["themes"][0]["participants"] == 4
    with pytest.raises(PermissionDenied):
        list_findings(inst.registry, principal(inst, "site_lead@B"), cycle.id)
    with pytest.raises(PermissionDenied, match="Transcripts"):
        read_findings_project(inst.registry, principal(inst, "patient@A"), added.id)
    for key in ("analyst", "clinician@B", "clinician@A"):  # researcher, owner, facilitator
        back = read_findings_project(inst.registry, principal(inst, key), added.id)
        assert project_to_dict(back) == project_to_dict(project)
    reads = [(who, o) for who, o, d in audit_rows(inst, "cycle.findings.read")]
    assert reads[-4:] == [
        (inst.emails["patient@A"], "denied"),
        (inst.emails["analyst"], "success"),
        (inst.emails["clinician@B"], "success"),
        (inst.emails["clinician@A"], "success"),
    ]


def test_a_malformed_project_file_is_refused_with_its_reason(tmp_path):
    bad = tmp_path / "broken.qdpx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"not a readable \.qdpx"):
        read_project_file(bad)
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(InputError, match="neither a REFI-QDA"):
        read_project_file(other)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError, match="Not a careloop qualitative project"):
        read_project_file(wrong)


def test_cycle_findings_add_at_the_command_line_and_the_cycle_show_json_has_them(tmp_path):
    inst = build_installation(make_settings(tmp_path, None))
    try:
        cid = make_community(inst).community.id
        cycle = cycle_of(inst, cid)
    finally:
        inst.registry.close()
    data = ["--data-dir", str(inst.settings.data_dir)]
    qdpx = write_qdpx(focus_group(), tmp_path / "fg.qdpx")
    bad = tmp_path / "bad.qdpx"
    bad.write_bytes(b"PK broken")
    failed = runner.invoke(app, ["cycle", "findings", "add", str(cycle.id), "--project", str(bad)])
    assert failed.exit_code != 0 and "qdpx" in failed.output
    done = runner.invoke(
        app, ["cycle", "findings", "add", str(cycle.id), "--project", str(qdpx), *data]
    )
    assert done.exit_code == 0, done.output
    shown = runner.invoke(app, ["cycle", "show", str(cycle.id), "--format", "json", *data])
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.output)["qualitative_findings"]
    assert len(found) == 1 and found[0]["source"] == "qdpx"
    kappas = {a["code"]: a["kappa"] for a in found[0]["summary"]["agreement"]}
    assert kappas["preparation"] == pytest.approx(1.0)
    table = runner.invoke(app, ["cycle", "show", str(cycle.id), *data])
    assert "Knowing what to expect" in table.output
    # The operator attached them: counted in the totals, in no member's row.
    engaged = runner.invoke(app, ["community", "engagement", str(cid), "--format", "json", *data])
    assert engaged.exit_code == 0, engaged.output
    figures = json.loads(engaged.output)
    assert figures["totals"]["findings_coded"] == 1 and figures["by_others"] == {
        "findings_coded": 1
    }
    shown_table = runner.invoke(app, ["community", "engagement", str(cid), *data])
    assert shown_table.exit_code == 0
    assert "2 contributions; patients and carers (2 members) made 0 (0%)" in shown_table.output


def test_the_api_shows_a_cycles_findings_to_members_only(api, installation):
    inst = installation
    cid = make_community(inst).community.id
    cycle = cycle_of(inst, cid)
    add_findings(inst.registry, principal(inst, "analyst"), cycle.id, focus_group(), source="json")
    path = f"/api/communities/{cid}/cycles/{cycle.id}/findings"
    got = api.get(path, headers={"Authorization": f"Bearer {inst.tokens['carer@B']}"})
    assert got.status_code == 200, got.text
    (one,) = got.json()
    assert one["summary"]["themes"][0]["name"] == "Knowing what to expect"
    assert "The call helped" not in got.text
    outsider = {"Authorization": f"Bearer {inst.tokens['site_lead@B']}"}
    assert api.get(path, headers=outsider).status_code == 403
