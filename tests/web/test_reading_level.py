"""Patient-facing words are easy to read: a UK reading age of 11 or under.

Every English word a patient can see is in the message catalogue
(``careloop/web/locale/careloop.pot``, kept current by
``tests/web/test_languages.py``): the patient templates, the Python word
tables and messages marked ``N_``, and the forms patients fill in. The check
is the Flesch-Kincaid grade (US school grade; UK reading age is about the
grade plus 5), computed by textstat with syllables from the CMU Pronouncing
Dictionary:

- each page (each template, Python module or patient form, as the catalogue
  names it) is grade 6 or under, that is reading age 11;
- each sentence of six words or more is grade 8 or under, so that one hard
  sentence cannot hide among easy ones. The test names each sentence that fails.

Flesch-Kincaid rather than SMOG: SMOG is defined on samples of 30 sentences,
and most pages have fewer. A message is one sentence group; a label without
an end mark is read as a sentence of its own; each placeholder reads as a
short word.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from babel.messages.pofile import read_po

from careloop.core.i18n import LOCALE_DIR

textstat = pytest.importorskip("textstat")

PAGE_GRADE = 6.0
SENTENCE_GRADE = 8.0
SENTENCE_WORDS = 6
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")
SENTENCE = re.compile(r"[^.!?…]+[.!?…]*")


def _readable(message: str) -> str:
    text = PLACEHOLDER.sub("it", message).replace("“", "").replace("”", "").strip()
    return text if text[-1:] in ".!?…:" else text + "."


def catalogue_pages() -> dict[str, list[str]]:
    """Every English patient-facing message, by the page (source file) it appears on."""
    with (LOCALE_DIR / "careloop.pot").open("rb") as pot:
        template = read_po(pot)
    pages: dict[str, list[str]] = defaultdict(list)
    for message in template:
        if not message.id:
            continue
        texts = [message.id] if isinstance(message.id, str) else list(message.id)
        for filename, _ in message.locations:
            pages[filename].extend(_readable(t) for t in texts)
    return dict(pages)


def grade(text: str) -> float:
    return float(textstat.flesch_kincaid_grade(text))


def hard_sentences(messages: list[str]) -> list[tuple[str, float]]:
    """Each sentence of SENTENCE_WORDS words or more above SENTENCE_GRADE, with its grade."""
    found = []
    for message in messages:
        for sentence in SENTENCE.findall(message):
            if len(sentence.split()) >= SENTENCE_WORDS and grade(sentence) > SENTENCE_GRADE:
                found.append((sentence.strip(), round(grade(sentence), 1)))
    return found


PAGES = catalogue_pages()


def test_the_catalogue_has_the_patient_pages_and_words():
    names = {name.rsplit("/", 1)[-1] for name in PAGES}
    for page in (
        "my.html",
        "my_consent.html",
        "_my_carers.html",
        "_my_proms.html",
        "prom.html",
        "_fields.html",
        "public.html",
        "login.html",
        "prom_outreach.py",
    ):
        assert page in names
    for module in ("portal.py", "transparency.py", "invitations.py", "ibd_registry.yaml"):
        assert module in names


@pytest.mark.parametrize("page", sorted(PAGES))
def test_each_patient_page_reads_at_uk_reading_age_11_or_under(page):
    text = " ".join(PAGES[page])
    assert grade(text) <= PAGE_GRADE, f"{page}: Flesch-Kincaid grade {grade(text):.1f}"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_no_patient_sentence_is_hard_to_read(page):
    assert hard_sentences(PAGES[page]) == [], f"{page}: rewrite these in shorter, plainer words"


def test_the_check_names_a_hard_sentence_among_easy_ones():
    easy = ["Thank you.", "Your answers go straight into your record."]
    hard = (
        "Pseudonymised information is disseminated to authorised organisations "
        "notwithstanding contractual obligations."
    )
    found = hard_sentences([*easy, hard])
    assert [sentence for sentence, _ in found] == [hard]
    assert grade(" ".join([*easy, hard] * 3)) > PAGE_GRADE
