"""Health of the installation's stores, for /health and `careloop status`."""

from __future__ import annotations

from sqlalchemy import text

from careloop.store.database import Registry


def registry_reachable(registry: Registry) -> bool:
    """True when the registry answers a trivial query."""
    try:
        # A read-only transaction: a health check must never wait for a writer.
        with registry.read_transaction() as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means "not reachable"; /health must not raise
        return False
