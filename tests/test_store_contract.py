"""One contract, two stores: EdgeStore (qdrant-edge in a temp dir) and ServerStore (qdrant-client,
here on QdrantClient(":memory:"); on a live server too when KURA_QDRANT_URL is set).

Both must return the same ids for the same data and query, filter by ACL inside the query,
hide staged chunks, and move between each other without re-embedding.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from retrieval.store import ALL_GROUPS, ChunkStore, EdgeStore, SparseVec, StoredChunk

DOCS = {
    "doc-leave": (
        ["everyone"],
        [
            "Employees receive twenty days of paid annual leave per year.",
            "Parental leave lasts up to sixteen weeks and is paid at full salary.",
            "Unused leave may be carried over into the first quarter of the next year.",
        ],
    ),
    "doc-hr-salaries": (
        ["hr"],
        [
            "Salary bands for engineers range from grade 3 to grade 7.",
            "The HR review of salaries happens every March; leave balances are checked then.",
        ],
    ),
    "doc-security": (
        ["everyone", "it"],
        [
            "Laptops must use full-disk encryption and lock after five minutes.",
            "Report a lost badge or laptop to the security desk within one hour.",
            "Passwords are rotated only after a suspected compromise.",
        ],
    ),
    "doc-ja": (
        ["everyone"],
        [
            "年次有給休暇は年間二十日付与されます。",
            "ノートパソコンは必ずディスク全体を暗号化してください。",
        ],
    ),
}
QUERIES = [
    "how many days of paid leave",
    "laptop encryption policy",
    "salary review",
    "有給休暇の日数",
]


def sparse_of(text: str) -> SparseVec:
    """Character-bigram term counts: a real sparse vector in the shape kura stores (IDF on top)."""
    counts: dict[int, float] = {}
    lowered = text.lower()
    for a, b in zip(lowered, lowered[1:], strict=False):
        if a.isspace() or b.isspace():
            continue
        index = int.from_bytes((a + b).encode("utf-8")[:4].ljust(4, b"\0"), "little") % 2_000_003
        counts[index] = counts.get(index, 0.0) + 1.0
    # Length-normalised like BM25, which also keeps different chunks from tying exactly.
    total = sum(counts.values()) or 1.0
    return SparseVec(sorted(counts), [counts[i] / total for i in sorted(counts)])


def chunks_for(
    embedder, doc_id: str, groups: list[str], texts: list[str], staged: bool = False
) -> list[StoredChunk]:
    dense = embedder.embed_documents(texts)
    return [
        StoredChunk(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc_id}/{i}")),
            dense=list(map(float, vec)),
            sparse=sparse_of(text),
            payload={
                "doc_id": doc_id,
                "acl_groups": groups,
                "staged": staged,
                "text": text,
                "chunk_index": i,
                "source_path": f"/docs/{doc_id}.txt",
                "file_type": "txt",
            },
        )
        for i, (text, vec) in enumerate(zip(texts, dense, strict=True))
    ]


def _server_store(embedder, client):
    from retrieval.server_store import ServerStore

    return ServerStore(
        None, None, f"kura_contract_{uuid.uuid4().hex[:8]}", embedder.dim, client=client
    )


@pytest.fixture(params=["edge", "server-memory", "server-live"])
def store(request, tmp_path, embedder) -> Iterator[ChunkStore]:
    if request.param == "edge":
        s: ChunkStore = EdgeStore(tmp_path / "store", embedder.dim)
    elif request.param == "server-memory":
        from qdrant_client import QdrantClient

        s = _server_store(embedder, QdrantClient(":memory:"))
    else:
        url = os.environ.get("KURA_QDRANT_URL")
        if not url:
            pytest.skip(
                "set KURA_QDRANT_URL (and KURA_QDRANT_API_KEY) to run against a live Qdrant server"
            )
        from qdrant_client import QdrantClient

        client = QdrantClient(url=url, api_key=os.environ.get("KURA_QDRANT_API_KEY"))
        s = _server_store(embedder, client)
        request.addfinalizer(lambda: client.delete_collection(s.collection))
    yield s
    s.close()


def fill(store: ChunkStore, embedder) -> None:
    for doc_id, (groups, texts) in DOCS.items():
        store.upsert(chunks_for(embedder, doc_id, groups, texts, staged=True))
        store.commit_document(doc_id)


def ids(hits) -> list[str]:
    return [h.id for h in hits]


def ranking(hits) -> list[str]:
    """Ids best first, ties ordered by id: RRF gives equal scores to a chunk ranked 2nd by dense
    and 3rd by sparse and its mirror image, and engines may order such ties freely. Hits with
    the lowest score are left out: a chunk just past the cut-off may tie with them, and either
    may be the one that made the cut. `scores` compares the scores themselves."""
    scored = sorted(((round(h.score, 3), h.id) for h in hits), key=lambda t: (-t[0], t[1]))
    last = scored[-1][0] if scored else None
    return [doc for score, doc in scored if score != last]


def _has_ties(hits) -> bool:
    rounded = [round(h.score, 6) for h in hits]
    return len(set(rounded)) != len(rounded)


def scores(hits) -> list[float]:
    return pytest.approx(sorted((h.score for h in hits), reverse=True), rel=1e-4)


def test_point_ids_are_uuid_strings_and_counts_match(store, embedder):
    fill(store, embedder)
    total = sum(len(texts) for _, texts in DOCS.values())
    assert store.count() == total
    assert store.count(["hr"]) == len(DOCS["doc-hr-salaries"][1])
    assert store.document_ids(["everyone"]) == {"doc-leave", "doc-security", "doc-ja"}
    for batch in store.export_points():
        for chunk in batch:
            assert str(uuid.UUID(chunk.id)) == chunk.id


def test_employee_never_sees_hr_chunks_in_any_search_mode(store, embedder):
    fill(store, embedder)
    query = "salary review"
    dense, sparse = embedder.embed_query(query), sparse_of(query)
    for d, s in ((dense, None), (None, sparse), (dense, sparse)):
        hits = store.search(["everyone"], d, s, limit=20)
        assert hits, "a search with visible documents must return something"
        assert all(
            "hr" not in h.payload["acl_groups"] or "everyone" in h.payload["acl_groups"]
            for h in hits
        )
        assert "doc-hr-salaries" not in {h.doc_id for h in hits}
    assert "doc-hr-salaries" in {h.doc_id for h in store.search(["hr"], dense, sparse, limit=5)}
    assert store.search([], dense, sparse, limit=5) == []
    assert store.chunks_of("doc-hr-salaries", ["everyone"]) == []
    hr_chunk = store.chunks_of("doc-hr-salaries", ["hr"])[0].id
    assert store.chunk(hr_chunk, ["hr", "it"]) is not None  # any one of the caller's groups
    assert store.chunk(hr_chunk, ["everyone", "it"]) is None and store.chunk(hr_chunk, []) is None
    assert store.count([]) == 0 and store.document_ids([]) == set()


def test_groups_must_be_a_sequence_never_a_bare_string(store, embedder):
    fill(store, embedder)
    with pytest.raises(TypeError):
        store.search("everyone", embedder.embed_query("leave"), None, limit=3)  # type: ignore[arg-type]


def test_staged_chunks_are_invisible_until_commit_which_replaces_the_old_version(store, embedder):
    fill(store, embedder)
    new_texts = ["Employees now receive twenty-five days of paid annual leave per year."]
    store.upsert(chunks_for(embedder, "doc-leave-v2", ["everyone"], new_texts, staged=True))
    query = embedder.embed_query("paid annual leave days")
    assert "doc-leave-v2" not in {h.doc_id for h in store.search(ALL_GROUPS, query, None, limit=20)}
    assert store.count(staged=True) == 1
    store.commit_document("doc-leave-v2", replaces=["doc-leave"])
    found = {h.doc_id for h in store.search(ALL_GROUPS, query, None, limit=20)}
    assert "doc-leave-v2" in found and "doc-leave" not in found
    assert store.count(staged=True) == 0


def test_a_staged_chunk_is_hidden_from_its_own_groups_until_commit(store, embedder):
    """Reader queries carry only the ACL condition: a staged chunk's groups are stored apart
    (retrieval/store.py), so it is invisible to the very groups that will read it, also when
    its document's groups change before the commit."""
    fill(store, embedder)
    text = ["Employees now receive twenty-five days of paid annual leave per year."]
    store.upsert(chunks_for(embedder, "doc-leave-v2", ["everyone"], text, staged=True))
    question = "paid annual leave days"
    dense, sparse = embedder.embed_query(question), sparse_of(question)

    def visible(groups: list[str]) -> set[str]:
        found = {h.doc_id for h in store.search(groups, dense, sparse, limit=20)}
        found |= {h.doc_id for h in store.chunks_of("doc-leave-v2", groups)}
        return found | store.document_ids(groups)

    assert "doc-leave" in visible(["everyone"])  # the searches do find leave documents
    assert "doc-leave-v2" not in visible(["everyone"])
    assert store.count(["everyone"]) == store.count(ALL_GROUPS) - 2  # committed, less hr's 2
    assert store.count(["everyone"], staged=True) == 1 and store.count(["hr"], staged=True) == 0
    store.set_document_payload("doc-leave-v2", {"acl_groups": ["hr"]})  # changed while staged
    assert "doc-leave-v2" not in visible(["everyone"]) | visible(["hr"])
    exported = [c for page in store.export_points() for c in page if c.payload["doc_id"] == "doc-leave-v2"]
    assert [(c.payload["acl_groups"], c.payload["staged"]) for c in exported] == [(["hr"], True)]
    store.commit_document("doc-leave-v2", replaces=["doc-leave"])
    assert "doc-leave-v2" in visible(["hr"]) and "doc-leave-v2" not in visible(["everyone"])
    [chunk] = store.chunks_of("doc-leave-v2", ["hr"])
    assert chunk.payload["acl_groups"] == ["hr"] and "staged_acl_groups" not in chunk.payload


def test_delete_staged_drops_only_uncommitted_chunks(store, embedder):
    fill(store, embedder)
    store.upsert(
        chunks_for(embedder, "doc-half", ["everyone"], ["half-written chunk"], staged=True)
    )
    before = store.count()
    store.delete_staged()
    assert store.count(staged=True) == 0 and store.count() == before


def test_changing_a_documents_groups_takes_effect_without_reembedding(store, embedder):
    fill(store, embedder)
    store.set_document_payload("doc-security", {"acl_groups": ["it"]})
    assert store.chunks_of("doc-security", ["everyone"]) == []
    assert [h.payload["chunk_index"] for h in store.chunks_of("doc-security", ["it"])] == [0, 1, 2]
    store.delete_documents(["doc-security"])
    assert store.chunks_of("doc-security", ALL_GROUPS) == []


def test_edge_and_server_return_the_same_ids_for_the_same_data(tmp_path, embedder):
    from qdrant_client import QdrantClient

    edge = EdgeStore(tmp_path / "edge", embedder.dim)
    server = _server_store(embedder, QdrantClient(":memory:"))
    try:
        fill(edge, embedder)
        fill(server, embedder)
        compared = 0
        for query in QUERIES:
            dense, sparse = embedder.embed_query(query), sparse_of(query)
            for groups in (["everyone"], ["everyone", "hr"], ALL_GROUPS):
                channels_tie = any(
                    _has_ties(edge.search(groups, d, s, limit=50))
                    for d, s in ((dense, None), (None, sparse))
                )
                for d, s in ((dense, None), (None, sparse), (dense, sparse)):
                    a = edge.search(groups, d, s, limit=5)
                    b = server.search(groups, d, s, limit=5)
                    assert a, (query, groups)
                    if d is not None and s is not None and channels_tie:
                        continue  # tied ranks in a channel may be ordered either way before fusion
                    assert ranking(a) == ranking(b), (query, groups, d is None, s is None)
                    assert sorted((h.score for h in b), reverse=True) == scores(a), (query, groups)
                    compared += 1
        assert compared >= 3 * len(QUERIES) * 2
    finally:
        edge.close()
        server.close()


def test_migration_copies_every_point_with_vectors_and_search_is_unchanged(tmp_path, embedder):
    from qdrant_client import QdrantClient

    from app.doors.cli.ops import copy_points

    edge = EdgeStore(tmp_path / "edge", embedder.dim)
    server = _server_store(embedder, QdrantClient(":memory:"))
    back = None
    try:
        fill(edge, embedder)
        edge.upsert(
            chunks_for(embedder, "doc-staged", ["everyone"], ["not yet committed"], staged=True)
        )
        assert copy_points(edge, server, batch=2) == edge.count() + 1
        back = EdgeStore(tmp_path / "edge-again", embedder.dim)
        copy_points(server, back)
        assert server.count(staged=True) == back.count(staged=True) == 1
        for query in QUERIES:
            dense, sparse = embedder.embed_query(query), sparse_of(query)
            expected = ranking(edge.search(["everyone"], dense, sparse, limit=5))
            assert ranking(server.search(["everyone"], dense, sparse, limit=5)) == expected
            assert ranking(back.search(["everyone"], dense, sparse, limit=5)) == expected
    finally:
        edge.close()
        server.close()
        if back is not None:
            back.close()


def test_server_store_refuses_a_collection_built_by_another_embedder(embedder):
    from qdrant_client import QdrantClient

    from retrieval.server_store import ServerStore, ServerStoreError

    client = QdrantClient(":memory:")
    ServerStore(None, None, "kura_chunks", embedder.dim + 1, client=client)
    with pytest.raises(ServerStoreError, match="KURA_COLLECTION"):
        ServerStore(None, None, "kura_chunks", embedder.dim, client=client)


def test_japanese_bigram_channel_is_searched_inside_the_acl_filter(store, embedder):
    from retrieval.sparse import SparseEncoder

    encoder = SparseEncoder()
    texts = {"doc-ja-open": "年次有給休暇は二十日です。", "doc-ja-hr": "人事評価の有給査定は三月です。"}
    for doc_id, groups in (("doc-ja-open", ["everyone"]), ("doc-ja-hr", ["hr"])):
        chunk = chunks_for(embedder, doc_id, groups, [texts[doc_id]], staged=True)[0]
        lexical = encoder.encode_document(texts[doc_id])
        store.upsert([StoredChunk(chunk.id, chunk.dense, lexical, chunk.payload)])
        store.commit_document(doc_id)
    grams = encoder.encode_query("有給").ngrams
    assert grams is not None
    only_bigrams = SparseVec([], [], grams)  # the word channel alone would not be asked
    assert {h.doc_id for h in store.search(["everyone"], None, only_bigrams, limit=10)} == {"doc-ja-open"}
    assert {h.doc_id for h in store.search(["hr"], None, only_bigrams, limit=10)} == {"doc-ja-hr"}
    assert store.search([], None, only_bigrams, limit=10) == []
    exported = {c.id: c.sparse for batch in store.export_points() for c in batch}
    assert all(s is not None and s.ngrams is not None and s.ngrams.indices for s in exported.values())


def test_a_store_written_before_the_bigram_channel_opens_and_gains_it(tmp_path, embedder):
    import qdrant_edge as qe

    from retrieval.sparse import SparseEncoder
    from retrieval.store import DENSE, SPARSE

    path = tmp_path / "old-store"
    legacy = qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=embedder.dim, distance=qe.Distance.Cosine)},
        sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )
    old = chunks_for(embedder, "doc-old", ["everyone"], ["年次有給休暇は二十日です。"])[0]
    words = SparseEncoder().encode_document(old.payload["text"])
    shard = qe.EdgeShard.create(str(path), legacy)
    point_vectors = {
        DENSE: old.dense,
        SPARSE: qe.SparseVector(indices=words.indices, values=words.values),
    }
    shard.update(qe.UpdateOperation.upsert_points([qe.Point(old.id, point_vectors, old.payload | {"staged": 0})]))
    shard.flush()
    shard.close()

    store = EdgeStore(path, embedder.dim)
    try:
        query = SparseEncoder().encode_query("有給休暇")
        assert [h.doc_id for h in store.search(["everyone"], None, query, limit=5)] == ["doc-old"]
        new = chunks_for(embedder, "doc-new", ["everyone"], ["有給休暇の申請は前日までです。"])[0]
        vec = SparseEncoder().encode_document(new.payload["text"])
        store.upsert([StoredChunk(new.id, new.dense, vec, new.payload)])
        bigrams_only = SparseVec([], [], query.ngrams)
        assert [h.doc_id for h in store.search(["everyone"], None, bigrams_only, limit=5)] == ["doc-new"]
    finally:
        store.close()
    EdgeStore(path, embedder.dim).close()  # and it opens again with the full layout


def test_a_server_collection_without_the_bigram_channel_keeps_working_on_words(embedder):
    from qdrant_client import QdrantClient, models

    from retrieval.server_store import ServerStore
    from retrieval.sparse import SparseEncoder
    from retrieval.store import DENSE, SPARSE

    client = QdrantClient(":memory:")
    client.create_collection(
        "kura_old",
        vectors_config={DENSE: models.VectorParams(size=embedder.dim, distance=models.Distance.COSINE)},
        sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    store = ServerStore(None, None, "kura_old", embedder.dim, client=client)
    chunk = chunks_for(embedder, "doc-ja", ["everyone"], ["年次有給休暇は二十日です。"])[0]
    encoder = SparseEncoder()
    store.upsert([StoredChunk(chunk.id, chunk.dense, encoder.encode_document(chunk.payload["text"]), chunk.payload)])
    hits = store.search(["everyone"], None, encoder.encode_query("有給休暇は何日"), limit=5)
    assert [h.doc_id for h in hits] == ["doc-ja"]
    store.close()
