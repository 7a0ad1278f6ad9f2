"""A measure's definition read back as sentences."""

from __future__ import annotations

from careloop.measures import load_catalog, parse_yaml
from careloop.measures.plain_language import concept_name, describe


def test_remission_reads_as_who_is_counted_who_meets_it_and_which_way_is_better():
    definition = load_catalog(entry_points=False).get("remission-prevalence")
    sentences = describe(definition)
    assert sentences[0] == (
        "Counted: patients with a visit: outpatient visit, telehealth visit or inpatient "
        "visit, in the 12 months up to the end of each month."
    )
    assert sentences[1] == (
        "Of those, meeting the measure: patients with the last recorded physician global "
        "assessment of IBD activity: quiescent (1)."
    )
    assert sentences[-1] == "Higher is better. The target is 80%."


def test_groups_exclusions_and_values_are_spelled_out():
    definition = parse_yaml(
        """
id: low-haemoglobin
title: Low haemoglobin
type: proportion
subject: person
period: quarter
improvement: down
denominator:
  measurement: {concepts: [3000963], descendants: true}
numerator:
  any_of:
    - measurement: {concepts: [3000963], value: {lt: 10}, at: first}
    - none_of:
        - drug: {concepts: [2000000201]}
exclusions:
  condition: {concepts: [2000000011]}
"""
    )
    text = " ".join(describe(definition, names={3000963: "haemoglobin"}))
    assert "a measurement of haemoglobin (or a more specific kind), in each quarter" in text
    assert "at least one of: the first measurement of haemoglobin with a value below 10" in text
    assert "(none of: a prescription of oral prednisone or prednisolone (registry))" in text
    assert "Left out: patients with a diagnosis of Crohn's disease (registry)." in text
    assert text.endswith("Lower is better.")
    assert concept_name(123) == "concept 123"
