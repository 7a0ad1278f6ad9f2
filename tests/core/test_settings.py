import stat

import pytest
from pydantic import ValidationError

from careloop.core.errors import ConfigurationError
from careloop.core.settings import load_settings


def test_defaults_put_everything_in_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.registry_url == f"sqlite:///{tmp_path / 'careloop-data' / 'registry.sqlite3'}"
    assert settings.resolved_warehouse_url.endswith("careloop-data/warehouse.duckdb")
    assert settings.session_idle_minutes == 30


def test_environment_variables_with_the_careloop_prefix_configure(tmp_path, monkeypatch):
    monkeypatch.setenv("CARELOOP_DATA_DIR", str(tmp_path / "x"))
    monkeypatch.setenv("CARELOOP_SESSION_IDLE_MINUTES", "5")
    settings = load_settings()
    assert settings.data_dir == tmp_path / "x"
    assert settings.session_idle_minutes == 5


def test_an_unknown_setting_is_refused():
    with pytest.raises(ValidationError):
        load_settings(no_such_setting=1)


def test_secret_key_is_generated_once_with_mode_600(tmp_path):
    settings = load_settings(data_dir=tmp_path / "d")
    key = settings.signing_key()
    path = tmp_path / "d" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 48
    assert load_settings(data_dir=tmp_path / "d").signing_key() == key


def test_a_secret_key_readable_by_others_is_refused(tmp_path):
    settings = load_settings(data_dir=tmp_path)
    settings.signing_key()
    (tmp_path / "secret_key").chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        settings.signing_key()
