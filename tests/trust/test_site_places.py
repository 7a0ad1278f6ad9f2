"""A site's country and time zone: valid values pass, wrong ones say what would be valid."""

from __future__ import annotations

import pytest

from careloop.trust.places import country_problem, time_zone_problem


@pytest.mark.parametrize("code", ["GB", "us", " AU ", "DE"])
def test_iso_3166_codes_are_valid_in_any_case(code):
    assert country_problem(code) is None


@pytest.mark.parametrize(
    ("given", "suggestion"),
    [("UK", "GB"), ("usa", "US"), ("Britain", "GB"), ("Germany", "DE"), ("ZZ", None)],
)
def test_a_wrong_country_gets_examples_and_a_suggestion_when_one_is_close(given, suggestion):
    message = country_problem(given)
    assert message is not None and "ISO 3166-1 alpha-2" in message
    assert "e.g. GB (United Kingdom), US (United States)" in message
    assert "any of the 249 in ISO 3166-1" in message  # tzdata's iso3166.tab, 2026 release
    if suggestion:
        assert f"did you mean {suggestion}," in message
    else:
        assert "did you mean" not in message


def test_iana_zones_are_valid():
    assert time_zone_problem("Europe/London") is None
    assert time_zone_problem("America/Argentina/Buenos_Aires") is None


@pytest.mark.parametrize(
    ("given", "suggestion"),
    [
        ("London", "Europe/London"),
        ("europe/berln", "Europe/Berlin"),
        ("New York", "America/New_York"),
    ],
)
def test_a_wrong_zone_gets_examples_and_the_zone_it_probably_meant(given, suggestion):
    message = time_zone_problem(given)
    assert message is not None and f"did you mean {suggestion}?" in message
    assert "Area/Location name such as Europe/London, America/New_York" in message


def test_a_wrong_zone_lists_the_zones_of_the_sites_country():
    message = time_zone_problem("Sydney time", country="au")
    assert message is not None and "those of AU are Australia/Lord_Howe" in message
