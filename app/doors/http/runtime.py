"""The one KuraService of this server process, which every UI page reads.

`kura serve` builds the service in the server's lifespan (app/doors/http/server.py) and installs it here
for the life of the process. Nothing a browser sends can replace or drop it: unlike
`st.cache_resource`, this holder is not a Streamlit cache, so a websocket `clear_cache` leaves
it alone (the embedded store allows one opener; a second service could not open it).

Usage:
    from app.doors.http.runtime import current_service
    service = current_service()          # in a page, a route handler, a job
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.service import KuraService

_lock = threading.Lock()
_service: KuraService | None = None


class ServiceNotRunning(RuntimeError):
    """The UI ran without the server that owns the data (e.g. `streamlit run` by hand)."""


def install(service: KuraService) -> None:
    """Make `service` the process's one service; refuses a second one while one is installed."""
    global _service
    with _lock:
        if _service is not None and _service is not service:
            raise RuntimeError("a KuraService is already installed in this process")
        _service = service


def uninstall() -> KuraService | None:
    """Remove the installed service (at server shutdown) and return it for closing."""
    global _service
    with _lock:
        service, _service = _service, None
    return service


def current_service() -> KuraService:
    """The service installed by the running server."""
    service = _service
    if service is None:
        raise ServiceNotRunning(
            "kura's service is not running in this process: start the UI with `kura serve`"
        )
    return service
