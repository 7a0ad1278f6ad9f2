"""Patients' words in their language: the catalogues, the choice of language, a translator.

careloop's patient-facing words are written in plain English in the code and
templates; that English is the message id. Each other language has a
gettext catalogue as ``.po`` text under ``careloop/web/locale/<lang>/LC_MESSAGES/careloop.po``
(the template of all message ids is ``careloop/web/locale/careloop.pot``).
The ``.po`` files are read when a language is first needed and compiled in
memory, so no compiled ``.mo`` file is kept in the repository or needs a
build step; a message that is missing or marked fuzzy in a catalogue shows in
English.

Code below the web layer marks its patient words with :func:`N_` (for the
extractor) and translates them when it knows the reader's language, with a
:class:`Translator` from :func:`translator`. Staff pages stay in English.
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Final

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANGUAGE_COOKIE",
    "LOCALE_DIR",
    "N_",
    "Translator",
    "choose_language",
    "english",
    "long_date",
    "translator",
]

DOMAIN: Final = "careloop"
LOCALE_DIR: Final = Path(__file__).resolve().parent.parent / "web" / "locale"
"""Where the catalogues are: data files shipped inside the package (no import of the web)."""

LANGUAGES: Final = {"en": "English", "es": "Español"}
"""Each language a patient may choose, by its code, named in that language."""

DEFAULT_LANGUAGE: Final = "en"
LANGUAGE_COOKIE: Final = "careloop_lang"


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue; it is translated later, where it is shown."""
    return message


@dataclass(frozen=True)
class Translator:
    """The words of one language."""

    language: str
    """Its code, as in :data:`LANGUAGES` (``en``, ``es``)."""
    translations: gettext.NullTranslations

    def gettext(self, message: str) -> str:
        """``message`` in this language (as given when the catalogue has no translation)."""
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The singular or plural form for ``n``, in this language."""
        return self.translations.ngettext(singular, plural, n)


def _compiled(language: str) -> gettext.NullTranslations:
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)  # a fuzzy guess is not shown to patients
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


@cache
def translator(language: str) -> Translator:
    """The translator for ``language`` (a code of :data:`LANGUAGES`; anything else is English)."""
    if language not in LANGUAGES or language == DEFAULT_LANGUAGE:
        return Translator(DEFAULT_LANGUAGE, gettext.NullTranslations())
    return Translator(language, _compiled(language))


DATE_LOCALES: Final = {"en": "en_GB"}
"""The locale dates are written in, per language: English dates in the British order."""


def long_date(day: date, language: str) -> str:
    """``day`` written out in ``language``: 12 April 2024, 12 de abril de 2024."""
    code = language if language in LANGUAGES else DEFAULT_LANGUAGE
    return format_date(day, "long", locale=DATE_LOCALES.get(code, code))


def english() -> Translator:
    """The source language: every message as written."""
    return translator(DEFAULT_LANGUAGE)


def _accepted(header: str) -> list[str]:
    """The language codes of an Accept-Language header, most wanted first."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag.strip().lower()))
    return [tag for _, _, tag in sorted(ranked)]


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The language to show: the person's choice (cookie), else their browser's, else English."""
    if cookie in LANGUAGES:
        return cookie
    for tag in _accepted(accept_language or ""):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE
