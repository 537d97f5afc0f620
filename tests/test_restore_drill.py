"""The restore drill, as an operator runs it, on a real `kura serve` (tests/e2e/helpers.py) spoken
to over HTTP with real API keys:

1. a site with documents, an employee with a read key, feedback on an answer, a model added and in
   use, a watched folder, and an upload over the API;
2. `kura backup` while searches run and an ingest job of 60 files is half done;
3. the server stops; `kura restore` into an empty data directory; the backup's documents are whole
   (none half there); `kura serve` again: the interrupted job resumes and finishes;
4. the same key answers the same question with the same citations and finds the same passages;
   the password still signs in; feedback, the upload (it re-ingests as unchanged) and the model in
   use are back; `kura audit verify` passes and the next entry chains on from the backup's last.
The timings it prints are one run's, not a benchmark (see README "Backups that bring everything back")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from app.audit.log import AuditLog
from app.identity.users import ADMIN, EMPLOYEE, User
from app.platform.settings import KuraSettings
from app.service import KuraService
from app.service.data_files import undeclared
from models.registry import ModelRegistry, packaged_llm_path
from retrieval.store import ALL_GROUPS
from tests.conftest import REPO
from tests.e2e.helpers import kura_server

pytestmark = pytest.mark.slow

PASSWORD = "Cedar-window-5512"
BOSS = User("boss", frozenset({ADMIN, EMPLOYEE}), ("staff",))
ANN = User("ann", frozenset({EMPLOYEE}), ("staff",))
QUESTION = "How many days of annual leave do employees get?"
HANDBOOK = {
    "leave.md": "# Annual leave\n\nEmployees get twenty-five days of annual leave per year. Unused days "
    "may be carried over until the end of March.\n",
    "expenses.md": "# Expenses\n\nReceipts are submitted within thirty days through the finance portal.\n",
}
MEMO = b"# Parking\n\nVisitors park on level minus two; reception hands out the code.\n"
BULK = 60  # ~9 chunks each: the ingest runs for several seconds, in several store flushes


def _kura(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    env.update(KURA_DATA_DIR=str(data), COLUMNS="200", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "app.doors.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def _wait_job(http: httpx.Client, job_id: int, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = http.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def _cited(http: httpx.Client) -> list[tuple]:
    r = http.post("/api/v1/ask", json={"question": QUESTION})
    assert r.status_code == 200, r.text
    return [(c["path"], c["page"], c["doc_id"], c["chunk_id"]) for c in r.json()["citations"]]


def _found(http: httpx.Client) -> list[tuple]:
    r = http.post("/api/v1/search", json={"query": "annual leave carried over parking receipts", "limit": 3})
    assert r.status_code == 200, r.text
    return [(p["path"], p["chunk_id"], round(p["score"], 4)) for p in r.json()["passages"]]


def _seed(data: Path, tmp: Path, embedder, llm) -> tuple[str, str]:
    """The site before the drill, through the use cases; returns (ann's read key, boss's admin key)."""
    service = KuraService(KuraSettings(data_dir=data), embedder=embedder, llm=llm)
    try:
        service.accounts.add("boss", PASSWORD, [ADMIN, EMPLOYEE], ["staff"])
        service.accounts.add("ann", PASSWORD, [EMPLOYEE], ["staff"])
        handbook = tmp / "handbook"
        handbook.mkdir()
        for name, text in HANDBOOK.items():
            (handbook / name).write_text(text, encoding="utf-8")
        service.ingest(BOSS, handbook, ["staff"])
        service.watch_folder(BOSS, handbook, ["staff"], 24 * 3600)
        model = tmp / "site-models" / "site-smol.gguf"
        model.parent.mkdir()
        shutil.copy2(packaged_llm_path(), model)
        ModelRegistry(service.settings.models_manifest_path).add(model, name="site-smol")
        service.use_model(BOSS, "site-smol")
        answer = service.ask(ANN, QUESTION)
        "".join(answer.tokens())
        service.record_feedback(ANN, answer, helpful=False, comment="say where to apply")
        _, read_key = service.create_api_key(ANN, "read", "intranet bot")
        _, admin_key = service.create_api_key(BOSS, "admin", "ops script")
        return read_key, admin_key
    finally:
        service.close()


def _bulk(tmp: Path) -> Path:
    folder = tmp / "notices"
    folder.mkdir()
    for n in range(BULK):
        body = f"# Notice {n}\n\n" + " ".join(f"Item {n}-{k} concerns room {n * 7 + k}." for k in range(200))
        (folder / f"notice-{n:02d}.md").write_text(body, encoding="utf-8")
    return folder


def _search_load(url: str, key: str, stop: threading.Event, statuses: list[int]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
        while not stop.is_set():
            statuses.append(http.post("/api/v1/search", json={"query": "annual leave", "limit": 5}).status_code)


def _whole_documents(data: Path, embedder) -> int:
    """Opens the restored data as the server will (recovery included); every document whole."""
    service = KuraService(KuraSettings(data_dir=data), embedder=embedder)
    try:
        index = service.index
        for document in index.manifest.documents():
            assert len(index.store.chunks_of(document.doc_id, ALL_GROUPS)) == document.chunk_count, document
        assert index.store.document_ids() == index.manifest.document_ids()
        assert index.store.count(ALL_GROUPS, staged=True) == 0
        assert service.accounts.authenticate("ann", PASSWORD).name == "ann"  # the same password
        return len(index.manifest.documents())
    finally:
        service.close()


def test_restore_drill_brings_the_same_service_back(tmp_path: Path, embedder, llm) -> None:
    site, restored, backup = tmp_path / "site" / "data", tmp_path / "restored" / "data", tmp_path / "backup"
    site.parent.mkdir()
    restored.parent.mkdir()
    read_key, admin_key = _seed(site, tmp_path, embedder, llm)
    notices = _bulk(tmp_path)
    env = {"KURA_INGEST_ROOTS": str(tmp_path)}

    with kura_server(site, env) as url:
        reader = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}, timeout=300)
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=300)
        r = admin.post("/api/v1/ingest/upload", files=[("files", ("memo.md", MEMO, "text/markdown"))],
                       data={"groups": "staff"})
        assert r.status_code == 202 and _wait_job(admin, r.json()["job_id"])["state"] == "done", r.text
        job = admin.post("/api/v1/ingest/folder", json={"folder": str(notices), "groups": ["staff"]}).json()
        stop, statuses = threading.Event(), []
        load = threading.Thread(target=_search_load, args=(url, read_key, stop, statuses))
        load.start()
        while admin.get(f"/api/v1/jobs/{job['job_id']}").json()["state"] != "running":
            time.sleep(0.1)
        time.sleep(3)  # into the job: some notices swapped in, others being embedded
        started = time.monotonic()
        taken = _kura(site, "backup", str(backup))
        backup_s = time.monotonic() - started
        state_after = admin.get(f"/api/v1/jobs/{job['job_id']}").json()["state"]
        stop.set()
        load.join()
        assert taken.returncode == 0 and "(by the server)" in taken.stdout, taken.stdout + taken.stderr
        assert state_after == "running", "the backup must be taken while the ingest runs"
        assert statuses and set(statuses) == {200}, statuses
        assert _wait_job(admin, job["job_id"])["state"] == "done"
        cited, found = _cited(reader), _found(reader)
        reader.close()
        admin.close()
    assert cited and found
    backed_up = [e for e in AuditLog(backup / "audit.jsonl").entries()]

    started = time.monotonic()
    put_back = _kura(restored, "restore", str(backup))
    restore_s = time.monotonic() - started
    assert put_back.returncode == 0, put_back.stdout + put_back.stderr
    whole = _whole_documents(restored, embedder)
    assert 2 <= whole < 2 + 1 + BULK, whole  # the handbook, the memo, and the notices the backup caught

    with kura_server(restored, env) as url:
        reader = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}, timeout=300)
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=300)
        resumed = admin.get(f"/api/v1/jobs/{job['job_id']}").json()
        assert _wait_job(admin, job["job_id"])["state"] == "done", resumed  # the caught job resumed
        assert _cited(reader) == cited  # the same key, the same question: the same citations
        again_found = _found(reader)
        assert [hit[:2] for hit in again_found] == [hit[:2] for hit in found]  # the same passages, same order
        # Measured: the scores agree to ~0.1%, not exactly: the store was rebuilt differently (the
        # backup's staged chunks dropped at recovery, the rest ingested by the resumed job), and its
        # lexical statistics follow. Near-ties further down (the notices) can swap; these three cannot.
        assert [hit[2] for hit in again_found] == pytest.approx([hit[2] for hit in found], rel=5e-3)
        uploads = [p for p in (restored / "uploads").rglob("memo.md")]
        assert len(uploads) == 1 and uploads[0].read_bytes() == MEMO
        again = admin.post("/api/v1/ingest/folder", json={"folder": str(uploads[0].parent), "groups": ["staff"]})
        report = _wait_job(admin, again.json()["job_id"])["report"]
        assert [r["status"] for r in report["results"]] == ["unchanged"], report  # no re-embedding
        verified = _kura(restored, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        reader.close()
        admin.close()

    log = list(AuditLog(restored / "audit.jsonl").entries())
    assert log[: len(backed_up)] == backed_up and len(log) > len(backed_up)
    assert log[len(backed_up)]["prev"] == backed_up[-1]["hash"]  # the next entry chains on
    assert AuditLog(restored / "audit.jsonl").verify() == []
    assert ModelRegistry(restored / "models.json").active().name == "site-smol"
    service = KuraService(KuraSettings(data_dir=restored), embedder=embedder)
    try:
        assert [f.comment for f in service.feedback(BOSS)] == ["say where to apply"]
    finally:
        service.close()
    assert undeclared(site) == [] and undeclared(restored) == []
    print(
        f"\ndrill: backup under load {backup_s:.1f} s ({taken.stdout.strip()}), {len(statuses)} searches "
        f"meanwhile, all 200; restore {restore_s:.1f} s; documents whole in the backup: {whole}"
    )
