"""`ServerStore`: the chunk store on a Qdrant server or cluster, through qdrant-client.

Used when `KURA_QDRANT_URL` is set (docker-compose.yml runs one). It keeps the same contract
as `EdgeStore` (tests/test_store_contract.py runs one suite over both): named vectors "dense"
(cosine) and "sparse" (IDF modifier), the same payload indexes, the ACL filter inside every
query stage, `staged` chunks invisible, and the same hybrid query (dense + sparse prefetch,
RRF k=60) so a site moving from embedded to server gets the same answers. A new collection
gets the same index plan as the embedded store (HNSW, int8 copies in RAM, originals on disk,
rescoring); the server builds its index in the background by itself.

Usage:
    store = ServerStore("http://qdrant:6333", None, "kura_chunks", dense_size=384)
    hits = store.search(["everyone"], dense, sparse, limit=8)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from retrieval.index_build import IndexPlan, search_params
from retrieval.store import (
    ACL_FIELD,
    ALL_GROUPS,
    DENSE,
    DOC_FIELD,
    NGRAM,
    RRF,
    SPARSE,
    STAGED_ACL_FIELD,
    STAGED_FIELD,
    Fusion,
    Groups,
    Hit,
    SparseVec,
    StoredChunk,
    _AllGroups,
    check_groups,
    committed_update,
    hidden_groups_update,
    hide_staged_groups,
    lexical_channels,
    lexical_from_stored,
    shown_payload,
)

KEYWORD_INDEXES = (ACL_FIELD, DOC_FIELD, "source_path", "file_type")
_SCROLL_PAGE = 512


class ServerStoreError(RuntimeError):
    """The Qdrant server cannot be used as configured; the message says what to change."""


class ServerStore:
    """One collection on a Qdrant server; created on first use with kura's vector layout."""

    def __init__(
        self,
        url: str | None,
        api_key: str | None,
        collection: str,
        dense_size: int,
        *,
        shards: int = 1,
        replicas: int = 1,
        client: QdrantClient | None = None,
        timeout_s: int = 30,
        plan: IndexPlan | None = None,
    ) -> None:
        if client is None:
            if not url:
                raise ServerStoreError(
                    "ServerStore needs KURA_QDRANT_URL (e.g. http://qdrant:6333)"
                )
            client = QdrantClient(url=url, api_key=api_key, timeout=timeout_s)
        self._client = client
        self.collection = collection
        self.dense_size = dense_size
        self._plan = plan = plan or IndexPlan()
        self._lexical = {SPARSE, NGRAM}  # the lexical vectors this collection has
        try:
            exists = client.collection_exists(collection)
        except Exception as exc:
            raise ServerStoreError(
                f"cannot reach the Qdrant server at {url}: {exc}. Check KURA_QDRANT_URL, "
                "KURA_QDRANT_API_KEY and that the server is running (docker compose ps)"
            ) from exc
        if exists:
            self._check_layout()
        else:
            client.create_collection(
                collection,
                vectors_config={DENSE: _dense_params(dense_size, plan)},
                sparse_vectors_config={
                    name: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    for name in (SPARSE, NGRAM)
                },
                shard_number=shards,
                replication_factor=replicas,
                # A write is acknowledged once a majority of replicas hold it.
                write_consistency_factor=max(1, replicas // 2 + 1),
            )
        # As on the edge store: graph links per ACL group, plain filter indexes for the rest.
        only_filter = models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, enable_hnsw=False)
        for name in KEYWORD_INDEXES:
            if name != ACL_FIELD or plan.acl_index:
                schema = models.PayloadSchemaType.KEYWORD if name == ACL_FIELD else only_filter
                client.create_payload_index(collection, name, schema, wait=True)
        client.create_payload_index(
            collection, STAGED_FIELD, models.PayloadSchemaType.BOOL, wait=True
        )

    def _check_layout(self) -> None:
        info = self._client.get_collection(self.collection)
        vectors = info.config.params.vectors
        dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if dense is None or dense.size != self.dense_size:
            found = dense.size if dense is not None else "no 'dense' vector"
            raise ServerStoreError(
                f"collection {self.collection!r} holds {found} where kura's embedder makes "
                f"{self.dense_size}-dimensional 'dense' vectors; set KURA_COLLECTION to a new name "
                "and re-ingest (or migrate), or use the embedder that built it"
            )
        # A collection made before the bigram channel has no "sparse_ngram": it keeps working
        # with the word channel alone (a new KURA_COLLECTION + migrate adds the channel).
        self._lexical = {SPARSE, NGRAM} & set(info.config.params.sparse_vectors or {})

    # --- filters -----------------------------------------------------------------------
    @staticmethod
    def _filter(
        groups: Groups, conditions: dict[str, Any] | None = None, staged: bool = False
    ) -> models.Filter:
        check_groups(groups)
        must: list[models.Condition] = []
        if not isinstance(groups, _AllGroups):
            must.append(  # a staged chunk's groups are under STAGED_ACL_FIELD (retrieval/store.py)
                models.FieldCondition(
                    key=STAGED_ACL_FIELD if staged else ACL_FIELD,
                    match=models.MatchAny(any=list(groups) or ["\0none"]),
                )
            )
        for key, value in (conditions or {}).items():
            match = (
                models.MatchAny(any=list(value))
                if isinstance(value, list | tuple)
                else models.MatchValue(value=value)
            )
            must.append(models.FieldCondition(key=key, match=match))
        staged_cond = models.FieldCondition(key=STAGED_FIELD, match=models.MatchValue(value=True))
        if staged:
            return models.Filter(must=[*must, staged_cond])
        if not isinstance(groups, _AllGroups):  # staged chunks have no acl_groups
            return models.Filter(must=must)
        return models.Filter(must=must or None, must_not=[staged_cond])

    @staticmethod
    def _doc_filter(doc_id: str, staged: bool | None = None) -> models.Filter:
        must: list[models.Condition] = [
            models.FieldCondition(key=DOC_FIELD, match=models.MatchValue(value=doc_id))
        ]
        if staged is not None:
            must.append(
                models.FieldCondition(key=STAGED_FIELD, match=models.MatchValue(value=staged))
            )
        return models.Filter(must=must)

    # --- writes ------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[StoredChunk]) -> None:
        points = []
        for chunk in chunks:
            vector: dict[str, Any] = {DENSE: chunk.dense} if chunk.dense is not None else {}
            for name, vec in lexical_channels(chunk.sparse):
                if name in self._lexical:
                    vector[name] = models.SparseVector(indices=vec.indices, values=vec.values)
            payload = hide_staged_groups(chunk.payload)
            points.append(models.PointStruct(id=chunk.id, vector=vector, payload=payload))
        if points:
            self._client.upsert(self.collection, points=points, wait=True)

    def commit_document(self, doc_id: str, replaces: Iterable[str] = ()) -> None:
        """Un-stage `doc_id` then drop what it replaces. On a server these are two requests:
        for a moment both versions may be visible, never neither (the journal finishes a crash)."""
        staged = self._doc_filter(doc_id, staged=True)
        first, _ = self._client.scroll(self.collection, scroll_filter=staged, limit=1, with_payload=True)
        update = committed_update(first[0].payload if first else None, False)
        self._client.set_payload(self.collection, payload=update, points=staged, wait=True)
        self._client.delete_payload(
            self.collection, keys=[STAGED_ACL_FIELD], points=self._doc_filter(doc_id), wait=True
        )
        for old in replaces:
            if old != doc_id:
                self._client.delete(
                    self.collection, points_selector=self._doc_filter(old), wait=True
                )

    def commit_documents(self, commits: Sequence[tuple[str, Sequence[str]]]) -> None:
        for doc_id, replaces in commits:
            self.commit_document(doc_id, replaces)

    def delete_documents(self, doc_ids: Iterable[str]) -> None:
        for doc_id in doc_ids:
            self._client.delete(
                self.collection, points_selector=self._doc_filter(doc_id), wait=True
            )

    def delete_staged(self) -> None:
        staged = models.Filter(
            must=[models.FieldCondition(key=STAGED_FIELD, match=models.MatchValue(value=True))]
        )
        self._client.delete(self.collection, points_selector=staged, wait=True)

    def set_document_payload(self, doc_id: str, payload: dict[str, Any]) -> None:
        committed = self._doc_filter(doc_id, staged=False)
        self._client.set_payload(self.collection, payload=payload, points=committed, wait=True)
        staged = self._doc_filter(doc_id, staged=True)
        hidden = hidden_groups_update(payload)
        self._client.set_payload(self.collection, payload=hidden, points=staged, wait=True)

    def optimize(self) -> None:
        """The server optimizes segments on its own; kept for the same surface as EdgeStore."""

    # --- reads -------------------------------------------------------------------------
    def search(
        self,
        groups: Groups,
        dense: list[float] | None,
        sparse: SparseVec | None,
        limit: int,
        conditions: dict[str, Any] | None = None,
        candidates: int = 50,
        fusion: Fusion = RRF,
        exact: bool = False,
    ) -> list[Hit]:
        """The same single query as EdgeStore.search: one prefetch per channel, fused by
        `fusion`, the ACL filter inside every prefetch and the fused query; the dense channel
        with the same search parameters (`exact`: every original, the reference for recall)."""
        flt = self._filter(groups, conditions)
        dense_params = search_params(models, self._plan, exact)  # qdrant-client's models mirror qdrant-edge's
        queries: list[tuple[Any, str, models.SearchParams | None]] = []
        weights: list[float] = []
        if dense is not None:
            queries.append((dense, DENSE, dense_params))
            weights.append(fusion.dense_weight)
        for name, vec in lexical_channels(sparse):
            if name in self._lexical:
                queries.append((models.SparseVector(indices=vec.indices, values=vec.values), name, None))
                weights.append(fusion.sparse_weight)
        if not queries:
            return []
        query: Any
        using: str | None
        params: models.SearchParams | None
        query, using, params = queries[0]  # one channel: a plain nearest-neighbour query
        prefetch = None
        if len(queries) > 1:
            prefetch = [
                models.Prefetch(query=q, using=u, filter=flt, limit=max(candidates, limit), params=p)
                for q, u, p in queries
            ]
            using, params = None, None
            if fusion.method == "dbsf":
                query = models.FusionQuery(fusion=models.Fusion.DBSF)
            else:
                rrf_weights = None if len(set(weights)) == 1 else weights
                query = models.RrfQuery(rrf=models.Rrf(k=fusion.k, weights=rrf_weights))
        response = self._client.query_points(
            self.collection,
            prefetch=prefetch,
            query=query,
            using=using,
            query_filter=flt,
            search_params=params,
            limit=limit,
            with_payload=True,
            with_vectors=[DENSE] if dense is not None else False,
        )
        return [
            Hit(str(p.id), float(p.score), shown_payload(p.payload), _dense_of(p.vector))
            for p in response.points
        ]

    def _scroll(
        self, flt: models.Filter, with_vectors: bool = False
    ) -> Iterator[list[models.Record]]:
        offset = None
        while True:
            records, offset = self._client.scroll(
                self.collection,
                scroll_filter=flt,
                limit=_SCROLL_PAGE,
                offset=offset,
                with_payload=True,
                with_vectors=with_vectors,
            )
            yield records
            if offset is None:
                return

    def chunk(self, chunk_id: str, groups: Groups) -> Hit | None:
        """One committed chunk by id, only if `groups` may read it (the ACL is in the query)."""
        flt = self._filter(groups)
        flt.must = [*(flt.must or []), models.HasIdCondition(has_id=[chunk_id])]
        records = [r for page in self._scroll(flt) for r in page]
        return Hit(str(records[0].id), 0.0, shown_payload(records[0].payload)) if records else None

    def chunks_of(self, doc_id: str, groups: Groups) -> list[Hit]:
        hits = [
            Hit(str(r.id), 0.0, shown_payload(r.payload))
            for page in self._scroll(self._filter(groups, {DOC_FIELD: doc_id}))
            for r in page
        ]
        return sorted(hits, key=lambda h: h.payload.get("chunk_index", 0))

    def count(self, groups: Groups = ALL_GROUPS, staged: bool = False) -> int:
        result = self._client.count(
            self.collection, count_filter=self._filter(groups, staged=staged), exact=True
        )
        return int(result.count)

    def document_ids(self, groups: Groups = ALL_GROUPS) -> set[str]:
        facets = self._client.facet(
            self.collection,
            DOC_FIELD,
            facet_filter=self._filter(groups),
            limit=1_000_000,
            exact=True,
        )
        return {str(hit.value) for hit in facets.hits}

    def export_points(self, batch: int = _SCROLL_PAGE) -> Iterator[list[StoredChunk]]:
        """Every chunk, staged or not, with its vectors: for migration and backup."""
        everything = models.Filter()
        for page in self._scroll(everything, with_vectors=True):
            yield [_stored(r.id, r.vector, r.payload) for r in page]

    def close(self) -> None:
        self._client.close()


def _dense_params(size: int, plan: IndexPlan) -> models.VectorParams:
    """The dense vector of a new collection, as `retrieval.index_build.edge_config` lays it out."""
    int8 = plan.quantization == "int8"
    quantization = models.ScalarQuantization(
        scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
    )
    return models.VectorParams(
        size=size,
        distance=models.Distance.COSINE,
        on_disk=True if int8 else None,
        quantization_config=quantization if int8 else None,
        hnsw_config=models.HnswConfigDiff(
            m=plan.m, ef_construct=plan.ef_construct, full_scan_threshold=plan.full_scan_kb
        ),
    )


def _stored(point_id: Any, vector: Any, payload: dict[str, Any] | None) -> StoredChunk:
    vectors = vector if isinstance(vector, dict) else {DENSE: vector}
    return StoredChunk(
        id=str(point_id),
        dense=list(vectors[DENSE]) if vectors.get(DENSE) is not None else None,
        sparse=lexical_from_stored(vectors.get(SPARSE), vectors.get(NGRAM)),
        payload=shown_payload(payload),
    )


def _dense_of(vector: Any) -> list[float] | None:
    if isinstance(vector, dict) and DENSE in vector:
        return list(vector[DENSE])
    return None
