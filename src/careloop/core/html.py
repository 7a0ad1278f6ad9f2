"""Standalone HTML pages (reports written to a file or served as they are) from Jinja2 templates.

One mechanism for every page careloop writes outside the web app's own
templates: a package keeps its templates in ``templates/`` beside its code,
and :func:`render` fills one in with autoescaping on (every value a user or a
data file supplied is escaped) and undefined names an error, not an empty
string. Templates get one helper, ``table(frame, headers)``: a pandas data frame
as an HTML table, every cell escaped, numbers to one decimal, missing values
as a dash, columns renamed for the reader.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
import markupsafe

__all__ = ["render"]


def _table(frame: Any, headers: dict[str, str] | None = None) -> markupsafe.Markup:
    # pandas escapes every cell and header (escape=True is its default; said here on purpose).
    # People read these tables: one decimal, a dash for a missing value, headers in words.
    shown = frame.rename(columns=headers) if headers else frame
    html = shown.to_html(
        index=False, border=0, escape=True, na_rep="—", float_format=lambda x: f"{x:.1f}"
    )
    return markupsafe.Markup(html)  # noqa: S704


@cache
def _environment(package: str) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["table"] = _table
    return environment


def render(package: str, template: str, /, **context: Any) -> str:
    """The page ``template`` of ``package``'s ``templates/`` folder, filled in with ``context``."""
    return _environment(package).get_template(template).render(**context)
