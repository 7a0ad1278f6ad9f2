"""Print an HTML report to PDF with the machine's headless Chromium.

Why Chromium: it is the browser the report is written for, it prints SVG and
CSS exactly as shown on screen, and it is already on the machines careloop's
browser tests run on; a Python HTML-to-PDF library would be a second layout
engine with its own gaps in SVG. The browser runs headless with a throw-away
profile and no network features, on the local file only.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from careloop.core.errors import ConfigurationError

__all__ = ["PDF_TIMEOUT_SECONDS", "find_chromium", "print_pdf"]

PDF_TIMEOUT_SECONDS = 120
"""How long Chromium may take to print one report."""

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-pdf-header-footer",
)


def find_chromium(configured: Path | None = None) -> Path:
    """The Chromium program to print with: ``configured`` (the ``chromium`` setting,
    ``CARELOOP_CHROMIUM``) or the first of chromium, chromium-browser, google-chrome on
    the PATH.

    Raises:
        ConfigurationError: The configured program does not exist, or none was found.
    """
    if configured is not None:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"CARELOOP_CHROMIUM (the chromium setting) is {str(configured)!r}, which is no "
                "program: give the path of a Chromium or Chrome executable."
            )
        return path
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise ConfigurationError(
        "No Chromium found to print the PDF with: install it (apt-get install chromium) or set "
        "CARELOOP_CHROMIUM to the path of a Chromium or Chrome executable."
    )


def print_pdf(html: Path, pdf: Path, *, chromium: Path | None = None) -> Path:
    """Print the HTML file ``html`` to ``pdf``; return ``pdf``.

    Raises:
        ConfigurationError: No Chromium (see :func:`find_chromium`).
        ConfigurationError: Chromium failed or wrote no PDF (its last message is given).
    """
    program = find_chromium(chromium)
    target = pdf.resolve()
    with tempfile.TemporaryDirectory(prefix="careloop-chromium-") as profile:
        command = [
            str(program),
            *_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={target}",
            html.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(  # noqa: S603  (our own arguments, no shell)
                command, capture_output=True, text=True, timeout=PDF_TIMEOUT_SECONDS, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigurationError(f"{program} could not print {html} to PDF: {exc}") from exc
    if done.returncode != 0 or not target.is_file() or target.read_bytes()[:4] != b"%PDF":
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ConfigurationError(
            f"{program} wrote no PDF to {target} (exit status {done.returncode}: {last}). "
            "Check that the program is Chromium or Chrome and can run headless here."
        )
    return target
