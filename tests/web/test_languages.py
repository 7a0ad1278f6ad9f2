"""Patient pages in the patient's language: the catalogues, the choice, the words on the pages.

English is written in the code and templates; Spanish comes from
``careloop/web/locale/es/LC_MESSAGES/careloop.po``. The language is the one
chosen with the link on each patient page (a cookie), else the browser's,
else English; staff pages stay English. A PROM's problems are said in the
patient's words, naming the question, never a rule or a field's id.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from careloop.capture import proms
from careloop.core.i18n import LANGUAGE_COOKIE, LOCALE_DIR, choose_language, translator
from careloop.core.mail import OUTBOX_DIR, Mailer
from careloop.trust import invitations, patients
from careloop.web.app import create_app
from tests.capture.registry_helpers import PROM, import_examples, prom_answers
from tests.foundation import PASSWORD, Installation, build_installation, make_settings

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def _extract_script():
    spec = importlib.util.spec_from_file_location(
        "extract_messages", REPO / "scripts" / "extract_messages.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["extract_messages"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    installation = build_installation(make_settings(tmp_path_factory.mktemp("languages"), None))
    import_examples(installation)
    yield installation
    installation.registry.close()


@pytest.fixture(scope="module")
def client(inst: Installation) -> Iterator[TestClient]:
    with TestClient(create_app(inst.settings)) as test_client:
        yield test_client


def _fresh(inst: Installation) -> TestClient:
    """A browser of its own (its own cookies)."""
    return TestClient(create_app(inst.settings))


def _log_in(browser: TestClient, email: str) -> None:
    form = browser.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    done = browser.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1), "next": "/my"},
    )
    assert done.status_code == 200, done.text[:300]


def _open_prom(browser: TestClient, inst: Installation, patient: int) -> str:
    link = proms.create_prom_link(inst.registry, inst.operator, PROM, patient_id=patient)
    page = browser.get(f"/prom/{link.token}")
    assert page.status_code == 200 and str(page.url).endswith("/prom")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return token.group(1)


# The catalogues


def test_the_catalogues_hold_every_marked_word_of_the_code_and_templates():
    assert _extract_script().main(["--check"]) == 0, "run: python scripts/extract_messages.py"


def test_every_patient_word_has_a_checked_spanish_translation_with_the_same_placeholders():
    with (LOCALE_DIR / "careloop.pot").open("rb") as pot:
        template = read_po(pot)
    with (LOCALE_DIR / "es" / "LC_MESSAGES" / "careloop.po").open("rb") as po:
        spanish = read_po(po, locale="es")
    ids = [m.id for m in template if m.id]
    assert len(ids) > 100
    problems = []
    for msgid in ids:
        message = spanish.get(msgid)
        if message is None or message.fuzzy or not all(message.string or [""]):
            problems.append(f"not translated: {msgid!r}")
            continue
        english = [msgid] if isinstance(msgid, str) else list(msgid)
        translated = [message.string] if isinstance(message.string, str) else list(message.string)
        wanted = sorted(PLACEHOLDER.findall(english[-1]))
        for text in translated:
            if sorted(PLACEHOLDER.findall(text)) != wanted:
                problems.append(f"placeholders differ: {msgid!r} -> {text!r}")
    assert problems == []


def test_the_language_is_the_choice_then_the_browser_then_english():
    assert choose_language("es", "en-GB,en;q=0.9") == "es"
    assert choose_language(None, "fr-FR, es-MX;q=0.8, en;q=0.5") == "es"
    assert choose_language(None, "en;q=0.2, es;q=0.9") == "es"
    assert choose_language("xx", "de-DE") == "en"
    assert choose_language(None, None) == "en"
    assert choose_language(None, "es;q=0") == "en"
    assert translator("es").gettext("Log in") == "Entrar"
    assert translator("fr").gettext("Log in") == "Log in"


# Choosing a language on the pages


def test_the_login_page_speaks_the_browsers_language_and_offers_the_other(inst):
    browser = _fresh(inst)
    page = browser.get("/login", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert '<html lang="es">' in page.text
    assert "Entrar en careloop" in page.text and "Contraseña" in page.text
    assert 'href="/language/en?next=/login"' in page.text and ">English</a>" in page.text
    english = browser.get("/login", headers={"Accept-Language": "en-GB"})
    assert '<html lang="en">' in english.text and "Log in to careloop" in english.text
    assert 'hreflang="es">Español</a>' in english.text


def test_the_language_link_sets_a_plain_cookie_and_goes_back_to_the_page(inst):
    browser = _fresh(inst)
    chosen = browser.get("/language/es?next=/public", follow_redirects=False)
    assert chosen.status_code == 303 and chosen.headers["location"] == "/public"
    cookie = chosen.headers["set-cookie"]
    assert cookie.startswith(f"{LANGUAGE_COOKIE}=es;") and "samesite=lax" in cookie.lower()
    page = browser.get("/public", headers={"Accept-Language": "en"})
    assert '<html lang="es">' in page.text and "Cómo usamos su información" in page.text
    # Never off to another site, and only languages careloop has.
    away = browser.get("/language/en?next=//evil.example/x", follow_redirects=False)
    assert away.headers["location"] == "/"
    assert browser.get("/language/xx", follow_redirects=False).status_code == 404


def test_a_patients_portal_is_in_spanish_with_dates_in_spanish(inst, client):
    browser = _fresh(inst)
    browser.cookies.set(LANGUAGE_COOKIE, "es")
    _log_in(browser, inst.emails["patient@A"])
    page = browser.get("/my").text
    assert '<html lang="es">' in page and "<h1>Mi cuidado</h1>" in page
    assert "Cómo se usa su información" in page and "Personas que me ayudan" in page
    # The consent choices and the carers' section speak Spanish too.
    assert "Usar mi información para la investigación" in page and "Guardar" in page
    carers = ("Llenar cuestionarios", "Nada por ahora.", "Ningún cuidador está unido")
    assert any(words in page for words in carers)
    for english in ("How things have been", "My care", "People who help", "Use my information"):
        assert english not in page


def test_staff_pages_stay_english_whatever_the_language_cookie(inst):
    browser = _fresh(inst)
    browser.cookies.set(LANGUAGE_COOKIE, "es")
    _log_in(browser, inst.emails["clinician@A"])
    home = browser.get("/")
    assert '<html lang="en">' in home.text and "Log out" in home.text
    assert "Español" not in home.text  # no language link on staff pages


def test_a_patient_error_page_is_in_their_language(inst):
    browser = _fresh(inst)
    page = browser.get("/prom", headers={"Accept-Language": "es", "Accept": "text/html"})
    assert page.status_code == 404
    assert "Esta página caducó" in page.text and '<html lang="es">' in page.text


# A PROM's problems in the patient's words; unanswered stays unanswered


def test_a_missed_question_is_named_in_plain_words_and_nothing_is_filled_in(inst, client):
    token = _open_prom(client, inst, inst.patient_ids["A"][0])
    answers = prom_answers("2024-05-01", tummy_pain=None, stools_worst_day="99")
    sent = client.post("/prom", data={**answers, "csrf_token": token})
    assert sent.status_code == 422
    text = sent.text
    assert "Some answers need a look. Nothing has been sent yet." in text
    assert "Please answer: How much tummy pain have you had?" in text
    assert (
        "Please give a number from 0 to 40 for: On your worst day, how many times did you poo?"
        in text
    )
    main = text.split("<main", 1)[1]
    for jargon in ("required", "failed validation", "tummy_pain", "stools_worst_day", "rule"):
        shown = re.sub(r'(name|id|for|href|data-[\w-]+|aria-[\w-]+)="[^"]*"', "", main)
        assert jargon not in shown, jargon
    # What was not answered is still not answered: no radio chosen for the pain question,
    # the worry slider still empty.
    pain = text.split('data-field="tummy_pain"', 1)[1].split('data-field="', 1)[0]
    assert " checked" not in pain
    assert re.search(r'<input id="f-worry"[^>]*value=""', text)


def test_the_prom_problems_and_questions_are_in_spanish(inst):
    browser = _fresh(inst)
    browser.cookies.set(LANGUAGE_COOKIE, "es")
    token = _open_prom(browser, inst, inst.patient_ids["A"][0])
    assert "¿Cuánto dolor de barriga ha tenido?" in browser.get("/prom").text
    answers = prom_answers("2024-05-02", tummy_pain=None)
    sent = browser.post("/prom", data={**answers, "csrf_token": token})
    assert sent.status_code == 422
    assert "Por favor, conteste: ¿Cuánto dolor de barriga ha tenido?" in sent.text
    assert "Hay respuestas que revisar." in sent.text


def test_the_live_check_says_a_bad_number_in_the_patients_words(inst):
    browser = _fresh(inst)
    browser.cookies.set(LANGUAGE_COOKIE, "es")
    token = _open_prom(browser, inst, inst.patient_ids["A"][0])
    checked = browser.post(
        "/prom/check",
        json={"values": {"stools_worst_day": "99"}},
        headers={"X-CSRF-Token": token},
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["errors"] == {
        "stools_worst_day": (
            "Por favor, escriba un número del 0 al 40 para: En su peor día, ¿cuántas veces "
            "hizo popó?"
        )
    }


# E-mails


def test_an_invitation_e_mail_is_written_in_the_language_chosen_for_it(tmp_path):
    inst = build_installation(make_settings(tmp_path, None), with_users=False)
    try:
        patient = patients.register_patient(
            inst.registry,
            inst.operator,
            site="A",
            local_id="ES-1",
            given_name="Lucía",
            family_name="Pérez",
            consent_state="direct_care_only",
        )
        invitations.invite_to_record(
            inst.registry,
            inst.operator,
            Mailer.from_settings(inst.settings),
            patient.id,
            email="familia@example.org",
            role="carer",
            link_base="https://careloop.example.org",
            language="es",
        )
        [eml] = list((inst.settings.data_dir / OUTBOX_DIR).glob("*.eml"))
        message = message_from_bytes(eml.read_bytes(), policy=policy.default)
        text = message.get_body().get_content()  # type: ignore[union-attr]
        assert message["Subject"].startswith("Su invitación a careloop de ")
        assert "Hola:" in text and "como su cuidador" in text and "durante 7 días" in text
        assert "Lucía" not in text
    finally:
        inst.registry.close()
