"""The demo's synthetic focus groups: consistent, double-coded, kappa as scikit-learn says."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from careloop.community.study import qualitative_findings
from careloop.demo.focus_group import focus_groups
from tests.community.test_findings import turn_vectors


def test_the_demo_focus_groups_have_three_themes_and_kappa_per_code_as_scikit_learn_computes():
    project = focus_groups()
    found = qualitative_findings(project)
    assert found.coders == ("coder A", "coder B") and found.double_coded_documents == 2
    assert [(t.name, t.segments, t.participants, t.documents) for t in found.themes] == [
        ("Arriving prepared", 9, 4, 2),
        ("Being asked", 4, 2, 1),
        ("Not everyone was reached", 11, 4, 2),
    ]
    for a in found.agreement:
        a_turns = turn_vectors(project, a.code, "coder A")
        b_turns = turn_vectors(project, a.code, "coder B")
        assert a.kappa == pytest.approx(cohen_kappa_score(a_turns, b_turns), abs=1e-12)
