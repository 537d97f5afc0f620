"""Ingestion as durable jobs (app/service/jobs.py, ingest/jobs.py): kill -9 during a queued, a
running and a cancelling job; cancel; watched folders; the audit trail of every job. Real store,
real parser, real embedder, real child processes killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.identity.users import User
from app.platform.settings import KuraSettings
from app.service import KuraService
from app.service.jobs import JobCancelled
from ingest.jobs import CANCELLED, DONE, JobQueue, parse_interval
from retrieval.store import ALL_GROUPS

from .conftest import REPO

ADMIN = User("ann", frozenset({"admin", "employee"}))
WORDS = "leave expenses badges laptops parking training remote holidays payroll pension travel".split()

# A child process: a KuraService whose writer runs the queue in DATA_DIR; submits the folders
# given as JSON first, then prints the running job's progress until the queue is empty.
_DRIVER = """
import json, sys, time
from pathlib import Path
from base import offline
import ingest.pipeline
ingest.pipeline.EMBED_BATCH = 16  # a store flush every few files: many points to be killed at
from app.service import KuraService
from app.platform.settings import KuraSettings
from app.identity.users import User
from models.embedder import load_embedder

data, model, submits = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
service = KuraService(KuraSettings(data_dir=data), embedder=load_embedder(model, "onnx"))
admin = User("ann", frozenset({"admin"}))
for folder, groups in submits:
    print("job", service.submit_ingest(admin, Path(folder), groups).id, flush=True)
service.start_writer()
while True:
    unfinished = service.ingest_jobs.queue.unfinished()
    if not unfinished:
        break
    for job in unfinished:
        if job.state == "running":
            print("progress", job.id, job.progress.get("files_done", 0), flush=True)
    time.sleep(0.05)
service.close()
print("done", flush=True)
"""


def _text(title: str, sections: int, seed: int) -> str:
    body = "\n\n".join(
        f"## {title} part {j}\n\n"
        + " ".join(WORDS[(seed * 7 + j * 3 + k) % len(WORDS)] for k in range(140))
        + f". End of part {j} of {title}."
        for j in range(sections)
    )
    return f"# {title}\n\n{body}\n"


def _folder(root: Path, name: str, files: int, sections: int) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (folder / f"{name}-{i}.md").write_text(_text(f"{name} {i}", sections, i), encoding="utf-8")
    return folder


def _service(data_dir: Path, embedder) -> KuraService:
    service = KuraService(KuraSettings(data_dir=data_dir), embedder=embedder)
    return service


def _paths(service: KuraService) -> dict[str, tuple]:
    """Per ingested path: its document, the manifest's chunk count, the store's chunk count."""
    store, manifest = service.index.store, service.index.manifest
    out = {}
    for f in manifest.all_files():
        document = manifest.document(f.doc_id)
        out[f.path] = (f.doc_id, document.chunk_count if document else None, len(store.chunks_of(f.doc_id, ALL_GROUPS)))
    return out


def _clean(service: KuraService) -> None:
    store, manifest = service.index.store, service.index.manifest
    assert store.count(ALL_GROUPS, staged=True) == 0
    assert manifest.pending_swaps() == [] and manifest.dirty_documents() == []
    assert store.document_ids(ALL_GROUPS) == {d.doc_id for d in manifest.documents()}


def _run_child(data: Path, model: Path, submits: list, kill_when=None) -> bool:
    """Run the driver; SIGKILL it as soon as `kill_when(job_id, files_done)` says so.
    Returns whether it was killed (False: the queue emptied first)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(data), str(model), json.dumps(submits)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "KURA_DATA_DIR": str(data)},
    )
    assert child.stdout is not None
    try:
        for line in child.stdout:
            parts = line.split()
            if parts[:1] == ["progress"] and kill_when and kill_when(int(parts[1]), int(parts[2])):
                child.send_signal(signal.SIGKILL)
                child.wait()
                return True
            if parts[:1] == ["done"]:
                break
    finally:
        if child.poll() is None:
            child.wait(timeout=300)
    return False


def test_kill_9_during_queued_running_and_cancelling_jobs_converges_to_the_sequential_result(
    tmp_path: Path, embedder, onnx_embedder_dir: Path
) -> None:
    docs = tmp_path / "docs"
    first = _folder(docs, "first", 6, 4)
    second = _folder(docs, "second", 4, 2)
    third = _folder(docs, "third", 6, 4)
    data = tmp_path / "crashed"
    submits = [[str(first), ["staff"]], [str(second), ["staff"]], [str(third), ["hr"]]]

    # 1. Killed while job 1 runs (jobs 2 and 3 queued behind it).
    assert _run_child(data, onnx_embedder_dir, submits, kill_when=lambda job, done: job == 1 and done >= 1)
    queue = JobQueue(data / "jobs.sqlite3")
    states = {j.id: j.state for j in queue.list()}
    assert states == {1: "running", 2: "queued", 3: "queued"}

    # 2. Restart: job 1 resumes, job 2 runs; killed while job 3 is being cancelled (the cancel
    # comes from another process, like `kura jobs cancel 3`, just before the kill).
    def cancel_then_kill(job: int, done: int) -> bool:
        if job == 3 and done >= 1:
            queue.request_cancel(3)
            return True
        return False

    assert _run_child(data, onnx_embedder_dir, [], kill_when=cancel_then_kill)

    # 3. Restart and let the queue empty.
    assert not _run_child(data, onnx_embedder_dir, [])
    jobs = {j.id: j for j in queue.list()}
    queue.close()
    assert [jobs[i].state for i in (1, 2, 3)] == [DONE, DONE, CANCELLED]
    assert jobs[1].attempts == 2 and jobs[3].attempts == 1  # job 1 resumed, job 3 never rerun

    crashed = _service(data, embedder)
    sequential = _service(tmp_path / "sequential", embedder)
    try:
        for folder, groups in submits:
            sequential.ingest(ADMIN, Path(folder), groups)
        _clean(crashed)
        after, clean = _paths(crashed), _paths(sequential)
        third_done = {p: v for p, v in after.items() if p.startswith(str(third) + "/")}
        assert {p: v for p, v in after.items() if p not in third_done} == {
            p: v for p, v in clean.items() if not p.startswith(str(third) + "/")
        }
        # The cancelled job: what it finished is complete, what it did not is absent.
        assert 0 < len(third_done) < 6
        assert all(clean[p] == v for p, v in third_done.items())
        # Each killed job left an audit entry naming what it made searchable.
        entries = list(crashed.audit.entries())
        interrupted = {e["job"]: e for e in entries if e["action"] == "job_interrupted"}
        assert interrupted[1]["then"] == "resumed"
        named = set(interrupted[3]["documents"]) if 3 in interrupted else set()
        named |= {d for e in entries if e["action"] == "ingest" and e.get("job") == 3 for d in e["documents"]}
        assert named == {v[0] for v in third_done.values()}
        first_docs = {v[0] for p, v in after.items() if p.startswith(str(first) + "/")}
        audited_first = set(interrupted[1]["documents"]) | {
            d for e in entries if e["action"] == "ingest" and e.get("job") == 1 for d in e["documents"]
        }
        assert audited_first == first_docs
    finally:
        crashed.close()
        sequential.close()


def test_cancelled_running_job_keeps_its_finished_files_and_leaves_the_rest_untouched(
    tmp_path: Path, embedder, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.pipeline

    monkeypatch.setattr(ingest.pipeline, "EMBED_BATCH", 8)
    folder = _folder(tmp_path / "docs", "big", 10, 3)
    service = _service(data_dir, embedder)
    try:
        job = service.submit_ingest(ADMIN, folder, ["staff"])
        cancelled: list[int] = []

        def cancel_at_first_file(event) -> None:
            if event.files_done >= 1 and not cancelled:
                cancelled.append(service.cancel_job(ADMIN, job.id).id)

        with pytest.raises(JobCancelled):
            service.ingest_jobs.wait(job.id, cancel_at_first_file)
        finished = service.job(ADMIN, job.id)
        assert finished.state == CANCELLED
        done = {r["path"] for r in finished.report["results"] if r["status"] == "ingested"}
        assert 0 < len(done) < 10
        assert set(_paths(service)) == done  # nothing of the unfinished files, not even staged
        _clean(service)
        actions = [e["action"] for e in service.audit.entries() if e.get("job") == job.id]
        assert actions == ["job_submitted", "job_started", "job_cancel", "ingest"]
        # The same folder again: the rest is ingested, the finished files are unchanged.
        report = service.ingest(ADMIN, folder, ["staff"])
        assert report.count("unchanged") == len(done) and report.count("ingested") == 10 - len(done)
    finally:
        service.close()


def test_a_queued_job_cancelled_never_runs(tmp_path: Path, embedder, data_dir: Path) -> None:
    service = _service(data_dir, embedder)
    try:
        blocker = service.submit_ingest(ADMIN, _folder(tmp_path / "docs", "a", 4, 3), ["staff"])
        queued = service.submit_ingest(ADMIN, _folder(tmp_path / "docs", "b", 2, 1), ["staff"])
        assert service.cancel_job(ADMIN, queued.id).shown_state in ("cancelling", "cancelled")
        service.ingest_jobs.wait(blocker.id)
        with pytest.raises(JobCancelled):
            service.ingest_jobs.wait(queued.id)
        assert not any("/b/" in p for p in _paths(service))
        assert service.job(ADMIN, queued.id).started_at is None
    finally:
        service.close()


def test_watched_folder_picks_up_an_added_a_changed_and_a_deleted_file_within_one_interval(
    tmp_path: Path, embedder, data_dir: Path
) -> None:
    folder = _folder(tmp_path / "docs", "watched", 3, 1)
    service = _service(data_dir, embedder)
    every = 1.5
    try:
        watched = service.watch_folder(ADMIN, folder, ["hr"], every)
        service.start_writer()
        _wait_for(lambda: len(_paths(service)) == 3, "the first sync")
        before = _paths(service)

        (folder / "added.md").write_text(_text("added", 1, 9), encoding="utf-8")
        (folder / "watched-0.md").write_text(_text("changed", 2, 5), encoding="utf-8")
        (folder / "watched-1.md").unlink()
        changed_at = time.time()

        def synced() -> bool:
            now = _paths(service)
            return (
                str(folder / "added.md") in now
                and str(folder / "watched-1.md") not in now
                and now.get(str(folder / "watched-0.md"), (None,))[0] != before[str(folder / "watched-0.md")][0]
            )

        _wait_for(synced, "the re-sync")
        synced_at = time.time()
        _clean(service)
        runs = [
            j for j in service.jobs(ADMIN) if j.watched_id == watched.id and (j.finished_at or 1e18) >= changed_at
        ]
        assert runs and all(j.submitted_by == "ann" for j in runs)
        # Picked up by the next run: within one interval, plus that run's own duration, plus the
        # scheduler's 0.5 s poll (and slack for a loaded machine).
        longest = max((j.finished_at or synced_at) - (j.started_at or j.submitted_at) for j in runs)
        assert synced_at - changed_at <= every + longest + 2.0
        listed = service.watched_folders(ADMIN)[0]
        assert listed.last_run is not None and listed.next_run > listed.last_run
        assert all(g == ("hr",) for g in {f.groups for f in service.index.manifest.all_files()})
    finally:
        service.close()


def _wait_for(condition, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout_s} s")


def test_readers_and_other_threads_follow_one_job_while_it_runs(tmp_path: Path, embedder, data_dir: Path) -> None:
    """Two threads follow the same job; both get progress and the same final report."""
    folder = _folder(tmp_path / "docs", "shared", 4, 2)
    service = _service(data_dir, embedder)
    try:
        job = service.submit_ingest(ADMIN, folder, ["staff"])
        seen: dict[str, list] = {"a": [], "b": []}

        def follow(name: str) -> None:
            service.ingest_jobs.wait(job.id, lambda e: seen[name].append(e.files_done))

        threads = [threading.Thread(target=follow, args=(n,)) for n in seen]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert all(seen[n] and seen[n][-1] == 4 for n in seen)
        finished = service.job(ADMIN, job.id)
        assert finished.state == DONE and finished.progress["files_done"] == 4
        assert finished.progress["chunks_per_s"] > 0 and "current" in finished.progress
    finally:
        service.close()


def test_intervals_read_like_the_cli_writes_them() -> None:
    assert [parse_interval(t) for t in ("30s", "15m", "2h", "1d", "90")] == [30, 900, 7200, 86400, 90]
    for bad in ("", "soon", "-5m", "0"):
        with pytest.raises(ValueError, match="30s, 15m"):
            parse_interval(bad)


def test_cli_ingest_beside_a_running_writer_is_run_and_followed_there(
    data_dir: Path, tmp_path: Path, onnx_embedder_dir: Path
) -> None:
    """`kura ingest` while another process holds the writer (a server, `kura jobs work`): the
    job goes into the shared queue, that writer runs it, the CLI follows it to its report."""
    from ingest.jobs import WriterLock

    folder = _folder(tmp_path / "docs", "cli", 3, 1)
    env = {
        **os.environ,
        "KURA_DATA_DIR": str(data_dir),
        "KURA_EMBEDDER_PATH": str(onnx_embedder_dir),
        "PYTHONPATH": str(REPO),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.doors.cli", "jobs", "work"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        _wait_for(lambda: WriterLock(data_dir / "jobs.lock").held_elsewhere(), "the worker taking the writer lock")
        done = subprocess.run(
            [sys.executable, "-m", "app.doors.cli", "ingest", str(folder), "--groups", "staff"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ingested" in done.stdout and "3 " in done.stdout
        listed = subprocess.run(
            [sys.executable, "-m", "app.doors.cli", "jobs", "list"], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert listed.returncode == 0 and "done" in listed.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
    from app.audit.log import AuditLog

    started = [e for e in AuditLog(data_dir / "audit.jsonl").entries() if e["action"] == "job_started"]
    assert [e["writer_pid"] for e in started] == [worker.pid]
