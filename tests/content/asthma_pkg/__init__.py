"""A small asthma registry as a content package, kept in the tests.

It proves the engine needs no edit for a new condition: a form, a concept map,
two measures and a knowledge object, registered with
:func:`careloop.core.content.activate` like any installed package.
"""

from __future__ import annotations

from pathlib import Path

from careloop.core.content import ConceptMap, ContentPackage

ASTHMA_CONTROL = 2_100_000_001
ACT_SCORE = 2_100_000_002
ACTION_PLAN = 2_100_000_003

PACKAGE = ContentPackage(
    name="asthma",
    title="Asthma clinic registry (test content)",
    root=Path(__file__).resolve().parent,
    forms={"yaml": "forms/asthma_registry.yaml"},
    concept_map=ConceptMap(
        fields={
            "asthma_control": ("Observation", ASTHMA_CONTROL),
            "act_score": ("Measurement", ACT_SCORE),
            "action_plan": ("Observation", ACTION_PLAN),
        },
        names={
            ASTHMA_CONTROL: "Asthma symptom control level",
            ACT_SCORE: "Asthma Control Test total score",
            ACTION_PLAN: "Written asthma action plan reviewed",
        },
    ),
    answer_labels={
        ASTHMA_CONTROL: {1: "well controlled", 2: "partly controlled", 3: "uncontrolled"},
        ACTION_PLAN: {1: "yes", 0: "no"},
    },
    measures="measures",
    knowledge="knowledge",
)
