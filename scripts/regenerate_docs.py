"""Regenerate the generated tables in docs/ (policy table, error codes).

Run after changing the access policy or the error tree:
``.venv/bin/python scripts/regenerate_docs.py``; tests/test_docs.py fails
until the docs match the code.
"""

from __future__ import annotations

import re
from pathlib import Path

from careloop.core.errors import all_error_types
from careloop.trust.policy import policy_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _replace_table(text: str, header_start: str, table: str) -> str:
    pattern = re.compile(rf"^{re.escape(header_start)}.*?(?=\n\n|\Z)", re.S | re.M)
    if not pattern.search(text):
        raise SystemExit(f"no table starting with {header_start!r}")
    return pattern.sub(lambda _m: table, text, count=1)


def error_table() -> str:
    rows = ["| code | HTTP status | meaning |", "|---|---|---|"]
    for cls in all_error_types():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        rows.append(f"| `{cls.code}` | {cls.http_status} | {doc} |")
    return "\n".join(rows)


def main() -> None:
    security = DOCS / "security.md"
    security.write_text(_replace_table(security.read_text(), "| action |", policy_markdown()))
    errors = DOCS / "errors.md"
    errors.write_text(_replace_table(errors.read_text(), "| code | HTTP status |", error_table()))


if __name__ == "__main__":
    main()
