"""A second condition is a content package, not an engine edit.

The asthma registry in ``asthma_pkg/`` (a form, a concept map, two measures
and a knowledge object) is registered through :mod:`careloop.core.content`;
the engine captures its records, refreshes the warehouse with its concepts,
runs and describes its measures and loads its knowledge object. Nothing here
patches engine code.
"""

from __future__ import annotations

from datetime import date
from importlib import metadata

import pytest
from typer.testing import CliRunner

from careloop.capture import entry, forms_store
from careloop.capture.examples import example_file, example_forms
from careloop.cli.main import app
from careloop.content.ibd import PACKAGE as IBD
from careloop.core.content import (
    ConceptMap,
    ContentPackage,
    active_content,
    available_packages,
    content_in_use,
    select_content,
)
from careloop.core.errors import ConfigurationError, NotFound
from careloop.knowledge import load_package
from careloop.measures import describe_definition, load_catalog, run_measures
from careloop.measures.runner import NETWORK, resolve_concepts
from careloop.warehouse.connection import Warehouse, quiet_engine_warnings
from tests.content.asthma_pkg import ACTION_PLAN, ASTHMA_CONTROL
from tests.content.asthma_pkg import PACKAGE as ASTHMA
from tests.foundation import build_installation, make_settings, refresh_installation

# (site, patient index, review date, control level, action plan reviewed)
REVIEWS = [
    ("A", 0, "2026-01-10", "3", "0"),
    ("A", 0, "2026-03-05", "1", "1"),
    ("A", 1, "2026-03-06", "2", "1"),
    ("B", 0, "2026-03-07", "1", "0"),
    ("B", 1, "2026-02-01", "3", "1"),
]
MARCH = {"start": date(2026, 3, 1), "end": date(2026, 3, 31)}


@pytest.fixture
def asthma():
    with content_in_use(select_content(["asthma"], packages=[ASTHMA], entry_points=False)) as c:
        yield c


@pytest.fixture
def inst(tmp_path, database_url, asthma):
    inst = build_installation(make_settings(tmp_path, database_url))
    # The example forms are the active package's: the engine asked, nobody told it "asthma".
    forms_store.import_forms(
        inst.registry, inst.operator, example_file("yaml"), fmt="yaml", name="asthma.yaml"
    )
    for site, index, day, control, plan in REVIEWS:
        entry.create_response(
            inst.registry,
            inst.operator,
            "asthma_review",
            patient_id=inst.patient_ids[site][index],
            event_date=day,
            values={
                "review_date": day,
                "asthma_control": control,
                "act_score": "20",
                "action_plan": plan,
            },
            status="complete",
        )
    yield inst
    inst.registry.close()


def _network(results, measure_id):
    rows = results[(results.measure_id == measure_id) & (results.site == NETWORK)]
    return [(int(r.numerator), int(r.denominator)) for r in rows.itertuples()]


def test_the_asthma_registry_is_captured_refreshed_and_measured_with_no_engine_edit(inst):
    assert [f.name for f in example_forms().forms] == ["asthma_review"]
    report = refresh_installation(inst)
    assert report.persons == 4
    with Warehouse.from_settings(inst.settings, read_only=True) as wh:
        with quiet_engine_warnings():
            control = wh.ibis.sql(
                "SELECT value_as_number FROM observation "
                f"WHERE observation_concept_id = {ASTHMA_CONTROL} ORDER BY observation_date"
            ).execute()
            names = wh.ibis.sql(
                f"SELECT concept_name FROM concept WHERE concept_id = {ACTION_PLAN}"
            ).execute()
        assert list(control.value_as_number) == [3, 3, 1, 2, 1]  # by review date
        assert list(names.concept_name) == ["Written asthma action plan reviewed"]

        catalog = load_catalog(environ={}, entry_points=False)
        assert {"asthma-well-controlled", "asthma-action-plan"} <= set(catalog.ids)
        assert "remission-prevalence" not in catalog.ids  # IBD is not active
        measures = catalog.select(["asthma-well-controlled", "asthma-action-plan"])
        _, warnings = resolve_concepts(wh, measures)
        assert warnings == []  # the package named its local concepts
        run = run_measures(wh, measures, **MARCH)
    assert run.failures == ()
    # Last review well controlled: A0 (1 on 5 March) and B0, of the 4 seen in 12 months.
    assert _network(run.results, "asthma-well-controlled") == [(2, 4)]
    # Reviews in March with a written plan: A0 and A1, of A0, A1 and B0.
    assert _network(run.results, "asthma-action-plan") == [(2, 3)]


def test_the_asthma_measures_are_described_with_the_packages_names_and_labels(asthma):
    well = load_catalog(environ={}, entry_points=False).get("asthma-well-controlled")
    text = describe_definition(well)
    assert "asthma symptom control level: well controlled (1)" in text, text


def test_the_asthma_knowledge_object_loads_and_passes_its_own_tests(asthma):
    folders = active_content().knowledge_objects()
    assert [f.name for f in folders] == ["asthma_reliever_overuse"]
    package = load_package(folders[0])
    assert package.measures == ["asthma-well-controlled"]
    report = package.run_tests()
    assert report.passed, report.summary()


def test_asthma_and_ibd_can_be_active_together():
    both = select_content(["ibd", "asthma"], packages=[ASTHMA], entry_points=False)
    cmap = both.concept_map()
    assert cmap.fields["asthma_control"] == ("Observation", ASTHMA_CONTROL)
    assert cmap.fields["pga"] == IBD.concept_map.fields["pga"]
    assert both.default() is IBD


def test_two_packages_that_give_one_field_two_meanings_are_refused_saying_which():
    clash = ContentPackage(
        name="clash",
        title="Clash",
        root=ASTHMA.root,
        concept_map=ConceptMap(fields={"pga": ("Observation", 2_100_000_999)}),
    )
    with pytest.raises(ConfigurationError) as caught:
        select_content(["ibd", "clash"], packages=[clash], entry_points=False)
    where = [d.location for d in caught.value.details]
    assert where == ["content package 'clash': field 'pga'"]
    assert "'ibd'" in caught.value.details[0].message


def test_an_unknown_content_package_name_is_a_clear_configuration_error():
    with pytest.raises(ConfigurationError, match="No content package is called 'diabetes'"):
        select_content("ibd, diabetes", entry_points=False)
    with pytest.raises(NotFound, match="no knowledge object 'nope'"):
        IBD.knowledge_object("nope")


@pytest.fixture
def asthma_installed(monkeypatch):
    """The asthma package as if a distribution declared it as a ``careloop.content`` entry point."""
    ep = metadata.EntryPoint(
        name="asthma", value="tests.content.asthma_pkg:PACKAGE", group="careloop.content"
    )
    real = metadata.entry_points

    def entry_points(group):
        return [ep] if group == "careloop.content" else real(group=group)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    # The CLI activates what the settings name; put back what was active afterwards.
    with content_in_use(active_content()):
        yield


def test_the_ibd_registry_is_the_default_plugin_and_entry_points_add_packages(asthma_installed):
    assert active_content().names == ["ibd"]
    assert sorted(available_packages()) == ["asthma", "ibd"]
    assert select_content("asthma").get("asthma") is ASTHMA


def test_the_setting_chooses_the_content_the_cli_works_with(
    asthma_installed, monkeypatch, tmp_path
):
    monkeypatch.delenv("CARELOOP_MEASURES_DIR", raising=False)
    monkeypatch.setenv("CARELOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CARELOOP_CONTENT", "asthma")
    done = CliRunner().invoke(app, ["measures", "list", "--format", "csv"])
    assert done.exit_code == 0, done.output
    assert "asthma-action-plan" in done.stdout and "remission-prevalence" not in done.stdout
    monkeypatch.setenv("CARELOOP_CONTENT", "ibd,diabetes")
    done = CliRunner().invoke(app, ["measures", "list"])
    assert done.exit_code != 0
    assert "Error: No content package is called 'diabetes'." in done.output
