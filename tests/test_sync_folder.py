"""Incremental folder sync on the real qdrant-edge store, the real parser and the real embedder:
what a second `kura ingest FOLDER` does with unchanged, edited, removed, renamed, copied files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.manifest import Manifest
from ingest.pipeline import Index, IngestProgress, recover, sync_folder
from retrieval.store import ALL_GROUPS, EdgeStore

from .conftest import shared_doc


@pytest.fixture
def index(settings, embedder) -> Iterator[Index]:
    settings.ensure_dirs()
    idx = Index(
        EdgeStore(settings.store_dir, embedder.dim), Manifest(settings.manifest_path), embedder
    )
    yield idx
    idx.store.close()
    idx.manifest.close()


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def statuses(report) -> dict[str, str]:
    return {Path(r.path).name: r.status for r in report.results}


def store_state(index: Index) -> dict[str, dict]:
    """Everything a reader could see: per document, its chunk ids, paths and groups."""
    state = {}
    for doc_id in index.store.document_ids(ALL_GROUPS):
        hits = index.store.chunks_of(doc_id, ALL_GROUPS)
        state[doc_id] = {
            "chunks": sorted(h.id for h in hits),
            "paths": sorted({tuple(h.payload["paths"]) for h in hits}),
            "groups": sorted({tuple(h.payload["acl_groups"]) for h in hits}),
        }
    return state


def texts_of(index: Index) -> str:
    return " ".join(
        h.text
        for d in index.store.document_ids(ALL_GROUPS)
        for h in index.store.chunks_of(d, ALL_GROUPS)
    )


HANDBOOK = "# Leave\n\nEmployees receive twenty days of annual leave each year.\n"
EXPENSES = "# Expenses\n\nTravel expenses are reimbursed within thirty days of the claim.\n"
SECURITY = "# Security\n\nBadges must be worn visibly at all times inside the building.\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    write(root, "handbook.md", HANDBOOK)
    write(root, "expenses.md", EXPENSES)
    write(root, "sub/security.md", SECURITY)
    return root


def test_second_sync_skips_every_unchanged_file(folder: Path, index: Index) -> None:
    first = sync_folder(folder, ["staff"], index)
    assert first.count("ingested") == 3
    before = store_state(index)
    second = sync_folder(folder, ["staff"], index)
    assert set(statuses(second).values()) == {"unchanged"}
    assert store_state(index) == before


def test_a_file_with_the_same_size_and_mtime_is_not_read_again(folder: Path, index: Index) -> None:
    sync_folder(folder, ["staff"], index)
    path = folder / "handbook.md"
    stat = path.stat()
    path.write_text(HANDBOOK.replace("twenty", "TWENTY"), encoding="utf-8")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    report = sync_folder(folder, ["staff"], index)
    assert statuses(report)["handbook.md"] == "unchanged"
    assert "TWENTY" not in texts_of(index)


def test_edited_file_replaces_its_old_chunks_and_only_those(folder: Path, index: Index) -> None:
    sync_folder(folder, ["staff"], index)
    old_doc = index.manifest.file(str(folder / "handbook.md")).doc_id
    write(
        folder,
        "handbook.md",
        HANDBOOK.replace("twenty", "twenty-five") + "\nSick leave is unlimited.\n",
    )
    report = sync_folder(folder, ["staff"], index)
    assert statuses(report) == {
        "handbook.md": "ingested",
        "expenses.md": "unchanged",
        "security.md": "unchanged",
    }
    new_doc = index.manifest.file(str(folder / "handbook.md")).doc_id
    state = store_state(index)
    assert old_doc not in state and index.manifest.document(old_doc) is None
    assert state[new_doc]["paths"] == [(str(folder / "handbook.md"),)]
    assert "twenty-five" in texts_of(index) and "twenty days" not in texts_of(index)
    assert index.store.count(ALL_GROUPS, staged=True) == 0
    assert len(state) == 3


def test_file_removed_from_the_folder_is_removed_from_the_index(folder: Path, index: Index) -> None:
    sync_folder(folder, ["staff"], index)
    gone = index.manifest.file(str(folder / "expenses.md")).doc_id
    (folder / "expenses.md").unlink()
    report = sync_folder(folder, ["staff"], index)
    assert statuses(report)["expenses.md"] == "removed"
    assert gone not in store_state(index)
    assert index.manifest.document(gone) is None
    assert "reimbursed" not in texts_of(index)


def test_renamed_and_moved_files_keep_their_chunks_without_reembedding(
    folder: Path, index: Index
) -> None:
    sync_folder(folder, ["staff"], index)
    before = store_state(index)
    doc = index.manifest.file(str(folder / "handbook.md")).doc_id
    (folder / "archive").mkdir()
    shutil.move(folder / "handbook.md", folder / "archive" / "leave-policy.md")
    report = sync_folder(folder, ["staff"], index)
    assert statuses(report) == {
        "leave-policy.md": "linked",
        "handbook.md": "removed",
        "expenses.md": "unchanged",
        "security.md": "unchanged",
    }
    assert report.count("ingested") == 0 and report.chunks == 0
    after = store_state(index)
    assert after[doc]["chunks"] == before[doc]["chunks"]
    assert after[doc]["paths"] == [(str(folder / "archive" / "leave-policy.md"),)]
    assert set(after) == set(before)


def test_duplicate_files_are_stored_once_with_both_paths(folder: Path, index: Index) -> None:
    write(folder, "copy-of-handbook.md", HANDBOOK)
    report = sync_folder(folder, ["staff"], index)
    assert report.count("ingested") == 3 and report.count("linked") == 1
    doc = index.manifest.file(str(folder / "handbook.md")).doc_id
    state = store_state(index)
    assert len(state) == 3
    assert state[doc]["paths"] == [
        (str(folder / "copy-of-handbook.md"), str(folder / "handbook.md"))
    ]
    assert sorted(f.path for f in index.manifest.files_of(doc)) == [
        str(folder / "copy-of-handbook.md"),
        str(folder / "handbook.md"),
    ]


def test_editing_one_copy_of_a_duplicate_leaves_the_other_copy_intact(
    folder: Path, index: Index
) -> None:
    write(folder, "copy-of-handbook.md", HANDBOOK)
    sync_folder(folder, ["staff"], index)
    shared = index.manifest.file(str(folder / "handbook.md")).doc_id
    write(folder, "copy-of-handbook.md", HANDBOOK + "\nDraft: leave rules may change next year.\n")
    sync_folder(folder, ["staff"], index)
    state = store_state(index)
    assert state[shared]["paths"] == [(str(folder / "handbook.md"),)]
    edited = index.manifest.file(str(folder / "copy-of-handbook.md")).doc_id
    assert state[edited]["paths"] == [(str(folder / "copy-of-handbook.md"),)]
    assert len(state) == 4


def test_same_content_in_two_folders_is_readable_by_both_folders_groups(
    tmp_path: Path, index: Index
) -> None:
    hr = write(tmp_path / "hr", "handbook.md", HANDBOOK).parent
    sales = write(tmp_path / "sales", "handbook.md", HANDBOOK).parent
    sync_folder(hr, ["hr"], index)
    sync_folder(sales, ["sales"], index)
    (doc,) = store_state(index).values()
    assert doc["groups"] == [("hr", "sales")]
    (sales / "handbook.md").unlink()
    sync_folder(sales, ["sales"], index)
    (doc,) = store_state(index).values()
    assert doc["groups"] == [("hr",)]


def test_changing_a_folders_groups_updates_acl_without_reembedding(
    folder: Path, index: Index
) -> None:
    sync_folder(folder, ["staff"], index)
    report = sync_folder(folder, ["managers"], index)
    assert report.count("ingested") == 0
    assert {g for d in store_state(index).values() for g in d["groups"]} == {("managers",)}


def test_progress_events_carry_counts_pages_chunks_and_stage_times(
    folder: Path, index: Index
) -> None:
    events: list[IngestProgress] = []
    report = sync_folder(folder, ["staff"], index, on_progress=events.append)
    last = events[-1]
    assert last.files_done == last.files_total == 3
    assert last.chunks == report.chunks >= 3
    assert last.eta_s == 0
    assert last.stage_s["parse"] > 0 and last.stage_s["embed"] > 0 and last.stage_s["upsert"] > 0
    events.clear()
    sync_folder(folder, ["staff"], index, on_progress=events.append)
    assert events[-1].files_skipped == 3 and events[-1].files_done == 3


def test_recover_on_a_consistent_index_changes_nothing(folder: Path, index: Index) -> None:
    sync_folder(folder, ["staff"], index)
    before = store_state(index)
    assert recover(index) == 0
    assert store_state(index) == before


def test_renamed_pdf_keeps_its_pages_and_chunks(tmp_path: Path, index: Index) -> None:
    source = shared_doc("en/fbi_nics_background_checks_2015-11.pdf")
    root = tmp_path / "pdfs"
    root.mkdir()
    shutil.copy2(source, root / "nics.pdf")
    first = sync_folder(root, ["staff"], index)
    (result,) = first.results
    assert result.status == "ingested" and result.pages == 1 and result.chunks > 0
    doc = index.manifest.file(str(root / "nics.pdf")).doc_id
    pages = {h.payload["page"] for h in index.store.chunks_of(doc, ALL_GROUPS)}
    assert pages == {1}
    (root / "nics.pdf").rename(root / "nics-2015.pdf")
    second = sync_folder(root, ["staff"], index)
    assert statuses(second) == {"nics-2015.pdf": "linked", "nics.pdf": "removed"}
    hits = index.store.chunks_of(doc, ALL_GROUPS)
    assert len(hits) == result.chunks
    assert {tuple(h.payload["paths"]) for h in hits} == {(str(root / "nics-2015.pdf"),)}
    assert index.manifest.document(doc).page_count == 1


def test_a_file_that_breaks_keeps_its_last_good_version_searchable(
    folder: Path, index: Index
) -> None:
    sync_folder(folder, ["staff"], index)
    before = store_state(index)
    write(folder, "handbook.pdf", "this is not a PDF")  # a broken new file
    write(folder, "handbook.md", "")  # and an emptied file where a good one was
    report = sync_folder(folder, ["staff"], index)
    assert (
        statuses(report)["handbook.pdf"] == "failed" and statuses(report)["handbook.md"] == "failed"
    )
    assert report.failures[0].hint
    assert store_state(index) == before  # the last good version of handbook.md stays
    assert "twenty days" in texts_of(index)


def test_many_small_files_are_batched_and_all_committed(tmp_path: Path, index: Index) -> None:
    root = tmp_path / "many"
    for i in range(70):  # more than one batch of files per store flush
        write(
            root, f"note-{i:03d}.md", f"Note {i}: the meeting room {i} is booked on day {i % 7}.\n"
        )
    report = sync_folder(root, ["staff"], index)
    assert report.count("ingested") == 70
    assert index.store.count(ALL_GROUPS) == report.chunks == 70
    assert index.store.count(ALL_GROUPS, staged=True) == 0
    assert index.manifest.pending_swaps() == [] and len(index.manifest.documents()) == 70


def test_the_parser_runs_ahead_of_the_writer_within_a_file_and_a_chunk_bound() -> None:
    """The hand-over between the parse thread and the writer (ingest/pipeline.py `_Handoff`)
    lets the parser run a whole embedder call ahead, but no further: by files, by queued
    chunks, and a file bigger than the chunk bound still goes through on its own."""
    import queue

    from ingest.chunk import ChunkPiece
    from ingest.pipeline import _Candidate, _Handoff, _Prepared

    def parsed(name: str, chunks: int) -> _Prepared:
        pieces = [ChunkPiece(f"{name} {i}", (), None, None) for i in range(chunks)]
        return _Prepared(_Candidate(Path(name), 1, 0, None), pieces=pieces)

    handoff = _Handoff(max_files=3, max_chunks=4)
    handoff.put(parsed("a", 1), timeout=0.1)
    handoff.put(parsed("b", 2), timeout=0.1)
    handoff.put(None, timeout=0.1)  # the end marker counts as a file
    with pytest.raises(queue.Full):  # three files queued
        handoff.put(parsed("c", 1), timeout=0.05)
    assert [i.candidate.path.name for i in (handoff.get(), handoff.get())] == ["a", "b"]
    handoff.put(parsed("d", 5), timeout=0.1)  # 5 chunks > 4 queued: the bound is now reached
    with pytest.raises(queue.Full):
        handoff.put(parsed("e", 1), timeout=0.05)
    assert handoff.get() is None and handoff.get().candidate.path.name == "d"
    with pytest.raises(queue.Empty):
        handoff.get(timeout=0.05)
    handoff.put(parsed("huge", 50), timeout=0.1)  # alone in the queue: let through
    assert len(handoff.get().pieces) == 50
