"""A big sync parses in a separate process (no GIL shared with the embedder), with the same
chunks and the same per-file failures as parsing in the ingesting process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import parse_pool
from ingest.manifest import Manifest
from ingest.pipeline import Index, sync_folder
from retrieval.store import ALL_GROUPS, EdgeStore


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
