"""The content registry refuses what it cannot make sense of, saying what to fix."""

from __future__ import annotations

import pytest

from careloop.capture.examples import example_file
from careloop.content.ibd import PACKAGE as IBD
from careloop.core.content import (
    ContentRegistry,
    content_in_use,
    parse_content_names,
    select_content,
)
from careloop.core.errors import ConfigurationError, NotFound


def test_the_setting_is_read_as_names_in_order_without_blanks_or_repeats():
    assert parse_content_names(" ibd, asthma,,ibd ") == ("ibd", "asthma")


def test_one_package_name_may_be_active_once():
    with pytest.raises(ConfigurationError, match="'ibd' is registered twice"):
        ContentRegistry((IBD, IBD))


def test_with_no_content_active_the_example_forms_say_how_to_choose_some():
    with content_in_use(ContentRegistry()), pytest.raises(NotFound, match="CARELOOP_CONTENT"):
        example_file("yaml")


def test_a_package_without_a_format_says_which_formats_it_has():
    with pytest.raises(NotFound, match="no forms as 'fhir'; it has: yaml, redcap"):
        IBD.form_file("fhir")


def test_the_default_content_is_the_ibd_registry_with_its_measures_and_knowledge():
    ibd = select_content("ibd", entry_points=False)
    assert [p.name for _pkg, p in ibd.measure_files()][:2] == [
        "data-completeness.yaml",
        "model-care-adherence.yaml",
    ]
    assert [p.name for p in ibd.knowledge_objects()] == [
        "ibd_methotrexate_safety",
        "ibd_steroid_review",
    ]
