"""Extract careloop's patient-facing words into the catalogues, or check they are current.

    python scripts/extract_messages.py          # rewrite careloop.pot, update each .po
    python scripts/extract_messages.py --check  # exit 1 when a catalogue is out of date

What is extracted is set in ``babel.cfg``: marked words in Python (``N_``) and
in the templates (``_``), and the texts of the forms patients fill in. Each
language's ``.po`` is updated from the new template with Babel (new words
appear untranslated, gone words are dropped, changed words are marked fuzzy:
a fuzzy translation is not shown until a person checks it). Nothing is
compiled: careloop reads the ``.po`` files when it starts
(:mod:`careloop.core.i18n`).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "src" / "careloop" / "web" / "locale"
POT = LOCALE / "careloop.pot"
FORM_TEXT_KEYS = ("title", "label", "section", "note")


def patient_forms(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extractor: the words of each ``patient_reported`` form in a forms YAML file."""
    document = yaml.safe_load(fileobj.read().decode("utf-8")) or {}
    for form in document.get("forms", []):
        if not form.get("patient_reported"):
            continue
        where = f"form {form.get('name')}"
        if form.get("title"):
            yield 0, "", form["title"], [where]
        for field in form.get("fields", []):
            texts = [field.get(key) for key in FORM_TEXT_KEYS]
            texts += list((field.get("choices") or {}).values())
            slider = field.get("slider") or {}
            if isinstance(slider, dict):
                texts += list(slider.get("labels") or [])
            for text in texts:
                if isinstance(text, str) and text.strip():
                    yield 0, "", text.strip(), [f"{where}, field {field.get('name')}"]


def extracted() -> Catalog:
    """Every patient-facing word, as a message template (no translations)."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    method_map = [
        (pattern, patient_forms if method == "careloop_patient_forms" else method)
        for pattern, method in method_map
    ]
    catalog = Catalog(project="careloop", msgid_bugs_address="", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, comment_tags=("TRANSLATORS:",), strip_comment_tags=True
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _text(catalog: Catalog, **options: Any) -> bytes:
    out = io.BytesIO()
    # File names without line numbers: moving a word within a file is not a change.
    write_po(out, catalog, width=100, sort_output=True, include_lineno=False, **options)
    # The creation date changes on every run: leave it out, so an unchanged catalogue
    # is byte for byte the same.
    return b"\n".join(
        line for line in out.getvalue().split(b"\n") if not line.startswith(b'"POT-Creation-Date')
    )


def languages() -> list[str]:
    return sorted(p.name for p in LOCALE.iterdir() if (p / "LC_MESSAGES" / "careloop.po").exists())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; change nothing")
    args = parser.parse_args(argv)
    template = extracted()
    wanted = {POT: _text(template)}
    for language in languages():
        path = LOCALE / language / "LC_MESSAGES" / "careloop.po"
        with path.open("rb") as po:
            catalog = read_po(po, locale=language)
        catalog.update(template, update_header_comment=False)
        wanted[path] = _text(catalog, ignore_obsolete=True, include_previous=True)
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_bytes() != text]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}", file=sys.stderr)
        if stale:
            print("Run: python scripts/extract_messages.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(wanted[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
