"""The demo's focus groups: families and young people on the network change package.

Two short synthetic focus groups (written for the demo; no real person
speaks), coded by two coders with a small codebook into three themes, and
attached to the network change package's cycle, so its Study shows themes
beside the charts and kappa on the double coding.
"""

from __future__ import annotations

from careloop.analysis.qualitative import Code, Codebook, Document, QualitativeProject, Theme
from careloop.community import FindingsView, add_findings
from careloop.store.database import Registry
from careloop.trust.principal import Principal

PARENTS = """Facilitator: What changed for you since the clinic started planning visits ahead?
Parent 1: We get a call the week before, so I write down what has been going on.
Parent 2: The blood test is done before we arrive now, which saves a second trip.
Parent 3: Honestly nothing changed for us, we never had the call.
Parent 1: The doctor already knew about the flare, we did not have to start from scratch.
Parent 2: Waiting for the results letter still takes weeks.
Parent 3: I would like to know who to ring when things get worse at the weekend.
"""

YOUNG_PEOPLE = """Facilitator: How do you feel about the clinic visits now?
Young person 1: I get asked what I want to talk about, that is new.
Young person 2: We talked about stopping the steroids together, I liked being asked.
Young person 3: The appointments still run late and I miss school.
Young person 1: The nurse call before the visit means I am less nervous.
Young person 2: Results on the app come quicker than the letters did.
Young person 3: Nobody told me the plan changed until I got there.
"""

CODING: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # (document, fragment, code, coders who applied it)
    ("Parents", "We get a call the week before", "pre-visit call", ("coder A", "coder B")),
    ("Parents", "The blood test is done before we arrive", "preparation", ("coder A", "coder B")),
    ("Parents", "we never had the call", "pre-visit call", ("coder A",)),
    ("Parents", "we never had the call", "gaps in reach", ("coder A", "coder B")),
    ("Parents", "The doctor already knew about the flare", "preparation", ("coder A",)),
    ("Parents", "The doctor already knew about the flare", "continuity", ("coder B",)),
    ("Parents", "Waiting for the results letter", "delays", ("coder A", "coder B")),
    ("Parents", "who to ring when things get worse", "gaps in reach", ("coder A", "coder B")),
    (
        "Young people",
        "I get asked what I want to talk about",
        "shared decisions",
        ("coder A", "coder B"),
    ),
    (
        "Young people",
        "We talked about stopping the steroids",
        "shared decisions",
        ("coder A", "coder B"),
    ),
    ("Young people", "The appointments still run late", "delays", ("coder A", "coder B")),
    ("Young people", "The nurse call before the visit", "pre-visit call", ("coder A", "coder B")),
    ("Young people", "Results on the app come quicker", "delays", ("coder B",)),
    ("Young people", "Nobody told me the plan changed", "gaps in reach", ("coder A", "coder B")),
)


def focus_groups() -> QualitativeProject:
    """The two coded focus groups with their themes."""
    project = QualitativeProject(
        "Families and young people on the network change package",
        (
            Document.from_transcript("Parents", PARENTS, metadata={"group": "parents"}),
            Document.from_transcript(
                "Young people", YOUNG_PEOPLE, metadata={"group": "young people"}
            ),
        ),
        Codebook(
            (
                Code("preparation", "Getting ready for the visit: tests, information, history."),
                Code("pre-visit call", "The call before the visit.", parent="preparation"),
                Code("continuity", "The team knows the story without retelling it."),
                Code("shared decisions", "The young person or family asked and involved."),
                Code("delays", "Waiting: results, letters, late clinics."),
                Code("gaps in reach", "Someone the change did not reach, or not in time."),
            )
        ),
        description="Synthetic focus groups written for the careloop demo.",
    )
    for document, fragment, code, coders in CODING:
        for coder in coders:
            project = project.code(document, fragment, code, coder=coder)
    return project.with_themes(
        [
            Theme(
                "Arriving prepared",
                "Planning ahead meant families and clinicians started from what mattered.",
                codes=("preparation", "continuity"),
                quotes=(project.quote("Parents", "The doctor already knew about the flare"),),
            ),
            Theme(
                "Being asked",
                "Young people felt involved in decisions, including about steroids.",
                codes=("shared decisions",),
                quotes=(project.quote("Young people", "I liked being asked"),),
            ),
            Theme(
                "Not everyone was reached",
                "The change missed some families, and waiting still undoes its gains.",
                codes=("gaps in reach", "delays"),
                quotes=(project.quote("Parents", "we never had the call"),),
            ),
        ]
    )


def attach_focus_groups(registry: Registry, operator: Principal, cycle_id: int) -> FindingsView:
    """Attach the coded focus groups to a cycle (its Study shows the themes and kappa)."""
    return add_findings(registry, operator, cycle_id, focus_groups(), source="json")
