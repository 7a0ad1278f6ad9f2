"""SQLAlchemy 2 models of the registry, all on one ``Base.metadata``.

Importing this package registers every table, whatever is imported first:
the foundation (sites, people, patients, audit, provenance), capture (forms,
versions, responses, PROM links) and knowledge (knowledge objects, CDS Hooks).
Rows that belong to a site carry ``site_id`` (:class:`SiteOwned`) and rows
that belong to a patient carry ``patient_id`` (:class:`PatientOwned`); the
session scope in :mod:`careloop.store.scoping` filters every query on them.
"""

from careloop.store.models.capture import (
    RESPONSE_STATUSES,
    FormDefinition,
    FormVersion,
    PromLink,
    Response,
)
from careloop.store.models.foundation import (
    CONSENT_STATES,
    NAMING_CONVENTION,
    ROLES,
    SEXES,
    ApiToken,
    AuditEntry,
    AuditHead,
    Base,
    CarerLink,
    ConsentRecord,
    Installation,
    LoginLockout,
    Membership,
    Patient,
    PatientOwned,
    ProvenanceRecord,
    Site,
    SiteOwned,
    User,
    UtcDateTime,
    WebSession,
)
from careloop.store.models.knowledge import (
    CdsCard,
    CdsClient,
    CdsFeedback,
    CdsInvocation,
    CdsJti,
    CdsVariantAssignment,
    KnowledgeDeployment,
    KnowledgeObjectVersion,
    KnowledgeTransition,
)

__all__ = [
    "CONSENT_STATES",
    "NAMING_CONVENTION",
    "RESPONSE_STATUSES",
    "ROLES",
    "SEXES",
    "ApiToken",
    "AuditEntry",
    "AuditHead",
    "Base",
    "CarerLink",
    "CdsCard",
    "CdsClient",
    "CdsFeedback",
    "CdsInvocation",
    "CdsJti",
    "CdsVariantAssignment",
    "ConsentRecord",
    "FormDefinition",
    "FormVersion",
    "Installation",
    "KnowledgeDeployment",
    "KnowledgeObjectVersion",
    "KnowledgeTransition",
    "LoginLockout",
    "Membership",
    "Patient",
    "PatientOwned",
    "PromLink",
    "ProvenanceRecord",
    "Response",
    "Site",
    "SiteOwned",
    "User",
    "UtcDateTime",
    "WebSession",
]
