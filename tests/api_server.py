"""A real HTTP server on a loopback port for API tests and benchmarks: uvicorn in a thread,
serving kura's API (app/doors/http/api) over a real KuraService. Every log record any logger writes while
it runs is kept, so a test can prove that no API key reaches a log line."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LogKeeper(logging.Handler):
    """Keeps every record's message and extra fields as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.__dict__}")


# Importing Streamlit (any UI test does) gives these loggers a console handler of their own and
# stops them from propagating, so the root logger would never see an access line.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error")


@contextmanager
def kept_logs() -> Iterator[LogKeeper]:
    """Every record at INFO or above, from any logger, kept for the test; the logging setup is
    put back afterwards."""
    keeper = LogKeeper()
    root = logging.getLogger()
    server = [logging.getLogger(name) for name in _SERVER_LOGGERS]
    saved = (root.level, [(log.level, log.propagate, list(log.handlers)) for log in server])
    httpx_level = logging.getLogger("httpx").level
    root.addHandler(keeper)
    root.setLevel(logging.INFO)  # an earlier CLI test may have configured WARNING
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the test client's own URL lines
    for log in server:
        log.setLevel(logging.INFO)
        log.propagate = True
        log.handlers = []
    try:
        yield keeper
    finally:
        root.removeHandler(keeper)
        root.setLevel(saved[0])
        logging.getLogger("httpx").setLevel(httpx_level)
        for log, (level, propagate, handlers) in zip(server, saved[1], strict=True):
            log.setLevel(level)
            log.propagate = propagate
            log.handlers = handlers


class LoopbackServer:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=True, lifespan="off", log_level="info"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
