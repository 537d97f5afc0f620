"""kill -9 during `sync_folder`, at several points, then run again: the index must converge to
exactly what one clean run on the final folder gives (no duplicate, orphan or missing chunks)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ingest.manifest import Manifest
from ingest.pipeline import Index, recover, sync_folder
from retrieval.store import ALL_GROUPS, EdgeStore

from .conftest import REPO

# A child process that syncs FOLDER into DATA_DIR and prints one line per progress event.
_DRIVER = """
import sys
from pathlib import Path
from base import offline
from ingest.manifest import Manifest
from ingest.pipeline import Index, recover, sync_folder
from models.embedder import load_embedder
from retrieval.store import EdgeStore

data, folder, model = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
embedder = load_embedder(model, "onnx")  # the ONNX export starts in 2 s, torch in 10+
store = EdgeStore(data / "store", embedder.dim)
index = Index(store, Manifest(data / "manifest.sqlite3"), embedder)
recover(index)  # once, at open, as the service's writer does
print("ready", flush=True)
sync_folder(folder, ["staff"], index, on_progress=lambda e: print("file", e.files_done, flush=True))
print("done", flush=True)
"""

TOPICS = [
    ("leave", "Employees receive twenty days of annual leave. Requests go to the line manager."),
    ("expenses", "Travel expenses are reimbursed within thirty days. Keep every receipt."),
    ("security", "Badges must be worn visibly. Visitors are escorted at all times."),
    ("laptops", "Laptops are encrypted with full-disk encryption and locked when unattended."),
    ("holidays", "The office closes for the national holidays listed on the intranet."),
    ("parking", "Parking permits are issued by facilities for one year at a time."),
    ("training", "Every employee completes the security training within the first month."),
    ("remote", "Remote work is allowed up to three days a week with manager approval."),
]


def _write_folder(root: Path) -> None:
    for i, (name, sentence) in enumerate(TOPICS):
        body = "\n\n".join(f"{sentence} Section {j} of the {name} policy." for j in range(6 + i))
        (root / f"{name}.md").write_text(f"# {name.title()}\n\n{body}\n", encoding="utf-8")
    shutil.copy2(root / "leave.md", root / "leave-copy.md")


def _change_folder(root: Path) -> None:
    (root / "expenses.md").write_text(
        "# Expenses\n\nExpenses are now paid weekly.\n", encoding="utf-8"
    )
    (root / "leave-copy.md").write_text(
        "# Leave (draft)\n\nLeave rules under review.\n", encoding="utf-8"
    )
    (root / "security.md").rename(root / "security-policy.md")
    (root / "parking.md").unlink()
    shutil.copy2(root / "laptops.md", root / "laptops-2.md")


def _run_and_kill(data: Path, folder: Path, model: Path, after_events: int, delay_s: float) -> bool:
    """Start a sync in a child process; SIGKILL it `delay_s` after its `after_events`-th event.
    Returns whether it was killed (False: it finished first)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(data), str(folder), str(model)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    events = 0
    for line in child.stdout:
        if line.startswith("file"):
            events += 1
        if line.startswith("done"):
            break
        if events >= after_events:
            time.sleep(delay_s)
            child.send_signal(signal.SIGKILL)
            child.wait()
            return True
    child.wait()
    return False


def _state(data: Path, folder: Path, embedder, finish: bool) -> dict:
    index = Index(
        EdgeStore(data / "store", embedder.dim), Manifest(data / "manifest.sqlite3"), embedder
    )
    try:
        recover(index)  # once, at open, as the service's writer does
        if finish:
            sync_folder(folder, ["staff"], index)
        chunks = {}
        for doc_id in index.store.document_ids(ALL_GROUPS):
            hits = index.store.chunks_of(doc_id, ALL_GROUPS)
            chunks[doc_id] = sorted(
                (
                    h.id,
                    h.payload["chunk_index"],
                    tuple(h.payload["paths"]),
                    tuple(h.payload["acl_groups"]),
                    h.payload["title"],
                )
                for h in hits
            )
        return {
            "chunks": chunks,
            "chunk_count": index.store.count(ALL_GROUPS),
            "staged": index.store.count(ALL_GROUPS, staged=True),
            "files": sorted(
                (f.path, f.doc_id, f.size, f.mtime_ns, f.groups) for f in index.manifest.all_files()
            ),
            "documents": sorted(
                (d.doc_id, d.title, d.chunk_count, d.page_count) for d in index.manifest.documents()
            ),
            "journal": index.manifest.pending_swaps(),
            "dirty": index.manifest.dirty_documents(),
        }
    finally:
        index.store.close()
        index.manifest.close()


def test_kill_9_at_any_point_then_rerun_converges_to_a_clean_run(
    tmp_path: Path, embedder, onnx_embedder_dir: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    _write_folder(folder)
    crashed = tmp_path / "crashed"
    rng = random.Random(7)
    kills = 0
    kills += _run_and_kill(crashed, folder, onnx_embedder_dir, after_events=2, delay_s=0.0)
    kills += _run_and_kill(
        crashed, folder, onnx_embedder_dir, after_events=2, delay_s=rng.uniform(0.05, 0.3)
    )
    _change_folder(folder)
    kills += _run_and_kill(
        crashed, folder, onnx_embedder_dir, after_events=2, delay_s=rng.uniform(0.0, 0.2)
    )
    kills += _run_and_kill(
        crashed, folder, onnx_embedder_dir, after_events=3, delay_s=rng.uniform(0.0, 0.1)
    )
    assert kills >= 2, "the child finished before it could be killed; the test proved nothing"

    after_crashes = _state(crashed, folder, embedder, finish=True)
    clean = _state(tmp_path / "clean", folder, embedder, finish=True)

    assert after_crashes == clean
    assert clean["staged"] == 0 and clean["journal"] == [] and clean["dirty"] == []
    assert clean["chunk_count"] == sum(len(c) for c in clean["chunks"].values())
    assert (
        len(clean["files"]) == 9 and len(clean["documents"]) == 8
    )  # laptops + laptops-2 share one
