"""One server owns the data: while a real `kura serve` runs, the shell's `kura ingest`, `search`,
`ask`, `docs`, `acl`, `backup`, `doctor` and `users` work on the same data directory (through the server, with
the operator token it wrote, mode 0600), a personal key reaches the API and the OpenAI endpoint
on the same port, and the UI still answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.e2e.helpers import kura_server

HANDBOOK = """# Employee handbook

## Vacation
Every employee has 25 days of paid vacation per year. Requests go to your manager.

## Expenses
Submit expense reports within 30 days with receipts attached.
"""


def _kura(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    env.update(KURA_DATA_DIR=str(data), OMP_WAIT_POLICY="PASSIVE", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "app.doors.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def test_shell_commands_work_while_the_server_runs_and_the_ui_still_answers(
    tmp_path: Path, onnx_embedder_dir: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copytree(onnx_embedder_dir.parent, data / "models")  # the embedder's ONNX export, made once
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text(HANDBOOK)
    with kura_server(data, {}, log=tmp_path / "server.log") as url:
        token_file = data / "server.json"
        assert token_file.stat().st_mode & 0o777 == 0o600
        assert json.loads(token_file.read_text())["url"] == url

        ingest = _kura(data, "ingest", str(docs), "--groups", "everyone")
        assert ingest.returncode == 0, ingest.stdout + ingest.stderr
        assert "StoreBusy" not in ingest.stdout + ingest.stderr
        found = _kura(data, "search", "paid vacation days")
        assert found.returncode == 0 and "handbook.md" in found.stdout, found.stdout + found.stderr
        asked = _kura(data, "ask", "How many days of paid vacation per year?")
        assert asked.returncode == 0 and "Citations" in asked.stdout, asked.stdout + asked.stderr
        assert "handbook.md" in asked.stdout
        listed = _kura(data, "docs")
        assert listed.returncode == 0 and "handbook" in listed.stdout, listed.stderr
        acl = _kura(data, "acl", "set", str(docs / "handbook.md"), "--groups", "everyone")
        assert acl.returncode == 0 and "1 files now readable by everyone" in acl.stdout, acl.stdout + acl.stderr
        backup = _kura(data, "backup", str(tmp_path / "backup"))
        assert backup.returncode == 0 and "by the server" in backup.stdout, backup.stdout + backup.stderr
        doctor = _kura(data, "doctor")
        assert "served by" in doctor.stdout, doctor.stdout

        assert _kura(data, "users", "add", "chatbot", "--password", "Quiet-harbor-2024x").returncode == 0
        created = _kura(data, "keys", "create", "--user", "chatbot", "--name", "bot")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as http:
            passages = http.post("/api/v1/search", json={"query": "expense reports"}).json()["passages"]
            assert any("30 days" in p["snippet"] for p in passages)
            assert http.get("/v1/models").json()["data"][0]["id"] == "kura"
            assert http.get("/api/v1/documents").status_code == 403  # a read key of an employee

        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as ui:
            assert ui.status == 200
        with urllib.request.urlopen(f"{url}/", timeout=10) as ui:
            assert ui.status == 200 and b"<html" in ui.read().lower()
    assert not token_file.exists()  # the token lives as long as the server
    audit = [json.loads(line) for line in (data / "audit.jsonl").read_text().splitlines()]
    assert any(e["action"] == "backup" and e["user"] == "local-operator" for e in audit)
    # The server's writer changed it (in-process, the CLI could not have opened the server's store).
    assert any(e["action"] == "acl_change" and e["user"] == "local-operator" and "files" in e for e in audit)
    operator = [e for e in audit if e.get("api_key") == "local-operator-token"]
    assert {"search", "query", "answer"} <= {e["action"] for e in operator}
    assert any(e["action"] == "search" and e["user"] == "chatbot" for e in audit)
    added = next(e for e in audit if e["action"] == "user_change" and e.get("target") == "chatbot")
    assert added["user"] == "local-operator" and added["api_key"] == "local-operator-token"  # via the server
    assert key.split("_", 2)[2] not in (data / "audit.jsonl").read_text()
    assert key.split("_", 2)[2] not in (tmp_path / "server.log").read_text()
