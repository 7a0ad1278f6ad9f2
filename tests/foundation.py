"""Building blocks for tests of the foundation: installations on SQLite or PostgreSQL.

A :class:`Installation` has two sites (A and B), one user per role at each
site (installation-wide for admin, and one installation-wide analyst and
auditor besides), API tokens for all of them and two patients per site.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from careloop.warehouse.refresh import RefreshReport

from careloop.core.settings import Settings, load_settings
from careloop.store.database import Registry
from careloop.trust import identity, patients
from careloop.trust.installation import initialise, open_registry
from careloop.trust.principal import Principal

PASSWORD = "correct horse battery staple"
SITE_ROLES = ("site_lead", "clinician", "data_entry", "analyst", "auditor")
SITES = ("A", "B")


@dataclass
class Installation:
    settings: Settings
    registry: Registry
    operator: Principal
    tokens: dict[str, str] = field(default_factory=dict)
    """Bearer token per user key, e.g. ``clinician@A`` or ``admin``."""
    token_ids: dict[str, int] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    patient_ids: dict[str, list[int]] = field(default_factory=dict)
    """Patient ids per site code."""
    patient_user_of: dict[str, int] = field(default_factory=dict)
    """For ``patient@A``/``carer@A``: the patient they may see."""

    def user_key_roles(self) -> list[str]:
        return list(self.tokens)


def make_settings(tmp_path: Path, database_url: str | None, **extra: object) -> Settings:
    return load_settings(data_dir=tmp_path / "data", database_url=database_url, **extra)


def build_installation(settings: Settings, *, with_users: bool = True) -> Installation:
    operator = Principal.operator("tester")
    initialise(settings, operator, admin_email="admin@example.org", admin_password=PASSWORD)
    registry = open_registry(settings)
    inst = Installation(settings, registry, operator)
    inst.emails["admin"] = "admin@example.org"
    for code in SITES:
        identity.add_site(
            registry,
            operator,
            code=code,
            name=f"Site {code}",
            country="GB",
            time_zone="Europe/London",
        )
    if not with_users:
        return inst
    for code in SITES:
        inst.patient_ids[code] = [
            patients.register_patient(
                registry,
                operator,
                site=code,
                local_id=f"MRN-{code}-{i}",
                given_name=f"Given{code}{i}",
                family_name=f"Family{code}{i}",
                birth_date=f"201{i}-03-04",
                sex="female",
                consent_state="improvement_and_research",
            ).id
            for i in (1, 2)
        ]
    for code in SITES:
        for role in SITE_ROLES:
            key = f"{role}@{code}"
            email = f"{role}.{code.lower()}@example.org"
            identity.add_user(
                registry,
                operator,
                email=email,
                display_name=key,
                password=PASSWORD,
                roles=[(role, code)],
            )
            inst.emails[key] = email
        # A patient of the site with a login, and a carer who is proxy for another patient.
        own, proxied = inst.patient_ids[code]
        p_email = f"patient.{code.lower()}@example.org"
        identity.add_user(
            registry,
            operator,
            email=p_email,
            display_name="patient",
            password=PASSWORD,
            roles=[("patient", code)],
            patient_id=own,
        )
        inst.emails[f"patient@{code}"] = p_email
        inst.patient_user_of[f"patient@{code}"] = own
        c_email = f"carer.{code.lower()}@example.org"
        identity.add_user(
            registry,
            operator,
            email=c_email,
            display_name="carer",
            password=PASSWORD,
            roles=[("carer", code)],
        )
        patients.link_carer(registry, operator, proxied, carer_email=c_email, relationship="parent")
        inst.emails[f"carer@{code}"] = c_email
        inst.patient_user_of[f"carer@{code}"] = proxied
    for key in ("analyst", "auditor"):
        email = f"{key}.network@example.org"
        identity.add_user(
            registry,
            operator,
            email=email,
            display_name=key,
            password=PASSWORD,
            roles=[(key, None)],
        )
        inst.emails[key] = email
    for key, email in inst.emails.items():
        created = identity.create_token(registry, operator, name="tests", for_user=email)
        inst.tokens[key] = created.token
        inst.token_ids[key] = created.id
    return inst


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None for the embedded SQLite default, or a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        yield None
    else:
        yield request.getfixturevalue("postgres_database")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def installation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installation]:
    """A populated installation shared by a module's tests (read-mostly tests only)."""
    tmp = tmp_path_factory.mktemp("installation")
    database_url = None
    server = None
    if request.param == "postgresql":
        import uuid

        from tests.conftest import _admin_execute, _postgres_server_url, _with_database

        server = _postgres_server_url()
        if server is None:
            pytest.skip("no PostgreSQL server: set CARELOOP_TEST_DATABASE_URL")
        name = f"careloop_test_{uuid.uuid4().hex[:12]}"
        _admin_execute(server, f'CREATE DATABASE "{name}"')
        database_url = _with_database(server, name)
    inst = build_installation(make_settings(tmp, database_url))
    try:
        yield inst
    finally:
        inst.registry.close()
        if server is not None and database_url is not None:
            from tests.conftest import _admin_execute

            _admin_execute(
                server, f'DROP DATABASE IF EXISTS "{database_url.rpartition("/")[2]}" WITH (FORCE)'
            )


@pytest.fixture(scope="module")
def api(installation: Installation) -> Iterator[object]:
    """A TestClient for the installation's web app."""
    from fastapi.testclient import TestClient

    from careloop.web.app import create_app

    with TestClient(create_app(installation.settings)) as client:
        yield client


def log_in(client: Any, email: str, password: str = PASSWORD) -> Any:
    """Log ``client`` (a TestClient) in through the real login form; the form's answer."""
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def refresh_installation(inst: Installation, **kwargs: Any) -> RefreshReport:
    """``careloop warehouse refresh`` of the installation: its registry into its warehouse."""
    from careloop.warehouse.connection import Warehouse
    from careloop.warehouse.refresh import refresh_warehouse

    with Warehouse.from_settings(inst.settings) as warehouse:
        return refresh_warehouse(inst.registry, warehouse, inst.operator, **kwargs)


def fhir_import(inst: Installation, principal: Principal, path: Path, **kwargs: Any) -> Any:
    """``careloop fhir import`` into the installation: its registry and warehouse, its settings."""
    from careloop.fhir.importing import import_fhir
    from careloop.warehouse.connection import Warehouse

    kwargs.setdefault("default_consent", inst.settings.default_consent)
    kwargs.setdefault("max_input_bytes", inst.settings.max_input_bytes)
    with Warehouse.from_settings(inst.settings) as warehouse:
        return import_fhir(inst.registry, warehouse, principal, path, **kwargs)
