"""Nothing leaves the machine: ingest -> ask -> UI start run with outbound network made
impossible (`unshare -n`: a network namespace with only loopback), through the real `kura`
CLI, and a socket audit hook records any attempt to reach a non-loopback host or to resolve
a name, so the test proves no code path even tried (not just that failures were tolerated)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_doc

PDF = "en/scotus_transcript_p1.pdf"

# Loaded by every Python process in the test (sitecustomize on PYTHONPATH), children included.
EGRESS_HOOK = textwrap.dedent("""
    import json, os, sys

    _LOG = os.environ["KURA_EGRESS_LOG"]
    _LOCAL = {None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}

    def _local(host):
        return host in _LOCAL or (isinstance(host, str) and host.startswith("127."))

    def _hook(event, args):
        if event == "socket.connect":
            address = args[1]
            if isinstance(address, tuple) and not _local(address[0]):
                _record(event, address)
        elif event == "socket.getaddrinfo":
            if not _local(args[0]):
                _record(event, args[:2])

    def _record(event, target):
        with open(_LOG, "a") as fh:
            entry = {"event": event, "target": repr(target), "argv": sys.argv[:3]}
            fh.write(json.dumps(entry) + "\\n")

    sys.addaudithook(_hook)
""")

DRIVER = textwrap.dedent("""
    import subprocess, sys, time, urllib.request
    kura, docs, question, port = sys.argv[1:5]
    def run(*args):
        done = subprocess.run([kura, *args], capture_output=True, text=True, timeout=400)
        print(f"$ kura {' '.join(args)} -> {done.returncode}", flush=True)
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\\n", flush=True)
        if done.returncode != 0:
            sys.exit(f"kura {args[0]} failed offline")
    run("ingest", docs, "--groups", "everyone")
    run("ask", question)
    ui = subprocess.Popen([kura, "serve", "--host", "127.0.0.1", "--port", port],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                base = f"http://127.0.0.1:{port}"
                page = urllib.request.urlopen(base + "/", timeout=5).read().decode()
                health = urllib.request.urlopen(base + "/_stcore/health", timeout=5).read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or ui.poll() is not None:
                    sys.exit("the UI did not start offline")
                time.sleep(1)
        ok = "<html" in page.lower() and health.strip() == "ok"
        print("UI-PAGE-OK" if ok else "UI-PAGE-BAD", flush=True)
    finally:
        ui.terminate()
        ui.wait(timeout=30)
""")


def _netns_works() -> bool:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
def test_ingest_ask_and_ui_work_with_no_route_off_the_machine(tmp_path: Path):
    if not _netns_works():
        pytest.skip("needs `unshare -n` (root or user namespaces) and iproute2 to cut the network")
    pdf = shared_doc(PDF)
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy2(pdf, docs / pdf.name)
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(EGRESS_HOOK)
    (tmp_path / "driver.py").write_text(DRIVER)
    egress_log = tmp_path / "egress.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    env.update(
        KURA_DATA_DIR=str(tmp_path / "data"),
        KURA_EGRESS_LOG=str(egress_log),
        PYTHONPATH=os.pathsep.join([str(hook_dir), str(REPO)]),
        HOME=str(tmp_path / "home"),  # no cache or config from the developer's home
    )
    kura = str(Path(sys.executable).with_name("kura"))
    done = subprocess.run(
        [
            "unshare",
            "-n",
            "sh",
            "-c",
            'ip link set lo up && exec "$@"',
            "sh",
            sys.executable,
            str(tmp_path / "driver.py"),
            kura,
            str(docs),
            "Who is the petitioner in Knowles v. Mirzayance?",
            "18765",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "UI-PAGE-OK" in output, output[-3000:]
    assert "Citations" in output and pdf.name in output, output[-3000:]
    attempts = (
        [json.loads(line) for line in egress_log.read_text().splitlines()]
        if egress_log.exists()
        else []
    )
    assert attempts == [], f"code paths tried to leave the machine: {attempts[:10]}"


def test_outbound_urls_lists_every_configured_server_and_flags_public_ones(monkeypatch):
    from app.platform.settings import KuraSettings
    from base.offline import outbound_urls

    for name in (
        "HF_ENDPOINT",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    assert outbound_urls(KuraSettings(qdrant_url=None, llm_url=None)) == []
    monkeypatch.setenv("HTTPS_PROXY", "http://8.8.8.8:3128")
    found = outbound_urls(
        KuraSettings(
            qdrant_url="http://kura:s3cret@127.0.0.1:6333", llm_url="http://10.1.2.3:8080/v1"
        )
    )
    assert found == [
        ("KURA_QDRANT_URL", "http://127.0.0.1:6333", "loopback"),
        ("KURA_LLM_URL", "http://10.1.2.3:8080/v1", "private network"),
        ("HTTPS_PROXY", "http://8.8.8.8:3128", "PUBLIC"),
    ]


def test_outbound_urls_include_the_directory_and_the_identity_provider():
    from app.platform.settings import KuraSettings
    from base.offline import outbound_urls

    settings = KuraSettings(ldap_url="ldaps://10.0.0.5:636", oidc_issuer="https://127.0.0.1:8443/realms/staff")
    found = [entry for entry in outbound_urls(settings) if entry[0].startswith(("KURA_LDAP", "KURA_OIDC"))]
    assert found == [
        ("KURA_LDAP_URL", "ldaps://10.0.0.5:636", "private network"),
        ("KURA_OIDC_ISSUER", "https://127.0.0.1:8443/realms/staff", "loopback"),
    ]


def test_every_dependency_telemetry_switch_is_off_in_a_fresh_process():
    code = (
        "import base.offline, os, json; "
        "print(json.dumps({k: os.environ.get(k) for k in base.offline.OFFLINE_ENV}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DO_NOT_TRACK", "HF_HUB_OFFLINE")}
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "true"  # an operator cannot turn this back on
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, check=True
    )
    values = json.loads(out.stdout)
    assert values["DO_NOT_TRACK"] == "1" and values["HF_HUB_OFFLINE"] == "1"
    assert values["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"
    assert values["HF_HUB_DISABLE_TELEMETRY"] == "1" and values["SCARF_NO_ANALYTICS"] == "true"
