"""Every one of 27 tamperings with the audit trail is refused by the database or found.

The tamperings (tests/trust/tampering.py) are those of issue 14's probe:
deleting, updating, replacing, truncating, renaming, dropping and disabling,
forging, cutting, emptying, reordering and transplanting, each tried naively
and, where the database refuses the naive way, again with the guards
switched off and put back. careloop before this check caught 18 of 27 on
SQLite and 19 of 27 on PostgreSQL; an emptied trail verified as intact.
"""

from __future__ import annotations

import pytest

from careloop.store.database import Registry
from careloop.trust import audit
from careloop.trust.audit import AuditEvent
from careloop.trust.installation import open_registry
from tests.foundation import make_settings
from tests.trust import tampering


def _fill(registry: Registry, n: int) -> None:
    with registry.transaction() as session:
        for i in range(n):
            audit.append(
                session,
                AuditEvent(action="read", category="demographics", user_id=i, details={"i": i}),
            )


@pytest.mark.parametrize("name", list(tampering.TAMPERINGS))
def test_a_tampering_with_the_audit_trail_is_refused_or_found(tmp_path, database_url, name):
    registry = open_registry(make_settings(tmp_path, database_url))
    _fill(registry, 12)
    # A valid trail of another installation, for the transplant.
    other = open_registry(make_settings(tmp_path / "other", None))
    _fill(other, 14)
    ctx = tampering.context_for(registry, other)
    other.close()
    outcome = tampering.attempt(registry, name, ctx)
    registry.close()
    assert outcome in ("refused", "detected"), f"{name} was missed"
