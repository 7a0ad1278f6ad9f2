"""Warehouse URLs: which engines careloop connects to, and where a URL points."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit, urlunsplit

from careloop.core.errors import ConfigurationError

Engine = Literal["duckdb", "postgres", "spark"]

SUPPORTED_SCHEMES = (
    "duckdb://",
    "postgres://",
    "postgresql://",
    "postgresql+psycopg://",
    "spark://local",
)
_POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")
_SPARK_MASTER = re.compile(r"local(\[(\*|[1-9][0-9]*)\])?")
_SPARK_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


@dataclass(frozen=True)
class WarehouseLocation:
    """Where a warehouse URL points, parsed but not connected."""

    engine: Engine
    """Which engine serves the warehouse."""
    url: str
    """The URL with any password replaced by ``***`` (safe to log and show)."""
    path: Path | None = None
    """DuckDB: the database file, ``None`` for in-memory."""
    conninfo: str | None = field(default=None, repr=False)
    """PostgreSQL: the libpq connection URL (may contain a password)."""
    spark_master: str | None = None
    """Spark: the master, e.g. ``local[*]``."""
    spark_database: str | None = None
    """Spark: the database (namespace) that holds the tables, ``None`` for ``default``."""


def parse_warehouse_url(url: str) -> WarehouseLocation:
    """Parse a warehouse URL without connecting.

    Raises:
        ConfigurationError: the URL's scheme is not one careloop supports.
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise _unsupported(url)
    if scheme == "duckdb":
        target = rest.split("?", 1)[0]
        if target in ("", ":memory:", "/:memory:"):
            return WarehouseLocation(engine="duckdb", url="duckdb://:memory:")
        return WarehouseLocation(engine="duckdb", url=url, path=Path(target))
    if scheme in _POSTGRES_SCHEMES:
        conninfo = f"postgresql://{rest}"
        return WarehouseLocation(engine="postgres", url=_redact(url), conninfo=conninfo)
    if scheme == "spark":
        target, _, query = rest.partition("?")
        master = target.strip("/") or "local"
        if not _SPARK_MASTER.fullmatch(master):
            raise ConfigurationError(
                f"Spark warehouse URL {url!r}: only local mode is supported "
                "(spark://local, spark://local[N] or spark://local[*])."
            )
        options = parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(options) - {"database"})
        database = options.get("database", [None])[-1]
        if unknown or (database is not None and not _SPARK_DATABASE.fullmatch(database)):
            raise ConfigurationError(
                f"Spark warehouse URL {url!r}: the only option is ?database=NAME "
                "(letters, digits and underscores)."
            )
        if master == "local":
            master = "local[*]"
        return WarehouseLocation(
            engine="spark", url=url, spark_master=master, spark_database=database
        )
    raise _unsupported(url)


def _unsupported(url: str) -> ConfigurationError:
    return ConfigurationError(
        f"Unsupported warehouse URL {_redact(url)!r}. Supported: "
        + ", ".join(SUPPORTED_SCHEMES)
        + " (set CARELOOP_WAREHOUSE_URL, e.g. duckdb:///path/warehouse.duckdb)."
    )


def _redact(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
