"""The web front door: FastAPI JSON API and server-rendered pages."""

from careloop.web.app import create_app

__all__ = ["create_app"]
