"""The measure pages' data and figures computed in the background as the server starts.

``careloop serve`` computes every dashboard page's shared data (the overview,
each measure's data and figures, each site) in one background thread, so that
the first person to open a measure page reads it from
:mod:`careloop.web.pages.dashboard_cache` instead of waiting for the charts.
A request for a page that is being computed waits for that one computation,
never starts a second. Results another worker or an earlier start already
wrote are read from their files, so a restart costs next to nothing.
"""

from __future__ import annotations

import logging
import threading
import time

from careloop.core.settings import Settings
from careloop.store.database import Registry
from careloop.web.pages.dashboards import warm_pages

# The server's own log (uvicorn shows it), where an operator looks at start-up.
log = logging.getLogger("uvicorn.error")
READY = "dashboard pages ready"


def _warm(settings: Settings, registry: Registry) -> None:
    start = time.perf_counter()
    try:
        pages = warm_pages(settings, registry)
    except Exception:
        # A page that fails here fails for its visitor too, with careloop's error page.
        log.exception("could not compute the dashboard pages in advance")
        return
    if pages:
        log.info(f"{READY}: %d in %.1f s", pages, time.perf_counter() - start)


def start_warming(settings: Settings, registry: Registry) -> threading.Thread:
    """Compute the dashboard pages in a background thread (a daemon: it never holds up exit)."""
    thread = threading.Thread(
        target=_warm, args=(settings, registry), name="careloop-dashboard-warm-up", daemon=True
    )
    thread.start()
    return thread
