"""Knowledge object packages: reading, validation errors with their place, evaluation, tests."""

from __future__ import annotations

import copy
import json
import zipfile
from datetime import date
from pathlib import Path

import pytest

from careloop.core.errors import InputError, ValidationFailed
from careloop.knowledge import (
    EXAMPLES,
    card_problems,
    load_package,
    new_package_skeleton,
    package_from_dict,
    write_package,
)

IBD = EXAMPLES / "ibd_steroid_review"


def example_dict() -> dict:
    return copy.deepcopy(load_package(IBD).to_dict())


def locations(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [d.location for d in exc.value.details]


def test_the_example_package_loads_and_its_tests_pass():
    package = load_package(IBD)
    assert package.identifier == "ibd-steroid-review"
    assert package.version == "1.0.0"
    assert package.hook == "patient-view"
    assert package.measures == ["sustained-steroid-free-remission"]
    report = package.run_tests()
    assert report.passed, report.summary()
    assert len(report.cases) == 7


def test_a_package_round_trips_through_a_zip_with_the_same_content_hash(tmp_path: Path):
    package = load_package(IBD)
    target = write_package(package, tmp_path / "ko.zip", zip_file=True)
    again = load_package(target)
    assert again.sha256() == package.sha256()
    # Reproducible: the same package gives the same zip bytes.
    assert write_package(package, tmp_path / "ko2.zip", zip_file=True).read_bytes() == (
        target.read_bytes()
    )


def test_a_missing_file_and_bad_json_are_named(tmp_path: Path):
    folder = write_package(load_package(IBD), tmp_path / "ko")
    (folder / "tests.json").unlink()
    (folder / "rules.json").write_text("{not json")
    with pytest.raises(ValidationFailed) as exc:
        load_package(folder)
    assert locations(exc) == ["rules.json", "tests.json"]
    assert "line 1" in exc.value.details[0].message


def test_a_zip_that_is_not_a_zip_is_refused(tmp_path: Path):
    bogus = tmp_path / "ko.zip"
    bogus.write_text("hello")
    with pytest.raises(InputError, match="neither a folder nor a zip"):
        load_package(bogus)


def test_validation_points_at_the_json_path_of_each_problem():
    data = example_dict()
    data["metadata"]["version"] = "1.0"
    data["rules"]["rules"][0]["card"]["summary"] = "x" * 140
    data["rules"]["rules"][0]["card"]["indicator"] = "urgent"
    data["rules"]["rules"][0]["when"]["all"][2]["count"]["prefetch"] = "meds"
    data["rules"]["rules"][0]["card"]["links"][0]["type"] = "relative"
    with pytest.raises(ValidationFailed) as exc:
        package_from_dict(data)
    found = locations(exc)
    assert "metadata.json:$.version" in found
    assert "rules.json:$.rules[0].card.summary" in found
    assert "rules.json:$.rules[0].card.indicator" in found
    assert "rules.json:$.rules[0].when.all[2].count.prefetch" in found
    assert "rules.json:$.rules[0].card.links[0].type" in found


def test_a_variant_wording_over_140_characters_is_refused():
    data = example_dict()
    data["rules"]["rules"][0]["variants"]["cards"]["peer-comparison"]["summary"] = "y" * 150
    with pytest.raises(ValidationFailed) as exc:
        package_from_dict(data)
    assert locations(exc) == ["rules.json:$.rules[0].variants.cards.peer-comparison.summary"]


def test_a_rule_without_a_comparison_is_refused():
    data = example_dict()
    data["rules"]["rules"][0]["when"] = {"count": {"prefetch": "medications"}}
    with pytest.raises(ValidationFailed) as exc:
        package_from_dict(data)
    assert locations(exc) == ["rules.json:$.rules[0].when"]


def test_suggestions_need_a_selection_behaviour():
    card = {
        "summary": "s",
        "indicator": "info",
        "source": {"label": "x"},
        "suggestions": [{"label": "do it"}],
    }
    assert [p.path for p in card_problems(card)] == ["card.selectionBehavior"]


def test_a_card_with_an_empty_value_breaks_the_spec():
    card = {"summary": "s", "indicator": "info", "source": {"label": "x"}, "detail": ""}
    assert "card.detail" in [p.path for p in card_problems(card)]


def test_a_failing_case_is_reported_with_its_name():
    data = example_dict()
    data["tests"][2]["expect"] = [{"rule": "steroid-dependent-without-sparing"}]
    report = package_from_dict(data).run_tests()
    assert not report.passed
    assert "FAILED active azathioprine: no card: expected 1 card(s), got 0" in report.summary()


def test_tokens_in_the_card_are_filled_from_the_context():
    package = load_package(IBD)
    case = package.tests[0]
    cards = package.evaluate(case["context"], case["prefetch"], today=date(2026, 6, 1))
    action = cards[0].card["suggestions"][0]["actions"][0]
    assert action["resource"]["subject"]["reference"] == "Patient/p1"


def test_the_skeleton_is_a_valid_package_whose_test_passes(tmp_path: Path):
    package = package_from_dict(new_package_skeleton("my-first-ko"))
    assert package.run_tests().passed
    write_package(package, tmp_path / "ko")
    assert json.loads((tmp_path / "ko" / "metadata.json").read_text())["status"] == "draft"


def test_a_zip_bomb_is_stopped(tmp_path: Path):
    target = tmp_path / "bomb.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", b" " * (6 * 1024 * 1024))
    with pytest.raises(InputError, match="more than 5 MB"):
        load_package(target)


def _risk_package(model: dict) -> dict:
    return {
        "metadata": {
            "identifier": "risk-ko",
            "version": "1.0.0",
            "title": "Risk",
            "description": "A card when the modelled risk is high.",
            "contributors": ["tests"],
            "license": "CC0-1.0",
        },
        "service": {
            "id": "risk-ko",
            "hook": "patient-view",
            "description": "risk",
            "prefetch": {"patient": "Patient/{{context.patientId}}"},
        },
        "rules": {
            "rules": [
                {
                    "id": "high-risk",
                    "when": {
                        "risk": {"features": {"age": {"age": {"prefetch": "patient"}}}},
                        ">=": 0.5,
                    },
                    "card": {
                        "summary": "High risk",
                        "indicator": "warning",
                        "source": {"label": "model"},
                    },
                }
            ]
        },
        "tests": [{"name": "t", "expect": []}],
        "model": model,
    }


def test_a_risk_rule_uses_the_packaged_model_as_the_risk_module_predicts():
    import numpy as np
    import pandas as pd

    from careloop.analysis.risk import fit_risk_model

    rng = np.random.default_rng(3)
    age = rng.uniform(0, 18, 400)
    event = (rng.uniform(0, 1, 400) < 1 / (1 + np.exp(-(age - 9)))).astype(int)
    model = fit_risk_model(
        pd.DataFrame({"age": age, "event": event}),
        outcome="event",
        predictors=["age"],
        penalty="none",
        n_bootstrap=0,
    )
    package = package_from_dict(_risk_package(model.to_dict()))
    expected = model.predict_risk(pd.DataFrame({"age": [3.0, 16.0]}))
    young, old = ({"resourceType": "Patient", "birthDate": b} for b in ("2023-01-01", "2010-01-01"))
    today = date(2026, 6, 1)
    fired = [bool(package.evaluate({}, {"patient": p}, today=today)) for p in (young, old)]
    assert fired == [bool(expected.iloc[0] >= 0.5), bool(expected.iloc[1] >= 0.5)] == [False, True]
    with pytest.raises(ValidationFailed) as exc:
        package_from_dict({**_risk_package(model.to_dict()), "model": None})
    assert locations(exc) == ["rules.json:$.rules[0].when.risk"]


def test_an_order_sign_rule_reads_the_draft_orders_in_the_context():
    data = {
        "metadata": {
            "identifier": "order-ko",
            "version": "1.0.0",
            "title": "t",
            "description": "d",
            "contributors": ["x"],
            "license": "CC0-1.0",
        },
        "service": {"id": "order-ko", "hook": "order-sign", "description": "d"},
        "rules": {
            "rules": [
                {
                    "id": "methotrexate-daily",
                    "when": {
                        "exists": {
                            "context": "draftOrders",
                            "resourceType": "MedicationRequest",
                            "code": ["6851"],
                        }
                    },
                    "card": {
                        "summary": "Methotrexate is given weekly, not daily",
                        "indicator": "critical",
                        "source": {"label": "x"},
                    },
                }
            ]
        },
        "tests": [
            {
                "name": "draft methotrexate fires",
                "context": {
                    "userId": "Practitioner/1",
                    "patientId": "1",
                    "draftOrders": {
                        "resourceType": "Bundle",
                        "entry": [
                            {
                                "resource": {
                                    "resourceType": "MedicationRequest",
                                    "medicationCodeableConcept": {
                                        "coding": [
                                            {
                                                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                "code": "6851",
                                            }
                                        ]
                                    },
                                }
                            }
                        ],
                    },
                },
                "expect": [{"rule": "methotrexate-daily", "indicator": "critical"}],
            },
            {
                "name": "no draft orders, no card",
                "context": {"userId": "Practitioner/1", "patientId": "1"},
                "expect": [],
            },
        ],
    }
    assert package_from_dict(data).run_tests().passed


def test_a_where_clause_without_one_comparison_is_refused():
    data = copy.deepcopy(load_package(EXAMPLES / "ibd_methotrexate_safety").to_dict())
    selector = data["rules"]["rules"][0]["when"]["exists"]
    selector["where"] = [{"path": "dosageInstruction.0.timing.repeat.periodUnit"}]
    with pytest.raises(ValidationFailed) as exc:
        package_from_dict(data)
    assert locations(exc) == ["rules.json:$.rules[0].when.exists.where[0]"]


def _lying_zip(target: Path, unpacked_mb: int, declared: int) -> None:
    """A zip whose metadata.json unpacks to ``unpacked_mb`` MB but declares ``declared`` bytes."""
    zeros = b"0" * (1024 * 1024)
    with (
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("metadata.json", "w") as member,
    ):
        for _ in range(unpacked_mb):
            member.write(zeros)
    data = bytearray(target.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + 22 : local + 26] = declared.to_bytes(4, "little")
    data[central + 24 : central + 28] = declared.to_bytes(4, "little")
    target.write_bytes(bytes(data))


def test_a_zip_that_lies_about_its_sizes_is_refused_without_unpacking_it(tmp_path: Path):
    import tracemalloc

    target = tmp_path / "liar.zip"
    _lying_zip(target, unpacked_mb=200, declared=100)
    assert target.stat().st_size < 1024 * 1024
    tracemalloc.start()
    with pytest.raises(InputError, match="damaged"):
        load_package(target)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Before, the whole 200 MB were unpacked in one go before the sizes were compared.
    assert peak < 30 * 1024 * 1024
