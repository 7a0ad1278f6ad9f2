"""The registry: operational data in SQLAlchemy 2 models, Alembic migrations,
and the unit of work every change goes through."""

from careloop.store.database import Registry, connect_registry

__all__ = ["Registry", "connect_registry"]
