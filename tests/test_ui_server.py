"""The server's composition: the one service lives in the lifespan, other doors' routes are
served beside the UI with the security headers, kura's Streamlit settings, the websocket filter."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap

import pytest
from starlette.websockets import WebSocketDisconnected

from app.doors.http.server import BackMessageFilter, blocked, streamlit_options
from tests.conftest import REPO


def test_kura_streamlit_settings_follow_kura_settings(settings):
    settings.max_file_mb = 7.5
    options = streamlit_options(settings, "127.0.0.1", 8600)
    assert options["server.maxUploadSize"] == 7 and options["server.port"] == 8600
    assert options["client.toolbarMode"] == "viewer" and options["client.showErrorDetails"] == "none"
    assert options["server.runOnSave"] is False and options["server.allowRunOnSave"] is False
    assert options["server.fileWatcherType"] == "none"
    assert options["server.enableXsrfProtection"] is True and options["browser.gatherUsageStats"] is False


def test_the_websocket_filter_drops_only_what_no_kura_page_needs():
    from streamlit.proto.BackMsg_pb2 import BackMsg

    def message(**fields) -> bytes:
        return BackMsg(**fields).SerializeToString()

    assert blocked(message(clear_cache=True)) == "clear_cache"
    assert blocked(message(set_run_on_save=True)) == "set_run_on_save"
    assert blocked(message(load_git_info=True)) == "load_git_info"
    skills = BackMsg()
    skills.backend_operation_request.install_skills.SetInParent()
    assert blocked(skills.SerializeToString()) == "install_skills"
    rerun = BackMsg()
    rerun.rerun_script.SetInParent()
    for allowed in (rerun.SerializeToString(), message(stop_script=True), message(app_heartbeat=True), b"\xff\x00"):
        assert blocked(allowed) is None


def test_a_browser_gone_mid_write_is_one_log_line_and_other_errors_still_surface(caplog):
    """Streamlit's websocket endpoint raises starlette's WebSocketDisconnected when a browser goes
    away while it writes (it closes the dead socket again). That is a client leaving, not a server
    fault: the filter logs one line. Any other error still reaches the server's error handling."""

    def endpoint(error: Exception):
        async def app(scope, receive, send):  # noqa: ANN001, ARG001
            raise error

        return app

    scope = {"type": "websocket", "path": "/_stcore/stream"}

    async def nothing():  # noqa: ANN202
        return {"type": "websocket.disconnect"}

    gone = WebSocketDisconnected('Cannot call "send" once a close message has been sent.')
    with caplog.at_level(logging.INFO, logger="app.doors.http.server"):
        asyncio.run(BackMessageFilter(endpoint(gone))(scope, nothing, nothing))
    assert "a browser websocket closed while kura was writing to it" in caplog.text
    with pytest.raises(ValueError, match="a real fault"):
        asyncio.run(BackMessageFilter(endpoint(ValueError("a real fault")))(scope, nothing, nothing))


SERVER_CHECK = textwrap.dedent("""
    import sys
    from pathlib import Path
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient
    from app.doors.http import runtime
    from app.doors.http.server import build_app
    from app.platform.settings import KuraSettings

    async def ping(request):
        return JSONResponse({"data_dir": str(runtime.current_service().settings.data_dir)})

    settings = KuraSettings(data_dir=Path(sys.argv[1]))
    app = build_app(settings, extra_routes=[Route("/api/ping", ping)])
    with TestClient(app) as client:
        first = runtime.current_service()
        reply = client.get("/api/ping")
        assert reply.json() == {"data_dir": str(settings.data_dir)}, reply.text
        for response in (reply, client.get("/_stcore/health"), client.get("/")):
            assert "img-src 'self' data:" in response.headers["content-security-policy"]
            assert response.headers["x-frame-options"] == "DENY"
        assert runtime.current_service() is first
    assert runtime._service is None  # the lifespan closed it when the server stopped
    print("SERVER-OK")
""")


def test_an_extra_route_runs_beside_the_ui_with_the_one_service_and_the_headers(tmp_path):
    """In a child process: Streamlit's runtime is one per process."""
    done = subprocess.run(
        [sys.executable, "-c", SERVER_CHECK, str(tmp_path / "data")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert "SERVER-OK" in done.stdout, done.stdout[-2000:] + done.stderr[-3000:]


def test_serving_on_every_interface_makes_no_outbound_call(tmp_path):
    """The container serves on 0.0.0.0, where Streamlit's start-up banner would look up the
    machine's public address; inside a loopback-only network namespace, with the same socket
    audit hook as tests/test_zero_egress.py, `kura serve` tries no outside address at all."""
    import json
    import os

    import pytest

    from tests.test_zero_egress import EGRESS_HOOK, _netns_works

    if not _netns_works():
        pytest.skip("needs `unshare -n` and iproute2")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(EGRESS_HOOK)
    log = tmp_path / "egress.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    env.update(
        KURA_DATA_DIR=str(tmp_path / "data"),
        KURA_EGRESS_LOG=str(log),
        PYTHONPATH=os.pathsep.join([str(hook), str(REPO)]),
        HOME=str(tmp_path),
    )
    probe = (
        "import subprocess, sys, time, urllib.request\n"
        "p = subprocess.Popen([sys.executable, '-m', 'app.doors.cli', 'serve',"
        " '--host', '0.0.0.0', '--port', '18777'])\n"
        "try:\n"
        "    for _ in range(120):\n"
        "        try:\n"
        "            print(urllib.request.urlopen('http://127.0.0.1:18777/_stcore/health').read()); break\n"
        "        except OSError: time.sleep(0.5)\n"
        "finally:\n"
        "    p.terminate(); p.wait(30)\n"
    )
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable, "-c", probe],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=180,
    )  # fmt: skip
    assert "b'ok'" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    attempts = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert attempts == [], attempts
