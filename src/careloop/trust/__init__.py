"""Trust: identity, roles, site scoping, consent, the audit trail.

The functions here are what the web layer and the CLI call to act on
behalf of a :class:`Principal`.
"""

from careloop.trust.principal import Grant, Principal, RequestContext
from careloop.trust.work import Work, unit_of_work

__all__ = ["Grant", "Principal", "RequestContext", "Work", "unit_of_work"]
