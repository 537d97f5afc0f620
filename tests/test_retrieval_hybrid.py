"""Hybrid search on the real qdrant-edge store with the real embedder and BM25 encoder:
fusion, the language-aware dense skip, and the ACL filter inside the one query."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest

from retrieval.search import parse_fusion, search_passages
from retrieval.sparse import SparseEncoder
from retrieval.store import ALL_GROUPS, EdgeStore, Fusion, StoredChunk

DOCS = [
    # (doc id, groups, text)
    (
        "leave-en",
        ["everyone"],
        "Employees receive ten days of annual paid leave after six months of service.",
    ),
    (
        "salary-hr",
        ["hr"],
        "Salary bands for 2024: engineers grade 3 earn between 6 and 8 million yen. "
        "Salary review in April.",
    ),
    (
        "salary-public",
        ["everyone"],
        "The company pays salaries on the 25th of each month by bank transfer.",
    ),
    (
        "parking",
        ["everyone"],
        "Visitors may park in the north lot; the car park gate opens at seven in the morning.",
    ),
    ("leave-ja", ["everyone"], "年次有給休暇は、六か月間継続勤務した労働者に十日を付与する。"),
    ("discipline-ja", ["everyone"], "懲戒処分の種類は、けん責、減給、出勤停止、懲戒解雇とする。"),
    (
        "reactor-code",
        ["everyone"],
        "Part XJ-4417 is the coolant valve gasket of the backup generator.",
    ),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, embedder, sparse: SparseEncoder):
    st = EdgeStore(Path(tmp_path_factory.mktemp("hybrid")) / "store", embedder.dim)
    vectors = embedder.embed_documents([t for _, _, t in DOCS])
    st.upsert(
        [
            StoredChunk(
                str(uuid.uuid5(uuid.NAMESPACE_URL, doc)),
                vec,
                sparse.encode_document(text),
                {
                    "doc_id": doc,
                    "chunk_index": 0,
                    "text": text,
                    "acl_groups": groups,
                    "staged": False,
                    "source_path": f"/docs/{doc}.txt",
                    "page": 1,
                },
            )
            for (doc, groups, text), vec in zip(DOCS, vectors, strict=True)
        ]
    )
    yield st
    st.close()


def _ids(passages) -> list[str]:
    return [p.doc_id for p in passages]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_forbidden_chunk_is_never_returned_even_when_it_is_the_best_match(
    store, embedder, sparse, mode
) -> None:
    query = "Salary bands for 2024: engineers grade 3 earn between 6 and 8 million yen"
    allowed = search_passages(store, embedder, query, ["hr"], 8, sparse=sparse, mode=mode)
    assert _ids(allowed)[0] == "salary-hr"  # it IS the best match for a reader who may see it
    denied = search_passages(store, embedder, query, ["everyone"], 8, sparse=sparse, mode=mode)
    assert "salary-hr" not in _ids(denied)
    assert denied  # the filter removed one chunk, not the whole search


def test_reader_without_groups_gets_nothing(store, embedder, sparse) -> None:
    assert search_passages(store, embedder, "annual paid leave", [], 8, sparse=sparse) == []


def test_hybrid_finds_what_only_the_exact_term_matches(store, embedder, sparse) -> None:
    hits = search_passages(
        store, embedder, "XJ-4417", ["everyone"], 3, sparse=sparse, mode="hybrid"
    )
    assert _ids(hits)[0] == "reactor-code"


def test_hybrid_keeps_the_best_of_both_channels(store, embedder, sparse) -> None:
    query = "how much holiday do staff get each year"
    dense = _ids(
        search_passages(store, embedder, query, ALL_GROUPS, 2, sparse=sparse, mode="dense")
    )
    hybrid = _ids(
        search_passages(store, embedder, query, ALL_GROUPS, 4, sparse=sparse, mode="hybrid")
    )
    assert dense[0] == "leave-en"  # no shared words: only the dense channel can find it
    assert "leave-en" in hybrid[:2]


def test_japanese_query_skips_the_english_only_dense_channel(store, embedder, sparse) -> None:
    query = "有給休暇は何日付与されますか"
    sparse_only = search_passages(
        store, embedder, query, ALL_GROUPS, 5, sparse=sparse, mode="sparse"
    )
    hybrid = search_passages(store, embedder, query, ALL_GROUPS, 5, sparse=sparse, mode="hybrid")
    assert _ids(hybrid) == _ids(sparse_only) and _ids(hybrid)[0] == "leave-ja"
    assert all(p.dense_score is None for p in hybrid)
    # A site with a Japanese-capable embedder lists "ja", and the dense channel takes part again.
    both = search_passages(
        store, embedder, query, ALL_GROUPS, 5, sparse=sparse, dense_languages=("en", "ja")
    )
    assert all(p.dense_score is not None for p in both)


def test_dense_score_is_the_raw_cosine_not_the_fused_rank(store, embedder, sparse) -> None:
    query = "annual paid leave days"
    q = embedder.embed_query(query)
    top = search_passages(store, embedder, query, ALL_GROUPS, 1, sparse=sparse)[0]
    # The chunk's vector as the store got it: embedded in one call with the other DOCS. The int8
    # model scales activations per batch, so the text embedded alone differs in the 2nd decimal.
    stored = embedder.embed_documents([t for _, _, t in DOCS])
    d = stored[[doc for doc, _, _ in DOCS].index(top.doc_id)]
    cosine = sum(a * b for a, b in zip(q, d, strict=True)) / math.sqrt(
        sum(a * a for a in q) * sum(b * b for b in d)
    )
    assert top.dense_score == pytest.approx(cosine, abs=1e-3)
    assert top.score != pytest.approx(cosine, abs=1e-3)


@pytest.mark.parametrize("spec", ["rrf", "dbsf", "rrf:1,2"])
def test_every_fusion_method_runs_in_the_store_and_respects_the_filter(
    store, embedder, sparse, spec
) -> None:
    fusion = parse_fusion(spec)
    hits = search_passages(store, embedder, "salary", ["everyone"], 8, sparse=sparse, fusion=fusion)
    assert _ids(hits)[0] == "salary-public" and "salary-hr" not in _ids(hits)


def test_sparse_weight_decides_a_disagreement_between_channels(store, embedder, sparse) -> None:
    query = "visitors salary"  # BM25 and the embedder disagree on which passage is first

    def first(fusion: Fusion) -> str:
        return _ids(
            search_passages(store, embedder, query, ALL_GROUPS, 3, sparse=sparse, fusion=fusion)
        )[0]

    dense_first = _ids(
        search_passages(store, embedder, query, ALL_GROUPS, 1, sparse=sparse, mode="dense")
    )[0]
    sparse_first = _ids(
        search_passages(store, embedder, query, ALL_GROUPS, 1, sparse=sparse, mode="sparse")
    )[0]
    if dense_first == sparse_first:
        pytest.skip("channels agree on this query; nothing for fusion to decide")
    # A channel weighted zero drops out of the fusion; the other decides alone.
    assert first(Fusion("rrf", dense_weight=0, sparse_weight=1)) == sparse_first
    assert first(Fusion("rrf", dense_weight=1, sparse_weight=0)) == dense_first


def test_bad_fusion_and_mode_settings_say_what_is_allowed(store, embedder) -> None:
    with pytest.raises(ValueError, match="rrf' or 'dbsf"):
        parse_fusion("linear")
    with pytest.raises(ValueError, match="rrf:DENSE,SPARSE"):
        parse_fusion("rrf:1")
    with pytest.raises(ValueError, match="hybrid, dense, sparse"):
        search_passages(store, embedder, "x", ALL_GROUPS, mode="keyword")
    with pytest.raises(ValueError, match="sparse encoder"):
        search_passages(store, embedder, "x", ALL_GROUPS, mode="sparse")
