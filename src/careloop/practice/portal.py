"""What a patient or a carer sees of their own care: scores over time, forms, consent, carers.

A patient signs in and sees their own record; a carer sees the records of
the patients they are proxy for. Everything here is read through the same
scoped, audited functions the care team uses (``patient.read`` and
``record.read`` with the ``own_record`` / ``proxied_records`` scopes of the
policy), so a patient can never reach another patient's record through it.

The scores drawn for a patient are the calculated fields of the forms they
have answers for (a symptom score, a disease-activity index): whatever the
content package defines, named by the form's own labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from careloop.capture import entry, forms_store
from careloop.capture.forms.model import FieldType
from careloop.community import list_cycles
from careloop.core.i18n import N_, Translator, english
from careloop.store.database import Registry
from careloop.trust import carers, patients
from careloop.trust.consent import PURPOSES, PurposeChange, record_consent_purpose
from careloop.trust.handover import DEFAULT_HANDOVER_AGE
from careloop.trust.principal import Principal

__all__ = [
    "CONSENT_WORDS",
    "PURPOSE_WORDS",
    "CareRecord",
    "ConsentChoice",
    "Learning",
    "ScoreSeries",
    "change_consent",
    "community_learning",
    "consent_history_words",
    "my_care",
]

CONSENT_WORDS = {
    "improvement_and_research": N_(
        "This record is used for care, to make care better for all, and for research."
    ),
    "improvement_only": N_(
        "This record is used for care and to make care better for all, but not for research."
    ),
    "direct_care_only": N_("This record is used only for care."),
    "withdrawn": N_("This record is not used for anything but what the law needs."),
    "custom": N_("This record is used only in the ways you chose below."),
}
"""Each consent state (a summary of the purposes) in words a patient understands."""

PURPOSE_WORDS = {
    "direct_care": N_("Use my information to look after me"),
    "quality_improvement": N_("Use my information to make care better for everyone"),
    "research": N_("Use my information for research"),
    "recontact": N_("Ask me if I want to take part in research studies"),
}
"""Each consent purpose as a choice a patient makes (reading age 11 or under)."""

PURPOSE_HELP = {
    "direct_care": N_("Your care team uses it to treat you."),
    "quality_improvement": N_(
        "Your team checks how well care works, without your name, and tries to do better."
    ),
    "research": N_("Researchers study it, without your name, to find better treatments."),
    "recontact": N_("We may send you a letter or email about a study. You can always say no."),
}
"""One line under each choice saying what it means."""

METHOD_WORDS = {
    "portal": N_("on this page"),
    "national_opt_out": N_("because you chose to opt out with the NHS"),
    "paper": N_("on a paper form"),
    "verbal": N_("when you talked to your care team"),
    "electronic": N_("online"),
    "fhir": N_("from your hospital record"),
    "default": N_("when you joined"),
}

ACT_WORDS = {
    "adopt": N_("It worked, so the team kept the change."),
    "adapt": N_("It helped in part, so the team is changing it and trying again."),
    "abandon": N_("It did not help, so the team stopped it."),
}


@dataclass(frozen=True)
class ScoreSeries:
    """One score of one form over time, oldest first."""

    form_title: str
    label: str
    points: tuple[tuple[date, float], ...]


@dataclass(frozen=True)
class ConsentChoice:
    """One consent purpose as the portal shows it."""

    purpose: str
    words: str
    """The choice in plain words, e.g. "Use my information for research"."""
    help: str
    given: bool


def consent_history_words(entry: patients.ConsentEntry, *, words: Translator | None = None) -> str:
    """One consent decision in plain words, e.g. "No to: Use my information for research",
    in the language of ``words`` (English when not given)."""
    say = (words or english()).gettext
    how = say(METHOD_WORDS[entry.method]) if entry.method in METHOD_WORDS else ""
    if entry.purpose is not None:
        answer = N_("Yes to: {choice}") if entry.given else N_("No to: {choice}")
        choice = PURPOSE_WORDS.get(entry.purpose, entry.purpose)
        said = say(answer).format(choice=say(choice))
    else:
        said = say(CONSENT_WORDS.get(entry.state, entry.state))
    return f"{said} ({how})" if how else said


def change_consent(
    registry: Registry, principal: Principal, patient_id: int, purpose: str, given: bool
) -> PurposeChange:
    """A patient (or their carer) changes one consent choice on their page (method ``portal``).

    The same scoped, audited service the care team uses: a patient reaches
    only their own record, a carer only the records they are proxy for.
    """
    return record_consent_purpose(
        registry,
        principal,
        patient_id,
        purpose,  # type: ignore[arg-type]  # checked by the service
        given,
        method="portal",
    )


@dataclass(frozen=True)
class CareRecord:
    """One patient's record as they (or their carer) see it."""

    patient_id: int
    name: str
    site: str
    consent_state: str
    consent_words: str
    consent_history: tuple[patients.ConsentEntry, ...]
    carers: carers.CarersOfPatient
    """The people who help the patient, what each may do, and whether the reader may change it."""
    sees_results: bool
    """The reader may see the answers and scores (a carer needs ``see_results``)."""
    events: tuple[entry.TimelineEvent, ...]
    scores: tuple[ScoreSeries, ...]
    consent: tuple[ConsentChoice, ...] = ()
    """Each purpose and the patient's choice, in :data:`PURPOSES` order."""


@dataclass(frozen=True)
class Learning:
    """One learning cycle of a community the person belongs to, in plain words."""

    community: str
    title: str
    aim: str
    started: date | None
    outcome: str
    """What the community decided, or that the test is still running."""


def _number(value: object) -> float | None:
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def _scores(
    registry: Registry, principal: Principal, patient_id: int, forms: set[str]
) -> tuple[ScoreSeries, ...]:
    series: list[ScoreSeries] = []
    for name in sorted(forms):
        stored = forms_store.get_form(registry, principal, name)
        calcs = [f for f in stored.form.fields if f.type is FieldType.CALC]
        if not calcs:
            continue
        answers = entry.list_responses(registry, principal, name, patient_id=patient_id)
        for field in calcs:
            points = sorted(
                (r.event_date, number)
                for r in answers
                if r.status == "complete"
                and (number := _number(r.values.get(field.name))) is not None
            )
            if points:
                series.append(ScoreSeries(stored.title, field.label or field.name, tuple(points)))
    return tuple(series)


def my_care(
    registry: Registry, principal: Principal, *, handover_age: int = DEFAULT_HANDOVER_AGE
) -> list[CareRecord]:
    """The records the person may see: their own, or those they are proxy for.

    Each read is audited by the function that makes it (the patient, the
    timeline, the consent history, the answers behind each score). A carer
    without ``see_results`` for a patient gets the patient's name, consent
    and their own link, but no answers or scores.
    """
    records: list[CareRecord] = []
    if principal.scope_for("patient.read").patient_ids == ():
        return records  # no record is linked to this login yet: nothing to read, or refuse
    for found in patients.search_patients(registry, principal, text=None, limit=20):
        patient = patients.get_patient(registry, principal, found.id)
        sees_results = principal.scope_for("record.read").allows_patient(patient.id)
        events: tuple[entry.TimelineEvent, ...] = ()
        scores: tuple[ScoreSeries, ...] = ()
        if sees_results:
            timeline = entry.patient_timeline(registry, principal, patient.id)
            events = tuple(timeline.events[:20])
            scores = _scores(registry, principal, patient.id, {e.form for e in timeline.events})
        name = " ".join(p for p in (patient.given_name, patient.family_name) if p) or N_("You")
        records.append(
            CareRecord(
                patient_id=patient.id,
                name=name,
                site=patient.site,
                consent_state=patient.consent_state,
                consent_words=CONSENT_WORDS.get(patient.consent_state, patient.consent_state),
                consent_history=tuple(patients.consent_history(registry, principal, patient.id)),
                consent=tuple(
                    ConsentChoice(p, PURPOSE_WORDS[p], PURPOSE_HELP[p], patient.consent[p])
                    for p in PURPOSES
                ),
                carers=carers.list_carers(
                    registry, principal, patient.id, handover_age=handover_age
                ),
                sees_results=sees_results,
                events=events,
                scores=scores,
            )
        )
    return records


def community_learning(registry: Registry, principal: Principal) -> list[Learning]:
    """The learning cycles of the person's communities, newest first, in plain words."""
    learned = []
    for cycle in list_cycles(registry, principal):
        decision = (cycle.act or {}).get("decision")
        started = cycle.do.get("start")
        learned.append(
            Learning(
                community=cycle.community,
                title=cycle.title,
                aim=cycle.aim,
                started=date.fromisoformat(str(started)) if started else None,
                outcome=ACT_WORDS.get(str(decision), N_("The team is still testing this change.")),
            )
        )
    learned.sort(key=lambda item: item.started or date.min, reverse=True)
    return learned
