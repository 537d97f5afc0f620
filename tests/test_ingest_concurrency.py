"""Admins ingesting at the same time through one KuraService (the UI shares one among every
browser session): several folders at once, a re-sync loop beside them, two admins uploading
small batches every few hundred milliseconds, re-ingest, ACL changes and deletes in between.

At the end the index must equal a sequential ingest of the same files: every document with its
full chunk count, nothing staged, no sqlite error, and every searchable document covered by an
audited ingestion. Real store, real parser, real embedder; only the timing is random (seeded).
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from app.identity.users import User
from app.platform.settings import KuraSettings
from app.service import DocumentNotFound, KuraService
from retrieval.store import ALL_GROUPS

from .conftest import shared_doc

ADMIN_ANN = User("ann", frozenset({"admin", "employee"}))
ADMIN_BOB = User("bob", frozenset({"admin", "employee"}))
WORDS = (
    "leave expenses badges laptops parking training remote holidays payroll pension travel "
    "visitors archive backup contract invoice audit safety canteen library"
).split()


def _text(rng: random.Random, title: str, sections: int) -> str:
    body = "\n\n".join(
        f"## Part {j}\n\n"
        + " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120)))
        + f". This is part {j} of {title}."
        for j in range(sections)
    )
    return f"# {title}\n\n{body}\n"


def _folder(root: Path, name: str, rng: random.Random, files: int) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for i in range(files):
        title = f"{name} note {i}"
        (folder / f"note-{i}.md").write_text(_text(rng, title, rng.randint(1, 3)), encoding="utf-8")
    return folder


def _service(data_dir: Path, embedder) -> KuraService:
    service = KuraService(KuraSettings(data_dir=data_dir), embedder=embedder)
    return service


def _state(service: KuraService) -> dict:
    """Per ingested path: its document and that document's chunks in the store and manifest."""
    store, manifest = service.index.store, service.index.manifest
    per_path = {}
    for f in manifest.all_files():
        document = manifest.document(f.doc_id)
        per_path[f.path] = (
            f.doc_id,
            document.chunk_count if document else None,
            len(store.chunks_of(f.doc_id, ALL_GROUPS)),
        )
    return {
        "paths": per_path,
        "store_documents": sorted(store.document_ids(ALL_GROUPS)),
        "manifest_documents": sorted(d.doc_id for d in manifest.documents()),
        "chunks": store.count(ALL_GROUPS),
        "staged": store.count(ALL_GROUPS, staged=True),
        "journal": manifest.pending_swaps(),
        "dirty": manifest.dirty_documents(),
    }


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_concurrent_admins_lose_nothing_and_match_a_sequential_ingest(
    seed: int, tmp_path: Path, embedder, data_dir: Path
) -> None:
    rng = random.Random(seed)
    docs = tmp_path / "docs"
    resynced = _folder(docs, "resynced", rng, 4)
    folders = [_folder(docs, name, rng, rng.randint(3, 5)) for name in ("hr", "finance", "legal")]
    shutil.copy2(shared_doc("en/scotus_transcript_p1.pdf"), folders[0] / "transcript.pdf")
    uploads: list[Path] = []
    errors: list[BaseException] = []

    service = _service(data_dir, embedder)
    service.ingest(ADMIN_ANN, resynced, ["staff"])  # there before the rush: re-synced, re-ingested
    resynced_doc = service.index.manifest.file(str(resynced / "note-0.md")).doc_id  # type: ignore[union-attr]
    busy = threading.Event()
    busy.set()

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # collected: the test fails naming every error
                errors.append(exc)

        return run

    def ingest_folder(folder: Path, group: str) -> Callable[[], None]:
        return lambda: service.ingest(ADMIN_ANN, folder, [group])

    def resync_loop() -> None:
        while busy.is_set():
            service.ingest(ADMIN_BOB, resynced, ["staff"])
            time.sleep(0.2)

    def admin_uploads(admin: User, delay_rng: random.Random) -> None:
        for k in range(3):
            time.sleep(delay_rng.uniform(0.1, 0.4))
            batch = data_dir / "uploads" / f"{admin.name}-{k}"
            batch.mkdir(parents=True)
            for i in range(delay_rng.randint(1, 2)):
                title = f"{admin.name} upload {k}.{i}"
                (batch / f"upload-{i}.md").write_text(_text(delay_rng, title, 2), encoding="utf-8")
            uploads.append(batch)
            service.ingest(admin, batch, ["staff"])

    def admin_changes(delay_rng: random.Random) -> None:
        for step in range(2):
            time.sleep(delay_rng.uniform(0.1, 0.3))
            service.set_acl(ADMIN_BOB, str(resynced), ["staff", f"extra{step}"])
            time.sleep(delay_rng.uniform(0.1, 0.3))
            try:
                service.reingest(ADMIN_BOB, resynced_doc)
                service.delete(ADMIN_BOB, resynced_doc)
            except DocumentNotFound:
                pass  # deleted before; the re-sync loop adds it back

    threads = [
        threading.Thread(target=guarded(ingest_folder(f, f.name)), name=f"ingest-{f.name}")
        for f in folders
    ]
    threads += [
        threading.Thread(
            target=guarded(partial(admin_uploads, a, random.Random(seed * 10 + i))), name=f"uploads-{a.name}"
        )
        for i, a in enumerate((ADMIN_ANN, ADMIN_BOB))
    ]
    threads.append(threading.Thread(target=guarded(lambda: admin_changes(random.Random(seed))), name="changes"))
    looper = threading.Thread(target=guarded(resync_loop), name="resync-loop")
    looper.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    busy.clear()
    looper.join(timeout=300)
    assert not errors, f"errors in concurrent ingestion: {[f'{type(e).__name__}: {e}' for e in errors]}"

    # The last word for each folder, as a sequential run would have it (groups may differ;
    # chunk counts may not).
    service.ingest(ADMIN_ANN, resynced, ["staff"])
    concurrent = _state(service)
    audited = [
        e.get("folder", "")
        for e in service.audit.entries()
        if e.get("action") == "ingest" and e.get("failed") is not None
    ]
    service.close()

    sequential_service = _service(tmp_path / "sequential", embedder)
    try:
        for folder in [resynced, *folders, *sorted(uploads)]:
            sequential_service.ingest(ADMIN_ANN, folder, ["staff"])
        sequential = _state(sequential_service)
    finally:
        sequential_service.close()

    lost = {p: v for p, v in concurrent["paths"].items() if v[2] != v[1]}
    assert not lost, f"documents recorded with chunks the store does not hold: {lost}"
    assert concurrent["paths"] == sequential["paths"]
    assert concurrent["store_documents"] == sequential["store_documents"] == concurrent["manifest_documents"]
    assert concurrent["chunks"] == sequential["chunks"]
    assert concurrent["staged"] == 0 and concurrent["journal"] == [] and concurrent["dirty"] == []
    for path in concurrent["paths"]:
        assert any(path.startswith(folder.rstrip("/") + "/") for folder in audited), (
            f"{path} is searchable but no audited ingestion covers it"
        )
