"""Reports on real data: a learning community's or a learning cycle's report, HTML and PDF.

The demo's learning report, generalised to any installation: the community's
purpose, members by role, charter and decision rule, ranked priorities, its
cycles (aim, Plan, Do, the automatic Study with each measure's SPC chart,
its new phase at the change date and the effect with its 95% interval read
in plain words, the qualitative findings with their themes and coders'
agreement, Act), the latest NASSS assessment of each subject with where
members disagree, the maturity ratings round by round with their change and
next steps, and the decision log, failures included.

- :func:`community_report` / :func:`cycle_report` gather it for a member of
  the community (or the installation admin), audited, within what the
  caller may see of measure results (:mod:`.gathering`);
- :func:`write_report` writes the self-contained page and, when asked, its
  PDF printed by headless Chromium (:mod:`.page`, :mod:`.printing`).

``careloop report community|cycle ID`` is the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from careloop.core.errors import ErrorDetail, InputError
from careloop.practice.community_reports.gathering import (
    CommunityReport,
    CycleSection,
    MeasureSection,
    community_report,
    cycle_report,
)
from careloop.practice.community_reports.page import (
    change_words,
    effect_reading,
    maturity_reading,
    nasss_reading,
    render_html,
    write_html,
)
from careloop.practice.community_reports.printing import find_chromium, print_pdf

__all__ = [
    "CommunityReport",
    "CycleSection",
    "MeasureSection",
    "WrittenReport",
    "change_words",
    "community_report",
    "cycle_report",
    "effect_reading",
    "find_chromium",
    "maturity_reading",
    "nasss_reading",
    "print_pdf",
    "render_html",
    "write_report",
]


@dataclass(frozen=True)
class WrittenReport:
    """Where a report was written."""

    html: Path
    pdf: Path | None = None
    """The printed PDF (None when none was asked for)."""


def write_report(
    report: CommunityReport,
    out: Path,
    *,
    pdf: Path | None = None,
    chromium: Path | None = None,
) -> WrittenReport:
    """Write the report's page to ``out`` and, when ``pdf`` is given, print it there.

    ``chromium`` is the program to print with (the ``chromium`` setting);
    without it the PATH is searched.

    Raises:
        InputError: The folder of ``out`` or ``pdf`` does not exist.
        ConfigurationError: A PDF was asked for and no Chromium can print it.
    """
    missing = [
        ErrorDetail(option, "the folder does not exist; create it first", str(path.parent))
        for option, path in (("--out", out), ("--pdf", pdf))
        if path is not None and not path.parent.is_dir()
    ]
    if missing:
        raise InputError("Cannot write the report: a folder is missing.", missing)
    if pdf is not None:
        find_chromium(chromium)  # before writing anything: say so now if it cannot print
    html = write_html(report, out)
    printed = print_pdf(html, pdf, chromium=chromium) if pdf is not None else None
    return WrittenReport(html, printed)
