"""What anyone may know about how this installation uses patients' information.

The public page (``/public``, no login) is generated from the registry:
which information is collected (the forms), for which purposes (patients'
consent choices), who uses it and how (the provenance trail: refreshes,
imports, analyses, decision support), the learning communities, and what
they learned (cycles whose Act is recorded).

Nothing on it identifies a person: no names, no record ids, no dates of
care. Counts of patients are shown only above the installation's
disclosure threshold (``CARELOOP_DISCLOSURE_THRESHOLD``) and rounded to the
nearest ten, so that no small group can be told apart or found by
subtracting one published number from another; the total is not shown
beside them for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from careloop.community import list_communities, list_cycles
from careloop.core.clock import as_utc
from careloop.core.i18n import N_, Translator, english
from careloop.practice.portal import ACT_WORDS
from careloop.store.database import Registry
from careloop.store.models import Patient, ProvenanceRecord, Site
from careloop.store.models.capture import FormDefinition
from careloop.store.scoping import Scope, set_scope
from careloop.trust.principal import Principal

__all__ = ["ACTIVITY_WORDS", "PublicFacts", "PublicUse", "public_count", "public_facts"]

PURPOSE_WORDS = {
    "direct_care": N_("for their own care"),
    "quality_improvement": N_("to make care better for everyone"),
    "research": N_("for research"),
    "recontact": N_("to be asked to take part in research studies"),
}
"""Each consent purpose (:mod:`careloop.trust.consent`) in the public page's words."""

ACTIVITY_WORDS = {
    "warehouse.refresh": N_("Copied for study, with names and contact details taken out"),
    "fhir.import": N_("Sent to us from hospital record systems"),
    "warehouse.load_omop": N_("Added from other research records"),
    "warehouse.check": N_("Checked for mistakes"),
    "warehouse.drop_source": N_("Taken out of the study copy when the place it came from asked"),
    "analysis.its": N_("Looked at to see if a change in care made a difference"),
    "knowledge.version": N_(
        "Turned into rules that give advice to care teams, checked by the team"
    ),
    "knowledge.deploy": N_("Used to give advice to doctors and nurses"),
}


def public_count(count: int, threshold: int, *, words: Translator | None = None) -> str:
    """A count of people as the public page shows it: hidden when small, else rounded to 10,
    in the language of ``words`` (English when not given)."""
    say = (words or english()).gettext
    if count == 0:
        return say(N_("none"))
    if count <= threshold:
        return say(N_("fewer than {number}")).format(number=threshold + 1)
    return say(N_("about {number}")).format(number=f"{max(10, round(count, -1)):,}")


@dataclass(frozen=True)
class PublicUse:
    """One kind of use of the information, from the provenance trail."""

    what: str
    times: int
    last: date


@dataclass(frozen=True)
class PublicLesson:
    """A finished learning cycle, in plain words."""

    community: str
    title: str
    aim: str
    outcome: str


@dataclass(frozen=True)
class PublicCommunity:
    """A learning community: its purpose, its size, whether patients and carers take part."""

    name: str
    purpose: str
    members: int
    with_patients: bool


@dataclass(frozen=True)
class PublicFacts:
    """Everything the public page shows; no person can be identified from it."""

    sites: int
    forms: tuple[tuple[str, bool], ...]
    """(title, filled in by patients) of every form."""
    purposes: tuple[tuple[str, str], ...]
    """(purpose in words, count as shown of patients who agree to it) per consent purpose."""
    uses: tuple[PublicUse, ...]
    communities: tuple[PublicCommunity, ...]
    lessons: tuple[PublicLesson, ...]


def _purposes(
    registry: Registry, threshold: int, words: Translator | None
) -> tuple[tuple[str, str], ...]:
    """How many patients agree to each purpose: one query counting every purpose."""
    with registry.transaction() as session:
        set_scope(session, Scope.everything())
        row = session.execute(
            select(
                *(
                    func.count().filter(getattr(Patient, f"consent_{purpose}").is_(True))
                    for purpose in PURPOSE_WORDS
                )
            )
        ).one()
    return tuple(
        (purpose, public_count(int(n or 0), threshold, words=words))
        for purpose, n in zip(PURPOSE_WORDS.values(), row, strict=True)
    )


def _uses(registry: Registry) -> tuple[PublicUse, ...]:
    """How many times each kind of use happened and when last: one grouped query.

    Counted by the database, so that a public page costs the same however long
    the provenance trail has grown.
    """
    with registry.transaction() as session:
        rows = session.execute(
            select(
                ProvenanceRecord.activity,
                func.count(),
                func.max(ProvenanceRecord.ended_at),
            )
            .where(ProvenanceRecord.activity.in_(list(ACTIVITY_WORDS)))
            .group_by(ProvenanceRecord.activity)
        ).all()
    found = {activity: (int(times), as_utc(last).date()) for activity, times, last in rows}
    return tuple(
        PublicUse(words, *found[activity])
        for activity, words in ACTIVITY_WORDS.items()
        if activity in found
    )


def public_facts(
    registry: Registry, *, threshold: int, words: Translator | None = None
) -> PublicFacts:
    """The facts of the public page, read as the installation itself (nothing identifiable).

    The counts are written in the language of ``words`` (English when not given); the
    other words are English message ids (:data:`PURPOSE_WORDS`, :data:`ACTIVITY_WORDS`,
    ``ACT_WORDS``) that the page translates."""
    reader = Principal.operator("public page")
    with registry.transaction() as session:
        set_scope(session, Scope.everything())
        sites = int(session.scalar(select(func.count()).select_from(Site)) or 0)
        forms = tuple(
            (title, bool(patient_reported))
            for title, patient_reported in session.execute(
                select(FormDefinition.title, FormDefinition.patient_reported).order_by(
                    FormDefinition.title
                )
            )
        )
    communities = tuple(
        PublicCommunity(c.name, c.purpose, c.members, c.patients_and_carers > 0)
        for c in list_communities(registry, reader)
    )
    lessons = tuple(
        PublicLesson(
            cycle.community,
            cycle.title,
            cycle.aim,
            ACT_WORDS.get(str(cycle.act.get("decision")), ""),
        )
        for cycle in list_cycles(registry, reader)
        if cycle.act
    )
    return PublicFacts(
        sites, forms, _purposes(registry, threshold, words), _uses(registry), communities, lessons
    )
