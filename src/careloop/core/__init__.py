"""Foundations every other package stands on: settings, errors, time, ids."""

from careloop.core.errors import CareloopError
from careloop.core.settings import Settings, load_settings

__all__ = ["CareloopError", "Settings", "load_settings"]
