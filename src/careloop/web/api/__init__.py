"""The JSON API under ``/api``, one module per domain package.

Every route is thin: it authenticates the caller and calls one domain
function as that caller (``actor.call(service, …)``, see
:class:`careloop.web.security.Actor`), which checks the policy (role ×
action × site, or membership of a community), scopes the rows and writes
the audit entry. ``trust`` holds sites, users, patients, consent and the
audit trail; ``capture`` forms, responses and PROM links; ``community`` and
``community_strategy`` learning communities, their cycles and their strategy.
"""
