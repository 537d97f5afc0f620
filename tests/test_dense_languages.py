"""Chunks in a language the embedder does not cover get no dense vector, and are still found:
by BM25 for a Japanese question, and without breaking an English hybrid search beside them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.manifest import Manifest
from ingest.pipeline import Index, sync_folder
from models.embedder import covers
from retrieval.search import search_passages
from retrieval.store import EdgeStore

EN = (
    "# Annual leave\n\nEmployees receive twenty days of paid annual leave each year. "
    "Unused leave may be carried over to the next year with the approval of a manager.\n"
)
JA = (
    "# 年次有給休暇\n\n従業員は入社後六か月を経過した日に十日の年次有給休暇を付与される。"
    "未使用の休暇は翌年度に限り繰り越すことができる。\n"
)


@pytest.fixture
def index(settings, embedder, sparse) -> Iterator[Index]:
    settings.ensure_dirs()
    idx = Index(
        EdgeStore(settings.store_dir, embedder.dim),
        Manifest(settings.manifest_path),
        embedder,
        encode_sparse=sparse.encode_document,
    )
    yield idx
    idx.store.close()
    idx.manifest.close()


def test_the_packaged_embedder_covers_english_only(embedder) -> None:
    assert embedder.languages == ("en",)
    assert covers(embedder, EN) and not covers(embedder, JA)
    assert covers(embedder, "What does 有給 mean in the Kura handbook about leave?")


def test_japanese_chunks_have_no_dense_vector_and_are_found_by_bm25(
    tmp_path: Path, index: Index, embedder, sparse
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "leave-en.md").write_text(EN, encoding="utf-8")
    (folder / "leave-ja.md").write_text(JA, encoding="utf-8")
    report = sync_folder(folder, ["staff"], index)
    assert report.count("ingested") == 2, report.results
    dense_by_file = {
        c.payload["title"]: c.dense is not None
        for batch in index.store.export_points()
        for c in batch
    }
    assert dense_by_file == {"leave-en.md": True, "leave-ja.md": False}

    ja = search_passages(index.store, embedder, "年次有給休暇は何日付与されますか", ["staff"], sparse=sparse)
    assert ja and ja[0].title == "leave-ja.md"
    en = search_passages(index.store, embedder, "how many days of annual leave", ["staff"], sparse=sparse)
    assert en and en[0].title == "leave-en.md" and en[0].dense_score is not None
    assert all(p.dense_score is None for p in en if p.title == "leave-ja.md")


def test_one_setting_names_the_dense_languages_for_chunks_and_questions(tmp_path: Path, monkeypatch) -> None:
    """KURA_EMBEDDER_LANGUAGES=en,ja (a site with a multilingual model): Japanese chunks get
    dense vectors too; left at its default, only English does."""
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    monkeypatch.setenv("KURA_EMBEDDER_LANGUAGES", "en,ja")
    both = KuraService(KuraSettings(data_dir=tmp_path / "both"))
    monkeypatch.delenv("KURA_EMBEDDER_LANGUAGES")
    english = KuraService(KuraSettings(data_dir=tmp_path / "english"))
    try:
        assert both.settings.embedder_languages == ("en", "ja")
        assert covers(both.embedder, JA) and covers(both.embedder, EN)
        assert not covers(english.embedder, JA) and covers(english.embedder, EN)
    finally:
        both.close()
        english.close()
