"""The careloop web application.

``create_app(settings)`` builds a FastAPI app bound to one installation: it
opens (and migrates) the registry, mounts the JSON API under ``/api`` with
its OpenAPI description at ``/openapi.json``, the pages, static files and the
error handlers. Nothing connects at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.templating import Jinja2Templates

from careloop import __version__
from careloop.core.content import activate
from careloop.core.mail import Mailer
from careloop.core.settings import Settings
from careloop.practice.feedback.alerts import unread_count
from careloop.trust.auditing import ChainStatusCache
from careloop.trust.installation import open_registry
from careloop.trust.status import registry_reachable
from careloop.warehouse.connection import warehouse_opener
from careloop.web import fhir_api
from careloop.web.api import capture as api_capture
from careloop.web.api import community as api_community
from careloop.web.api import community_strategy as api_community_strategy
from careloop.web.api import measures as api_measures
from careloop.web.api import proms as api_proms
from careloop.web.api import trust as api_trust
from careloop.web.assets import load_assets
from careloop.web.assets import router as assets_router
from careloop.web.body_limit import BodyLimitMiddleware
from careloop.web.cds_hooks import router as cds_hooks_router
from careloop.web.compression import CompressionMiddleware
from careloop.web.errors import install_error_handlers
from careloop.web.languages import install_i18n
from careloop.web.languages import router as languages_router
from careloop.web.pages import admin as pages_admin
from careloop.web.pages import alerts as pages_alerts
from careloop.web.pages import audit as pages_audit
from careloop.web.pages import community as pages_community
from careloop.web.pages import community_assessment as pages_community_assessment
from careloop.web.pages import community_forms as pages_community_forms
from careloop.web.pages import community_reports as pages_community_reports
from careloop.web.pages import community_strategy as pages_community_strategy
from careloop.web.pages import dashboards as pages_dashboards
from careloop.web.pages import entry as pages_entry
from careloop.web.pages import home as pages_home
from careloop.web.pages import invitation as pages_invitation
from careloop.web.pages import knowledge as pages_knowledge
from careloop.web.pages import measure_page as pages_measure_page
from careloop.web.pages import portal as pages_portal
from careloop.web.pages import prom as pages_prom
from careloop.web.pages import proms as pages_proms
from careloop.web.pages import public as pages_public
from careloop.web.pages.dashboard_warmup import start_warming
from careloop.web.rate_limit import WindowCounter, public_rate_middleware
from careloop.web.security import security_middleware

HERE = Path(__file__).resolve().parent


def create_app(settings: Settings, *, warm_dashboards: bool = False) -> FastAPI:
    """Build the app for the installation ``settings`` describe; with ``warm_dashboards``
    (``careloop serve``) it computes the dashboard pages in the background as it starts."""
    registry = open_registry(settings, create=False)
    activate(settings.content)  # the content packages the pages and API describe

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if warm_dashboards:
            start_warming(settings, registry)
        yield
        registry.close()

    app = FastAPI(
        title="careloop",
        version=__version__,
        description="careloop's JSON API: sites, users, patients, consent and the audit trail.",
        docs_url=None,  # the interactive docs pull scripts from a CDN; the CSP forbids that
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.mailer = Mailer.from_settings(settings)
    # The warehouse is opened per request, read-only, by the one opener built here.
    app.state.warehouse = warehouse_opener(settings)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["version"] = __version__
    # Read and compressed once here, never per request; templates link the hashed addresses.
    app.state.assets = load_assets(HERE / "static")
    templates.env.globals["asset_url"] = app.state.assets.url
    templates.env.globals["unread_alerts"] = lambda p: unread_count(registry, p)
    install_i18n(templates.env)
    app.state.templates = templates
    settings.signing_key()
    app.state.public_requests = WindowCounter(settings.public_requests_per_minute, 60)
    app.state.failed_links = WindowCounter(settings.failed_links_per_hour, 3600)
    app.state.audit_chain = ChainStatusCache()

    # Inside the security middleware, so that a refused body still gets its headers.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    # A flood is refused before its body is read, and the refusal gets the security headers.
    app.middleware("http")(public_rate_middleware)
    app.middleware("http")(security_middleware)
    # Outermost: it compresses the response as the security middleware finished it.
    app.add_middleware(CompressionMiddleware)
    install_error_handlers(app)
    app.include_router(assets_router)

    @app.get("/health", tags=["service"])
    def health(request: Request) -> dict[str, Any]:
        """Liveness and registry reachability (no authentication, no data)."""
        return api_trust.health_payload(registry_reachable(request.app.state.registry))

    for api in (api_trust, api_capture, api_proms, api_community, api_community_strategy):
        app.include_router(api.router)
    app.include_router(api_measures.router)
    app.include_router(pages_home.router)
    app.include_router(cds_hooks_router)
    app.include_router(pages_entry.router)
    app.include_router(pages_prom.router)
    app.include_router(pages_proms.router)
    app.include_router(pages_invitation.router)
    app.include_router(pages_portal.router)
    app.include_router(pages_public.router)
    app.include_router(languages_router)
    app.include_router(pages_knowledge.router)
    app.include_router(pages_alerts.router)
    app.include_router(pages_community_reports.router)
    app.include_router(pages_audit.router)
    app.include_router(pages_admin.router)
    app.include_router(fhir_api.router)
    app.include_router(pages_measure_page.router)
    app.include_router(pages_dashboards.router)
    # Before the community pages: /cycles/new is a form, not a cycle's id.
    app.include_router(pages_community_forms.router)
    app.include_router(pages_community.router)
    app.include_router(pages_community_strategy.router)
    app.include_router(pages_community_assessment.router)
    return app
