"""A big sync parses in a separate process (no GIL shared with the embedder), with the same
chunks and the same per-file failures as parsing in the ingesting process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import parse_pool
from ingest.manifest import Manifest
from ingest.pipeline import Index, sync_folder
from retrieval.store import ALL_GROUPS, EdgeStore
from tests.conftest import REPO, shared_doc


def _folder(root: Path) -> Path:
    for i in range(6):
        (root / f"note-{i}.md").parent.mkdir(parents=True, exist_ok=True)
        (root / f"note-{i}.md").write_text(
            f"# Room {i}\n\nMeeting room {i} is booked on day {i % 7}. Bring badge {i}.\n",
            encoding="utf-8",
        )
    (root / "broken.pdf").write_text("this is not a PDF", encoding="utf-8")
    return root


def _chunks(root: Path, data: Path, embedder) -> tuple[dict, dict]:
    index = Index(EdgeStore(data / "store", embedder.dim), Manifest(data / "m.sqlite3"), embedder)
    try:
        report = sync_folder(root, ["staff"], index)
        texts = {
            d: sorted(h.text for h in index.store.chunks_of(d, ALL_GROUPS))
            for d in index.store.document_ids(ALL_GROUPS)
        }
        outcomes = {Path(r.path).name: (r.status, r.chunks, r.reason) for r in report.results}
        return texts, outcomes
    finally:
        index.store.close()
        index.manifest.close()


@pytest.fixture
def no_parse_process() -> Iterator[None]:
    parse_pool.shutdown()
    yield
    parse_pool.shutdown()


def test_a_big_sync_parses_in_a_child_process_with_the_same_chunks_and_failures(
    tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch, no_parse_process: None
) -> None:
    root = _folder(tmp_path / "docs")
    in_thread = _chunks(root, tmp_path / "thread", embedder)
    assert parse_pool._pool is None  # 7 small files: not worth a process

    monkeypatch.setattr(parse_pool, "PROCESS_MIN_FILES", 2)  # now it is
    in_child = _chunks(root, tmp_path / "child", embedder)
    assert parse_pool._pool is not None
    workers = list(parse_pool._pool._processes.values())  # type: ignore[union-attr]
    assert workers and all(w.pid != os.getpid() and w.is_alive() for w in workers)

    assert in_child == in_thread
    status, _, reason = in_child[1]["broken.pdf"]
    assert status == "failed" and reason
    assert sum(1 for s, n, _ in in_child[1].values() if s == "ingested" and n == 1) == 6


def _warmed_worker():
    warm = parse_pool.warm_up()
    assert warm is not None and warm.result(timeout=120) is None
    [worker] = list(parse_pool._pool._processes.values())  # type: ignore[union-attr]
    return worker


def test_warm_up_readies_the_worker_that_then_parses(no_parse_process: None) -> None:
    worker = _warmed_worker()
    outcome = parse_pool.outcome_of(
        parse_pool.parse_in_process(shared_doc("en/scotus_transcript_p1.pdf"), 256, 32), Path("x")
    )
    assert outcome.pieces and not outcome.reason
    assert list(parse_pool._pool._processes.values()) == [worker] and worker.is_alive()  # type: ignore[union-attr]


def test_a_worker_that_died_unwatched_is_replaced_for_the_next_file(no_parse_process: None) -> None:
    worker = _warmed_worker()
    worker.kill()  # as the OOM killer would, with no file waiting on it
    worker.join(timeout=30)
    deadline = time.monotonic() + 30
    while not parse_pool._pool._broken and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)  # the executor's manager thread marks the pool broken
    assert parse_pool._pool._broken  # type: ignore[union-attr]
    assert parse_pool.warm_up() is not None  # the writer's next job: no BrokenProcessPool
    outcome = parse_pool.outcome_of(
        parse_pool.parse_in_process(shared_doc("en/scotus_transcript_p1.pdf"), 256, 32), Path("x")
    )
    assert outcome.pieces and not outcome.reason
    [fresh] = list(parse_pool._pool._processes.values())  # type: ignore[union-attr]
    assert fresh.pid != worker.pid


_WARM_AND_WAIT = """
import sys, time
from ingest import parse_pool
if __name__ == "__main__":
    parse_pool.warm_up().result(timeout=120)
    [worker] = parse_pool._pool._processes.values()
    print(worker.pid, flush=True)
    time.sleep(600)
"""


def test_the_parse_process_exits_when_its_ingesting_process_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "ingesting.py"
    script.write_text(_WARM_AND_WAIT)
    ingesting = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        worker = int(ingesting.stdout.readline())  # type: ignore[union-attr]
        assert _alive(worker)
    finally:
        ingesting.kill()  # no atexit, no shutdown: as the OOM killer or a crash would
        ingesting.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its reaper (init) is left to collect it
