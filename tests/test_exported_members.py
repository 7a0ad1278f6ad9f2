"""The public API of each package listed is what its __all__ says, sorted
(after httpx's tests/test_exported_members.py), one parametrised test over every package."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

PACKAGES = [
    "careloop.analysis",
    "careloop.analysis.its",
    "careloop.analysis.matching",
    "careloop.analysis.qualitative",
    "careloop.analysis.risk",
    "careloop.analysis.spc",
    "careloop.analysis.trials",
    "careloop.charts",
    "careloop.cli.analyse",
    "careloop.measures.runner",
    "careloop.practice.feedback.dashboards",
    "careloop.trust.disclosure",
    "careloop.trust.identity",
    "careloop.warehouse.connection",
    "careloop.warehouse.omop_schema",
    "careloop.warehouse.quality.engine",
]
MODULES = [
    "careloop.analysis._frames",
    "careloop.analysis.its.design",
    "careloop.analysis.its.model",
    "careloop.analysis.its.result",
    "careloop.analysis.spc.annotations",
    "careloop.analysis.spc.chart",
    "careloop.charts.funnel",
    "careloop.charts.its",
    "careloop.charts.matching",
    "careloop.charts.rdd",
    "careloop.charts.risk",
    "careloop.charts.spc",
    "careloop.trust.consent",
]


def isort_order(name: str) -> tuple[int, str]:
    """ruff's __all__ order (RUF022): CONSTANTS, then Classes, then functions and modules."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("name", PACKAGES + MODULES)
def test_every_exported_name_exists_and_the_list_is_sorted(name: str):
    module = importlib.import_module(name)
    assert all(hasattr(module, n) for n in module.__all__)
    assert module.__all__ == sorted(module.__all__, key=isort_order)


@pytest.mark.parametrize("name", PACKAGES)
def test_a_package_exports_exactly_the_classes_and_functions_it_holds(name: str):
    package = importlib.import_module(name)

    def ours(value: object) -> bool:
        return not isinstance(value, ModuleType) and getattr(value, "__module__", "").startswith(
            "careloop."
        )

    public = {n for n, v in vars(package).items() if not n.startswith("_") and ours(v)}
    assert public == {n for n in package.__all__ if ours(getattr(package, n))}


def test_charts_has_one_module_per_family_with_one_calling_convention():
    charts = importlib.import_module("careloop.charts")
    assert charts.__all__ == ["funnel", "its", "matching", "rdd", "risk", "spc"]
    for family in ("funnel", "its", "spc"):
        assert {"figure", "png", "svg", "vegalite"} <= set(getattr(charts, family).__all__)
