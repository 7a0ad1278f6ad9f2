"""Fixtures shared by the web tests that read the demo installation.

``demo`` is the demo installation (built once per test process and shared,
tests/web/dashboard_demo.py); ``app`` is the web app on it. A module that needs
other ones defines its own fixtures of these names, which take precedence.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from careloop.web.app import create_app
from tests.web.dashboard_demo import MEASURES_DIR_ENV, DemoInstallation, demo_installation


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoInstallation]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in MEASURES_DIR_ENV.items():
            mp.setenv(key, value)
        yield demo_installation(tmp_path_factory)


@pytest.fixture(scope="module")
def app(demo: DemoInstallation) -> Iterator[object]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in MEASURES_DIR_ENV.items():
            mp.setenv(key, value)
        application = create_app(demo.settings)
        yield application
    application.state.registry.close()
