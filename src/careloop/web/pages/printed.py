"""Report pages as PDF: the page's body in a standalone document, printed by headless Chromium.

The same body template the app shows (``_impact_body.html``, ``_feedback_body.html``)
is wrapped in ``report_print.html`` with the stylesheet inline and every
``<details>`` open, written to a private temporary folder and printed with
:func:`careloop.practice.community_reports.print_pdf` (the program of the
``chromium`` setting), as ``careloop report ... --pdf`` does. The caller has
already been authorised by the domain call that made the report.
"""

from __future__ import annotations

import math
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from careloop.core.settings import Settings
from careloop.practice.community_reports import print_pdf
from careloop.web.pages.community import fmt_date, fmt_month

_STYLESHEET = Path(__file__).resolve().parent.parent / "static" / "careloop.css"
_PRINT_RULES = """
@page { size: A4; margin: 14mm 12mm; }
body.printed { background: #fff; }
body.printed main { max-width: none; padding: 0; }
body.printed .card { border: 0; padding: 0; margin: 0 0 12px; }
body.printed figure, body.printed tr, body.printed h2 { break-inside: avoid; }
body.printed h2 { break-after: avoid; }
body.printed figure.spc svg { max-width: 100%; height: auto; }
body.printed .downloads, body.printed summary { display: none; }
body.printed .card, body.printed .scroll { overflow: visible; }
body.printed table { font-size: 0.8rem; } body.printed th, body.printed td { padding: 3px 5px; }
"""


def pct(value: Any, *, scale: float = 100) -> str:
    """A share as a percentage to one decimal (``scale=1`` when it is a percentage
    already); "no data" for a missing or not-a-number value."""
    if value is None:
        return "no data"
    number = float(value)
    return "no data" if math.isnan(number) else f"{number * scale:.1f}%"


def report_words() -> dict[str, Any]:
    """The formatting helpers the report bodies use."""
    return {"pct": pct, "fmt_date": fmt_date, "fmt_month": fmt_month}


def pdf_response(
    request: Request, settings: Settings, body: str, context: dict[str, Any], filename: str
) -> Response:
    """The body template ``body`` filled in with ``context``, printed to PDF, as a download."""
    template = request.app.state.templates.env.get_template("report_print.html")
    html = template.render(
        **report_words(),
        **context,
        body=body,
        css=_STYLESHEET.read_text(encoding="utf-8") + _PRINT_RULES,
        printing=True,
        downloads=False,
        printed_on=datetime.now(UTC).date(),
    )
    with tempfile.TemporaryDirectory(prefix="careloop-print-") as folder:
        page = Path(folder) / "report.html"
        page.write_text(html, encoding="utf-8")
        printed = print_pdf(page, Path(folder) / "report.pdf", chromium=settings.chromium)
        data = printed.read_bytes()
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
