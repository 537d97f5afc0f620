"""Context assembly: the relevance floor on raw signals, merging adjacent chunks, numbering."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from retrieval.context import RelevanceFloor, above_floor, assemble_context
from retrieval.passage import Passage
from retrieval.search import search_passages
from retrieval.sparse import SparseEncoder
from retrieval.store import ALL_GROUPS, EdgeStore, StoredChunk

TEXTS = [
    "Employees receive ten days of annual paid leave after six months of continuous service.",
    "年次有給休暇は、六か月間継続勤務した労働者に十日を付与する。",
    "The car park gate opens at seven in the morning for visitors.",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, embedder, sparse: SparseEncoder):
    st = EdgeStore(Path(tmp_path_factory.mktemp("floor")) / "store", embedder.dim)
    st.upsert(
        [
            StoredChunk(
                str(uuid.uuid5(uuid.NAMESPACE_URL, t)),
                v,
                sparse.encode_document(t),
                {
                    "doc_id": f"d{i}",
                    "chunk_index": 0,
                    "text": t,
                    "acl_groups": ["everyone"],
                    "staged": False,
                },
            )
            for i, (t, v) in enumerate(zip(TEXTS, embedder.embed_documents(TEXTS), strict=True))
        ]
    )
    yield st
    st.close()


def _found(store, embedder, sparse, query: str) -> list[Passage]:
    passages = search_passages(store, embedder, query, ALL_GROUPS, 5, sparse=sparse)
    return above_floor(query, passages, RelevanceFloor(), sparse)


def test_unrelated_question_finds_nothing_although_search_returns_passages(
    store, embedder, sparse
) -> None:
    query = "What is the melting point of tungsten carbide?"
    assert search_passages(
        store, embedder, query, ALL_GROUPS, 5, sparse=sparse
    )  # fusion always ranks something
    assert _found(store, embedder, sparse, query) == []


def test_related_question_passes_the_floor_in_english_and_japanese(store, embedder, sparse) -> None:
    assert (
        _found(store, embedder, sparse, "How many days of annual paid leave do employees get?")[
            0
        ].doc_id
        == "d0"
    )
    assert _found(store, embedder, sparse, "年次有給休暇は何日ですか")[0].doc_id == "d1"
    assert (
        _found(store, embedder, sparse, "年次有給休暇は何日ですか")[0].dense_score is None
    )  # passed on its terms


def test_a_reranker_score_decides_when_a_rerank_floor_is_set(sparse) -> None:
    p = Passage("c", "d", "annual paid leave", "t", "/x", 1, 1, (), 0, 0.03, dense_score=0.9)
    floor = RelevanceFloor(min_rerank_score=0.5)
    assert above_floor("annual leave", [replace(p, rerank_score=0.2)], floor, sparse) == []
    assert above_floor("annual leave", [replace(p, rerank_score=0.7)], floor, sparse)


def test_floor_settings_out_of_range_are_rejected() -> None:
    with pytest.raises(ValueError, match="share"):
        RelevanceFloor(min_term_coverage=1.5)


def _chunk(doc: str, index: int, text: str, page: int, score: float) -> Passage:
    return Passage(
        f"{doc}-{index}", doc, text, "t", f"/docs/{doc}.pdf", page, page, (), index, score
    )


def test_adjacent_chunks_merge_duplicates_drop_and_passages_are_numbered() -> None:
    passages = [
        _chunk("a", 3, "Leave is ten days. It grows by one day a year.", 4, 0.9),
        _chunk("b", 0, "Parking opens at seven.", 1, 0.8),
        _chunk("a", 4, "It grows by one day a year. The maximum is twenty days.", 5, 0.7),
        _chunk("c", 9, "Parking   opens at seven.", 2, 0.6),  # same text as b, another file
    ]
    context = assemble_context(passages, budget_tokens=500)
    assert [c.number for c in context] == [1, 2]
    first = context[0]
    assert first.chunk_ids == ("a-3", "a-4")
    assert (
        first.passage.text
        == "Leave is ten days. It grows by one day a year. The maximum is twenty days."
    )
    assert (first.passage.page, first.passage.page_end) == (4, 5)
    assert first.passage.location == "/docs/a.pdf pp.4-5"
    assert context[1].passage.doc_id == "b"


def test_passages_beyond_the_token_budget_are_left_out() -> None:
    long = _chunk("a", 0, "word " * 300, 1, 0.9)
    short = _chunk("b", 0, "Parking opens at seven.", 1, 0.8)
    context = assemble_context([long, short], budget_tokens=50)
    assert [c.passage.doc_id for c in context] == ["b"]
