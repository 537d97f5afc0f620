"""What the browser tests share: starting a real `kura serve` on a free loopback port, and the
waits that tell when a Streamlit page has finished running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def kura_server(data: Path, env: dict[str, str], cwd: Path = REPO, log: Path | None = None) -> Iterator[str]:
    """`kura serve` (the real CLI, one process) on 127.0.0.1:<free port>, started from `cwd`;
    yields its URL, stops it afterwards and fails if its log holds a traceback."""
    port = free_port()
    log = log or data.parent / "server.log"
    base = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    base.update(KURA_DATA_DIR=str(data), OMP_WAIT_POLICY="PASSIVE", **env)
    base["PYTHONPATH"] = os.pathsep.join([str(REPO), base.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.doors.cli", "serve", "--port", str(port), "--host", "127.0.0.1"],
            cwd=cwd,
            env=base,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("kura serve did not start: " + log.read_text()[-2000:]) from None
                    time.sleep(0.3)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    server_log = log.read_text()
    assert "Traceback" not in server_log, server_log[-3000:]


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until the Streamlit script run is over (no 'running' indicator, no spinner) and its
    elements have drawn (no loading skeleton)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSpinner\"]')"
        " && !document.querySelector('[data-stale=\"true\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')",  # content still loading
        timeout=timeout_ms,
        polling=100,
    )
