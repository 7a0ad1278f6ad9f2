"""careloop's one settings class.

Built once by the app or the CLI (:func:`load_settings`) and passed down;
nothing reads the environment or connects to a database at import time.
Every field can be set with an environment variable ``CARELOOP_<NAME>``.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from careloop.core.errors import ConfigurationError

ConsentState = Literal[
    "direct_care_only", "improvement_only", "improvement_and_research", "withdrawn"
]

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret


class Settings(BaseSettings):
    """Configuration of one careloop installation."""

    model_config = SettingsConfigDict(env_prefix="CARELOOP_", extra="forbid", frozen=True)

    data_dir: Path = Field(
        default=Path("careloop-data"),
        description="Directory holding the registry, warehouse, secret key and exports.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the registry (operational database). Default: a SQLite "
            "file `registry.sqlite3` in the data directory, in WAL mode. Production: "
            "postgresql+psycopg://user:password@host/dbname."
        ),
    )
    warehouse_url: str | None = Field(
        default=None,
        description=(
            "URL of the OMOP warehouse. Default: a DuckDB file `warehouse.duckdb` in the "
            "data directory. Also postgres://… or spark://local."
        ),
    )
    warehouse_memory_limit: str | None = Field(
        default="1GB",
        description=(
            "Memory the embedded DuckDB warehouse may use before it spills to disk "
            "(e.g. 4GB); empty for DuckDB's default of 80% of the machine."
        ),
    )
    max_input_mb: int = Field(
        default=1024,
        ge=1,
        description=(
            "The largest input file careloop reads (records CSV, dictionary, FHIR file, "
            "measure YAML), in megabytes; a larger or endless one is refused before it "
            "fills the memory."
        ),
    )
    max_request_body_mb: int = Field(
        default=10,
        ge=1,
        description=(
            "The largest request body the web app accepts (e.g. an uploaded data "
            "dictionary), in megabytes; a larger one gets 413."
        ),
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key that signs cookies and tokens. Default: read from `secret_key` in the "
            "data directory, generated there (mode 600) on first run."
        ),
    )
    measures_dir: Path | None = Field(
        default=None,
        description=(
            "A folder of measure definitions (YAML) added to the built-in measures; "
            "`--measures-dir` overrides it."
        ),
    )
    chromium: Path | None = Field(
        default=None,
        description=(
            "The Chromium (or Chrome) program that prints reports to PDF "
            "(`careloop report ... --pdf`). Default: chromium, chromium-browser or "
            "google-chrome on the PATH."
        ),
    )
    content: str = Field(
        default="ibd",
        description=(
            "The content packages (registries) in use, comma-separated: their forms, "
            "concepts, measures and knowledge objects. Default: the example IBD registry."
        ),
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="Minutes of inactivity that end a session."
    )
    reauth_minutes: int = Field(
        default=15,
        ge=1,
        description="Sensitive actions need a password entered within this many minutes.",
    )
    lockout_threshold: int = Field(
        default=5, ge=1, description="Failed logins in a row that lock an account."
    )
    lockout_minutes: int = Field(default=15, ge=1, description="How long a lock-out lasts.")
    prom_session_minutes: int = Field(
        default=60,
        ge=5,
        le=24 * 60,
        description=(
            "Minutes a patient has to fill a PROM after opening its link: the link's secret "
            "is swapped at once for a session cookie this long, so it leaves the address bar."
        ),
    )
    handover_age: int = Field(
        default=16,
        ge=1,
        le=30,
        description=(
            "The age at which a young person takes over from their carers: what a carer "
            "was allowed to do for them as a child lapses on that birthday, until the young "
            "person grants it again. 16 follows UK practice; ImproveCareNow's US sites use 18."
        ),
    )
    public_requests_per_minute: int = Field(
        default=300,
        ge=0,
        description=(
            "Requests one network address may make per minute to the pages anyone can reach "
            "without logging in (login, PROM links); more are answered 429. 0 turns the limit "
            "off. Generous, because a clinic's patients may share one address."
        ),
    )
    failed_links_per_hour: int = Field(
        default=20,
        ge=0,
        description=(
            "Unknown, used or expired PROM links and invitation links one network address "
            "may open per hour before it is refused (429) for the rest of the hour: guessing "
            "links is not possible. 0 turns the limit off."
        ),
    )
    default_consent: ConsentState = Field(
        default="improvement_and_research",
        description="Consent given to patients who arrive without a consent record (opt-out).",
    )
    secure_cookies: bool = Field(
        default=False,
        description=(
            "Mark cookies Secure even when CARELOOP_PUBLIC_BASE_URL does not say https "
            "(they are whenever it does)."
        ),
    )
    disclosure_threshold: int = Field(
        default=10,
        ge=0,
        description=(
            "Counts from 1 to this are hidden in results that leave the installation "
            "(`measures run --shared`), with what would reveal them; 0 turns this off."
        ),
    )
    disclosure_noise: bool = Field(
        default=False,
        description=(
            "Also blur published counts (i2b2/SHRINE style: σ 1.33, at most ±3), the same "
            "blur for the same count every time."
        ),
    )
    disclosure_repeat_limit: int = Field(
        default=0,
        ge=0,
        description=(
            "Refuse a shared release made this many times within "
            "`CARELOOP_DISCLOSURE_REPEAT_DAYS` days (0: no limit)."
        ),
    )
    disclosure_repeat_days: int = Field(
        default=30, ge=1, description="The window of the repeat limit, in days."
    )
    public_base_url: str | None = Field(
        default=None,
        description=(
            "The address people and EHRs reach careloop at, e.g. https://careloop.example.org "
            "(with the path prefix, if any). With https, cookies are marked Secure; CDS Hooks "
            "JWTs must name it in `aud` (e.g. https://careloop.example.org/cds-services/…). "
            "Required behind a reverse proxy: careloop does not trust the Host or "
            "X-Forwarded-* headers."
        ),
    )

    smtp_host: str = Field(
        default="",
        description=(
            "The SMTP server that sends careloop's e-mail (invitations). Empty: messages are "
            "written as .eml files into `outbox/` in the data directory instead, to be read "
            "or sent by hand."
        ),
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="The SMTP server's port.")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="none",
        description=(
            "How the connection to the SMTP server is protected: none, starttls (upgrade a "
            "plain connection, usually port 587) or tls (TLS from the start, usually port 465)."
        ),
    )
    smtp_username: str = Field(
        default="", description="The SMTP login, when the server asks for one."
    )
    smtp_password: SecretStr | None = Field(
        default=None, description="The SMTP password, with `CARELOOP_SMTP_USERNAME`."
    )
    mail_from: str = Field(
        default="careloop@localhost",
        description="The sender of careloop's e-mail, e.g. `Care team <careloop@example.org>`.",
    )

    @field_validator("public_base_url")
    @classmethod
    def _absolute_base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                f"{value!r} is not an absolute http(s) URL; give the address careloop is "
                "reached at, e.g. https://careloop.example.org"
            )
        if parsed.query or parsed.fragment:
            raise ValueError(f"{value!r} must not have a query or fragment")
        return value.strip().rstrip("/")

    @property
    def served_over_https(self) -> bool:
        """Whether the configured public address is https."""
        return bool(self.public_base_url and self.public_base_url.startswith("https://"))

    @property
    def max_input_bytes(self) -> int:
        """``max_input_mb`` in bytes."""
        return self.max_input_mb * 1024 * 1024

    @property
    def max_request_body_bytes(self) -> int:
        """``max_request_body_mb`` in bytes."""
        return self.max_request_body_mb * 1024 * 1024

    @property
    def registry_url(self) -> str:
        """The registry URL, with the embedded default resolved."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'registry.sqlite3').resolve()}"

    @property
    def resolved_warehouse_url(self) -> str:
        """The warehouse URL, with the embedded default resolved."""
        if self.warehouse_url:
            return self.warehouse_url
        return f"duckdb://{(self.data_dir / 'warehouse.duckdb').resolve()}"

    def ensure_data_dir(self) -> Path:
        """Create the data directory (mode 700) if needed and return it."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot create the data directory {self.data_dir}: {exc.strerror}. "
                "Set CARELOOP_DATA_DIR to a writable directory."
            ) from exc
        return self.data_dir

    def signing_key(self) -> str:
        """The secret key; generated into the data directory on first use if absent."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.ensure_data_dir() / SECRET_KEY_FILE
        if path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise ConfigurationError(
                    f"{path} is readable by other users (mode {mode:o}). Run `chmod 600 {path}`."
                )
            return path.read_text().strip()
        key = secrets.token_urlsafe(48)
        # O_EXCL: two processes starting at once must not both write a key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
