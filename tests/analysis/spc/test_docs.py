"""docs/analysis/spc.md is a tested contract: its examples run and print what the page says."""

from __future__ import annotations

import doctest
import warnings
from pathlib import Path

import pytest

from careloop.analysis import spc

REPO = Path(__file__).resolve().parents[3]
PAGE = REPO / "docs" / "analysis" / "spc.md"


def test_every_example_on_the_spc_page_prints_what_the_page_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(PAGE.read_text(encoding="utf-8"), {}, PAGE.name, str(PAGE), 0)
    assert len(test.examples) > 20
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    with warnings.catch_warnings():
        # The page shows charts, not caveats (short parts warn; tested in test_spc.py).
        warnings.simplefilter("ignore", spc.SpcWarning)
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_every_option_of_qic_is_documented() -> None:
    import inspect

    text = PAGE.read_text(encoding="utf-8")
    for name in inspect.signature(spc.qic).parameters:
        assert f"`{name}`" in text, name
