"""The words the learning community pages use for the domain's keys.

Keys such as ``adopter_system`` or ``motivation_reflective`` are stable
identifiers for the API and the CLI; members read these words instead. The
NASSS questions are careloop's own wording of the framework's domains
(Greenhalgh T et al. 2017, "Beyond adoption", J Med Internet Res
19(11):e367); the COM-B components, intervention functions and policy
categories follow Michie S, van Stralen MM, West R 2011, "The behaviour
change wheel", Implement Sci 6:42.
"""

from __future__ import annotations

NASSS_DOMAINS: dict[str, tuple[str, str]] = {
    "condition": (
        "The condition",
        "How well understood and predictable is the illness the change is for, and the "
        "lives of the people who have it?",
    ),
    "technology": (
        "The technology",
        "How easy is what we change or introduce to use, to supply and to keep working?",
    ),
    "value_proposition": (
        "The value proposition",
        "Is it clear who gains what from it, and who pays for it?",
    ),
    "adopter_system": (
        "The people who must adopt it",
        "How much must clinicians, patients and carers change what they do, and will they?",
    ),
    "organisation": (
        "The organisation",
        "How ready is each organisation to take it on: time, leadership, the work it adds?",
    ),
    "wider_system": (
        "The wider system",
        "Do policy, regulation, professional bodies and funding support it?",
    ),
    "embedding_and_adaptation": (
        "Embedding and adaptation over time",
        "Can it be kept going, and adapted as things change around it?",
    ),
}
"""Each NASSS domain's name and the question a member answers, in the framework's order."""

NASSS_RATINGS: dict[str, str] = {
    "simple": "straightforward, predictable, few parts",
    "complicated": "many parts, but knowable and manageable with effort",
    "complex": "dynamic, unpredictable, not easy to pin down",
}

COM_B_NAMES: dict[str, str] = {
    "capability_physical": "physical capability",
    "capability_psychological": "psychological capability",
    "opportunity_physical": "physical opportunity",
    "opportunity_social": "social opportunity",
    "motivation_reflective": "reflective motivation",
    "motivation_automatic": "automatic motivation",
}
FUNCTION_NAMES: dict[str, str] = {
    "education": "education",
    "persuasion": "persuasion",
    "incentivisation": "incentivisation",
    "coercion": "coercion",
    "training": "training",
    "restriction": "restriction",
    "environmental_restructuring": "environmental restructuring",
    "modelling": "modelling",
    "enablement": "enablement",
}
POLICY_NAMES: dict[str, str] = {
    "communication_marketing": "communication and marketing",
    "guidelines": "guidelines",
    "fiscal_measures": "fiscal measures",
    "regulation": "regulation",
    "legislation": "legislation",
    "environmental_social_planning": "environmental and social planning",
    "service_provision": "service provision",
}

STAGE_NAMES: dict[str, str] = {
    "plan": "Plan",
    "do": "Do",
    "study": "Study",
    "act": "Act",
    "capture": "Capturing data",
    "store": "Storing data",
    "knowledge": "Turning data into knowledge",
    "practice": "Putting knowledge into practice",
}
"""The stages a toolkit item supports: of a PDSA cycle, then of the learning cycle."""

MEASURE_ROLE_NAMES: dict[str, str] = {
    "outcome": "Outcome",
    "process": "Process",
    "balancing": "Balancing",
}

CONTRIBUTION_NAMES: dict[str, str] = {
    "proposals": "Proposals opened",
    "ideas": "Problems and ideas",
    "votes": "Votes",
    "reviews": "Decision support reviews",
    "cycles_led": "Cycles led",
    "findings_coded": "Findings coded",
    "decisions_logged": "Decisions logged",
}
"""Each of :data:`careloop.community.CONTRIBUTIONS`, as a column heading."""
