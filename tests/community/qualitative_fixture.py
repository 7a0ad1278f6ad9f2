"""A small synthetic focus group coded by two coders (written for these tests)."""

from __future__ import annotations

from careloop.analysis.qualitative import (
    Code,
    Codebook,
    Document,
    QualitativeProject,
    Theme,
)

TRANSCRIPT_1 = """Facilitator: How did the pre-visit phone call go for you?
P1: The call helped, I knew what the nurse would ask before we came in.
P2: We never got the call, so nothing changed for us.
P3: I liked having the blood test done before the visit, it saved a trip.
P1: Waiting for results still takes too long though.
P2: The letter arrived after the appointment, which was no use.
"""

TRANSCRIPT_2 = """Facilitator: What would make the clinic easier?
P1: Knowing who to call when the symptoms come back at night.
P2: The call before the visit made me feel listened to.
P3: Parking is impossible and we were late twice.
P4: Results came quickly this time, the portal showed them.
"""


def focus_group() -> QualitativeProject:
    docs = (
        Document.from_transcript("FG1 parents", TRANSCRIPT_1, metadata={"site": "A"}),
        Document.from_transcript("FG2 young people", TRANSCRIPT_2, metadata={"site": "B"}),
    )
    codebook = Codebook(
        (
            Code("preparation", "Anything about getting ready for the visit."),
            Code("phone call", "The pre-visit call.", parent="preparation"),
            Code("delays", "Waiting, late letters or results."),
            Code("access", "Getting to or reaching the clinic."),
        )
    )
    project = QualitativeProject("Pre-visit planning focus groups", docs, codebook)
    coding = [
        # (document, fragment, code, coder)
        ("FG1 parents", "The call helped", "phone call", "Ana"),
        ("FG1 parents", "The call helped", "phone call", "Ben"),
        ("FG1 parents", "We never got the call", "phone call", "Ana"),
        ("FG1 parents", "We never got the call", "delays", "Ben"),
        ("FG1 parents", "blood test done before the visit", "preparation", "Ana"),
        ("FG1 parents", "blood test done before the visit", "preparation", "Ben"),
        ("FG1 parents", "Waiting for results", "delays", "Ana"),
        ("FG1 parents", "Waiting for results", "delays", "Ben"),
        ("FG1 parents", "The letter arrived after", "delays", "Ana"),
        ("FG2 young people", "Knowing who to call", "access", "Ana"),
        ("FG2 young people", "Knowing who to call", "access", "Ben"),
        ("FG2 young people", "The call before the visit", "phone call", "Ana"),
        ("FG2 young people", "The call before the visit", "phone call", "Ben"),
        ("FG2 young people", "Parking is impossible", "access", "Ana"),
        ("FG2 young people", "Results came quickly", "delays", "Ben"),
    ]
    for document, fragment, code, coder in coding:
        project = project.code(document, fragment, code, coder=coder)
    return project.with_themes(
        [
            Theme(
                "Knowing what to expect",
                "Preparation before the visit made families feel ready.",
                codes=("preparation",),
                quotes=(project.quote("FG1 parents", "The call helped"),),
            ),
            Theme("Waiting undoes the gains", "Delays cancel what planning gave.", ("delays",)),
        ]
    )
