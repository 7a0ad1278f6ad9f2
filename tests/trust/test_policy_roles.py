"""The roles the policy grants are the roles the registry stores."""

from __future__ import annotations

from careloop.store.models import ROLES as STORED_ROLES
from careloop.trust.policy import ROLE_DESCRIPTIONS, ROLES


def test_the_policy_knows_exactly_the_roles_the_registry_accepts_in_the_same_order():
    # The registry cannot import the policy (store sits below trust), so it keeps its own list.
    assert ROLES == STORED_ROLES
    assert set(ROLE_DESCRIPTIONS) == set(ROLES)
