"""One small demo installation (the `careloop demo` pipeline, ~20 s) shared by the dashboard tests.

The dashboard and community test modules ask :func:`demo_installation`; the
first call in a pytest process runs the pipeline, later calls reuse it. Those
modules carry :data:`DEMO_GROUP`, so that under pytest-xdist they run on one
worker and the pipeline runs once, not once per worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from careloop.core.settings import Settings
from careloop.demo.pipeline import DEFAULT_SEED, DEMO_MEASURES, run_demo
from careloop.demo.seed import DemoLogin
from careloop.trust.principal import Principal
from tests.foundation import make_settings

DEMO_GROUP = pytest.mark.xdist_group("demo")
"""The modules sharing the demo installation run on one pytest-xdist worker."""

MEASURES_DIR_ENV = {"CARELOOP_MEASURES_DIR": str(DEMO_MEASURES)}
"""The demo's own measures (remission-at-visit, steroid-at-visit) join the built-ins."""


@dataclass(frozen=True)
class DemoInstallation:
    settings: Settings
    logins: tuple[DemoLogin, ...]

    def login(self, role: str, site: str | None = None) -> DemoLogin:
        return next(x for x in self.logins if x.role == role and x.site == site)


_CACHE: dict[str, DemoInstallation] = {}


def demo_installation(factory: pytest.TempPathFactory) -> DemoInstallation:
    if "demo" not in _CACHE:
        root: Path = factory.mktemp("dashboards")
        settings = make_settings(root, None)
        result = run_demo(settings, Principal.operator("tests"), scale="small", seed=DEFAULT_SEED)
        _CACHE["demo"] = DemoInstallation(settings, tuple(result.logins))
    return _CACHE["demo"]
