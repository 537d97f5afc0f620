"""The chunk store: the only module that talks to Qdrant.

Two implementations of one small contract (`ChunkStore`):
- `EdgeStore`: Qdrant's own engine in-process (qdrant-edge) under the data directory; default.
- `ServerStore` (retrieval/server_store.py): a Qdrant server or cluster through qdrant-client.

Every read takes the caller's ACL groups and turns them into a Qdrant filter *inside* the
query (`visibility_filter`); there is no unfiltered read path except for `groups=ALL_GROUPS`,
which only the service facade passes, and only for an admin acting as admin.

Documents are replaced atomically: new chunks are written `staged` (invisible to every read),
then `commit_document` un-stages them and deletes the old version under one lock. A crash in
between is repaired on open by `recover` (see ingest/manifest.py for the journal).

A staged chunk keeps its groups under `staged_acl_groups`, not `acl_groups` (`hide_staged_groups`),
so the ACL condition of a reader's query leaves it out by itself. A second condition "not
staged" was checked on every point the ACL matched and doubled the dense search at a million
chunks (~27 -> ~50 ms, `kura bench search_latency`). Queries over all groups (admin, maintenance)
still exclude staged chunks by the flag. Reads give the payload back as it was written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from retrieval.index_build import (
    IndexBuilds,
    IndexPlan,
    IndexStatus,
    copy_shard,
    edge_config,
    open_layout,
    search_params,
    shard_path,
    sync_wal,
)

DENSE = "dense"
SPARSE = "sparse"
NGRAM = "sparse_ngram"  # the Japanese character-bigram channel (retrieval/sparse.py)
ACL_FIELD = "acl_groups"
DOC_FIELD = "doc_id"
STAGED_FIELD = "staged"
STAGED_ACL_FIELD = "staged_acl_groups"  # a staged chunk's groups until its commit (see above)
RRF_K = 60  # reciprocal rank fusion constant; ServerStore uses the same


class StoreBusy(RuntimeError):
    """The embedded store is open in another process (qdrant-edge allows one opener)."""


class _AllGroups:
    """Marker for 'no ACL filter': admins acting as admins, maintenance, migration."""

    def __repr__(self) -> str:
        return "ALL_GROUPS"


ALL_GROUPS = _AllGroups()
Groups = Sequence[str] | _AllGroups


@dataclass(frozen=True)
class SparseVec:
    """A lexical vector: word terms in `indices`/`values` (store vector "sparse"), and for
    Japanese text the character-bigram channel in `ngrams` (store vector "sparse_ngram").
    The two are searched as separate prefetches and fused, each with its own IDF."""

    indices: list[int]
    values: list[float]
    ngrams: SparseVec | None = None


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as written to the store: id, vectors and payload (see ingest/pipeline.py)."""

    id: str
    dense: list[float] | None  # None: a language the embedder does not cover (sparse only)
    sparse: SparseVec | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Fusion:
    """How a hybrid search combines its dense and sparse candidate lists, inside Qdrant.

    `rrf`: reciprocal-rank fusion with `k`; `dbsf`: distribution-based score fusion (Qdrant
    normalises each channel's scores; weights ignored). Weights go to Qdrant's weighted RRF,
    which (measured on qdrant-edge) scores rank r as 1/(k - 1 + (r + 1)/w): w = 0 drops a
    channel, w < 1 spreads its ranks apart, w > 1 flattens them — not "more influence".
    """

    method: str = "rrf"
    k: int = RRF_K
    dense_weight: float = 1.0
    sparse_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in ("rrf", "dbsf"):
            raise ValueError(f"fusion method must be 'rrf' or 'dbsf', not {self.method!r}")
        if self.k < 1 or self.dense_weight < 0 or self.sparse_weight < 0:
            raise ValueError(f"fusion needs k >= 1 and non-negative weights, got {self}")


RRF = Fusion()


@dataclass(frozen=True)
class Hit:
    """A chunk returned by a search, with its score and payload. `dense` is the chunk's dense
    vector when the search had a dense query (for a raw cosine independent of fusion)."""

    id: str
    score: float
    payload: dict[str, Any] = field(repr=False)
    dense: list[float] | None = field(default=None, repr=False, compare=False)

    @property
    def doc_id(self) -> str:
        return str(self.payload[DOC_FIELD])

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))


class ChunkStore(Protocol):
    def upsert(self, chunks: Sequence[StoredChunk]) -> None: ...
    def commit_document(self, doc_id: str, replaces: Iterable[str] = ()) -> None: ...
    def commit_documents(self, commits: Sequence[tuple[str, Sequence[str]]]) -> None: ...
    def delete_documents(self, doc_ids: Iterable[str]) -> None: ...
    def delete_staged(self) -> None: ...
    def set_document_payload(self, doc_id: str, payload: dict[str, Any]) -> None: ...
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
    ) -> list[Hit]: ...
    def chunks_of(self, doc_id: str, groups: Groups) -> list[Hit]: ...
    def chunk(self, chunk_id: str, groups: Groups) -> Hit | None: ...
    def count(self, groups: Groups = ALL_GROUPS, staged: bool = False) -> int: ...
    def document_ids(self, groups: Groups = ALL_GROUPS) -> set[str]: ...
    def export_points(self, batch: int = 512) -> Iterator[list[StoredChunk]]: ...
    def close(self) -> None: ...


def check_groups(groups: Groups) -> None:
    """Fail loudly on a caller that forgot to pass groups: an empty list would match nothing,
    but a None or a bare string is a programming error that must not silently widen access."""
    if groups is ALL_GROUPS:
        return
    if isinstance(groups, str) or not isinstance(groups, Sequence):
        raise TypeError(f"groups must be a sequence of group names or ALL_GROUPS, not {groups!r}")


class EdgeStore:
    """qdrant-edge shard under `path`. One process owns it (qdrant-edge allows one opener).

    Searches never wait for an index build: the HNSW index is built by another process on a
    copy of the shard and swapped in (retrieval/index_build.py). `_lock` guards the shard
    object for every read and each write step; `_writing` orders the writers, and the build
    holds it alone while it copies the files, so searches go on meanwhile.
    """

    def __init__(self, path: Path, dense_size: int, plan: IndexPlan | None = None) -> None:
        import qdrant_edge as qe

        self._qe = qe
        self._lock = threading.RLock()
        self._writing = threading.RLock()
        self._plan = plan or IndexPlan(min_new_chunks=0)  # no plan given: build only on request
        self._dir = path
        layout = open_layout(path)
        self._path = shard_path(path, layout)
        idf = qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)
        self._config = edge_config(qe, dense_size, self._plan, {SPARSE: idf, NGRAM: idf})
        self._search_params = search_params(qe, self._plan)
        self._exact_params = search_params(qe, self._plan, exact=True)
        if any(self._path.iterdir()):
            try:
                self._shard = _load_adding_ngram(qe, self._path, self._config)
            except Exception as exc:
                if "WouldBlock" in str(exc):
                    raise StoreBusy(
                        f"another kura process (kura serve, or an ingest) holds the store at {path}; "
                        "stop it first, or use the browser UI, or run kura against a Qdrant server "
                        "(KURA_QDRANT_URL) so several processes can share it"
                    ) from exc
                raise RuntimeError(
                    f"cannot open the store at {path}: {exc}. If the embedder changed "
                    f"(vector size now {dense_size}), re-ingest into a new KURA_DATA_DIR; "
                    "if another kura process is running, stop it first"
                ) from exc
        else:
            self._shard = qe.EdgeShard.create(str(self._path), self._config)
        # The groups field has a payload index, and the graph gets extra links per group so a
        # reader of a few groups still walks a connected graph; the other indexed fields only
        # filter, and building graphs for their values would only lengthen the build.
        only_filter = qe.KeywordIndexParams(enable_hnsw=False)
        indexes: list[tuple[str, Any]] = [
            (DOC_FIELD, only_filter),
            (STAGED_FIELD, qe.IntegerIndexParams(lookup=True, range=True, enable_hnsw=False)),  # see _to_edge
            ("source_path", only_filter),
            ("file_type", only_filter),
        ]
        if self._plan.acl_index:
            indexes.insert(0, (ACL_FIELD, qe.PayloadSchemaType.Keyword))
        for name, schema in indexes:
            self._shard.update(qe.UpdateOperation.create_field_index(name, schema))
        self._builds = IndexBuilds(
            path,
            self._plan,
            layout,
            self._writing,
            live=lambda: (self._shard, self._path),
            points=self._points,
            open_shard=lambda folder: qe.EdgeShard.load(str(folder), self._config),
            swap=self._swap,
        )
        if self._plan.min_new_chunks and layout.indexed_points + self._plan.min_new_chunks <= self._points():
            self._builds.written()  # a store that grew past the threshold without an index

    # --- the index ---------------------------------------------------------------------
    def build_index(self, wait: bool = False) -> IndexStatus:
        """Build the HNSW index now, in the background (retrieval/index_build.py); searches
        and writes go on. `wait`: return once it is built (batch tools: eval, benchmarks)."""
        self._builds.request()
        return self.wait_for_index() if wait else self.index_status()

    def wait_for_index(self, timeout: float | None = None) -> IndexStatus:
        """Wait until no build is running or requested (tests, batch tools); the status then."""
        self._builds.wait(timeout)
        return self.index_status()

    def optimize(self) -> None:
        """Build the index and wait (kept for the batch tools that called it after a bulk load)."""
        self.build_index(wait=True)

    def index_status(self) -> IndexStatus:
        return self._builds.status(self._points())

    def _points(self) -> int:
        with self._lock:
            return int(self._shard.info().points_count)

    def _swap(self, fresh: Any) -> None:
        """Readers use `fresh` from their next query on (the build holds the write lock)."""
        with self._lock:
            old, self._shard = self._shard, fresh
            self._path = shard_path(self._dir, self._builds.layout)
            old.close()

    def _persist(self) -> None:
        """Make the writes applied so far survive a crash or a power loss (the caller holds
        `_writing`, not `_lock`). Normally the shard's flush: its segments and its write-ahead
        log, ~160 msync/fsync calls, ~20 ms here, all inside one native call that holds the GIL.
        While a builder writes gigabytes beside the store, each of those calls waits behind
        its writes (single flushes took over a second at 1M chunks), and every search of the
        process waited with them. So during a build only the WAL is written to disk, from
        Python with the GIL released; the segments catch up at the next flush (the swap
        flushes the built shard, a write after a failed build the live one). After a crash in
        between, opening the shard replays the WAL into them, as Qdrant does after any crash
        between its flushes."""
        if self._builds.logging():
            sync_wal(self._path)
            return
        with self._lock:
            self._shard.flush()

    def _update(self, operation: Any, chunks: int = 0) -> None:
        """Apply one write (the caller holds both locks); a running build logs it to replay."""
        self._shard.update(operation)
        self._builds.record(operation, chunks)

    # --- filters -----------------------------------------------------------------------
    def _filter(
        self,
        groups: Groups,
        conditions: dict[str, Any] | None = None,
        staged: bool = False,
        also: Sequence[Any] = (),
    ):
        """The reader's filter: `groups` (the ACL), `conditions` (field: value or list of values)
        and `also` (more qdrant-edge conditions), all required."""
        qe = self._qe
        check_groups(groups)
        must: list[Any] = list(also)
        for key, value in (conditions or {}).items():
            match = qe.MatchAny(any=list(value)) if isinstance(value, list | tuple) else qe.MatchValue(value=value)
            must.append(qe.FieldCondition(key=key, match=match))
        staged_cond = qe.FieldCondition(key=STAGED_FIELD, match=qe.MatchValue(value=1))
        if isinstance(groups, _AllGroups):
            if staged:
                return qe.Filter(must=[*must, staged_cond])
            return qe.Filter(must=must or None, must_not=[staged_cond])
        # Any one of the groups, as one MatchValue each in `should` (Qdrant: with `must`, at
        # least one `should` must match): qdrant-edge plans it faster than a single MatchAny,
        # 23.6 -> 20.1 ms for the dense channel at a million chunks. An empty group list must
        # match nothing. Staged chunks have no acl_groups (module doc), so a reader's filter
        # needs no condition on the staged flag.
        acl = STAGED_ACL_FIELD if staged else ACL_FIELD
        should = [qe.FieldCondition(key=acl, match=qe.MatchValue(value=g)) for g in list(groups) or ["\0none"]]
        if staged:
            must.append(staged_cond)
        return qe.Filter(must=must or None, should=should)

    def _doc_filter(self, doc_id: str, staged: bool | None = None):
        qe = self._qe
        must = [qe.FieldCondition(key=DOC_FIELD, match=qe.MatchValue(value=doc_id))]
        if staged is not None:
            must.append(qe.FieldCondition(key=STAGED_FIELD, match=qe.MatchValue(value=int(staged))))
        return qe.Filter(must=must)

    # --- writes ------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[StoredChunk]) -> None:
        qe = self._qe
        points = []
        for chunk in chunks:
            vectors: dict[str, Any] = {DENSE: chunk.dense} if chunk.dense is not None else {}
            for name, vec in lexical_channels(chunk.sparse):
                vectors[name] = qe.SparseVector(indices=vec.indices, values=vec.values)
            points.append(qe.Point(chunk.id, vectors, _to_edge(chunk.payload)))
        with self._writing, self._lock:
            self._update(qe.UpdateOperation.upsert_points(points), len(points))
        self._builds.written()

    def commit_document(self, doc_id: str, replaces: Iterable[str] = ()) -> None:
        """Make `doc_id`'s staged chunks visible and drop the documents it replaces, as one step
        for every reader of this process."""
        self.commit_documents([(doc_id, list(replaces))])

    def commit_documents(self, commits: Sequence[tuple[str, Sequence[str]]]) -> None:
        """`commit_document` for many documents with one flush (a flush is ~75 ms of fsync here;
        per small file it was most of the ingestion time). Each swap is one step under the lock."""
        with self._writing:
            with self._lock:
                self._commit(commits)
            self._persist()
        self._builds.written()

    def _commit(self, commits: Sequence[tuple[str, Sequence[str]]]) -> None:
        qe = self._qe
        for doc_id, replaces in commits:
            staged = self._doc_filter(doc_id, staged=True)
            first, _ = self._shard.scroll(qe.ScrollRequest(filter=staged, limit=1, with_payload=True))
            self._update(
                qe.UpdateOperation.set_payload_by_filter(
                    staged, committed_update(first[0].payload if first else None, 0)
                )
            )
            self._update(qe.UpdateOperation.delete_payload_by_filter(self._doc_filter(doc_id), [STAGED_ACL_FIELD]))
            for old in replaces:
                if old != doc_id:
                    self._update(qe.UpdateOperation.delete_points_by_filter(self._doc_filter(old)))

    def delete_documents(self, doc_ids: Iterable[str]) -> None:
        qe = self._qe
        with self._writing:
            with self._lock:
                for doc_id in doc_ids:
                    self._update(qe.UpdateOperation.delete_points_by_filter(self._doc_filter(doc_id)))
            self._persist()

    def delete_staged(self) -> None:
        qe = self._qe
        staged = qe.Filter(must=[qe.FieldCondition(key=STAGED_FIELD, match=qe.MatchValue(value=1))])
        with self._writing:
            with self._lock:
                self._update(qe.UpdateOperation.delete_points_by_filter(staged))
            self._persist()

    def set_document_payload(self, doc_id: str, payload: dict[str, Any]) -> None:
        """Change payload (ACL groups, paths) on every chunk of a document without re-embedding."""
        qe = self._qe
        with self._writing:
            with self._lock:
                committed, staged = self._doc_filter(doc_id, staged=False), self._doc_filter(doc_id, staged=True)
                self._update(qe.UpdateOperation.set_payload_by_filter(committed, _to_edge(payload)))
                self._update(qe.UpdateOperation.set_payload_by_filter(staged, hidden_groups_update(payload)))
            self._persist()

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
        """Dense, sparse, or hybrid search as ONE Qdrant query: each channel is a prefetch of
        `candidates` points, fused by `fusion`; the ACL filter is inside every prefetch and the
        fused query, so a chunk the caller may not read is never a candidate. The dense channel
        walks the HNSW graph on int8 vectors and rescores on the originals where a build made
        one; `exact` scans every original instead (the reference for recall)."""
        qe = self._qe
        flt = self._filter(groups, conditions)
        dense_params = self._exact_params if exact else self._search_params
        queries: list[tuple[Any, Any]] = []
        weights: list[float] = []
        if dense is not None:
            queries.append((qe.Query.Nearest(dense, using=DENSE), dense_params))
            weights.append(fusion.dense_weight)
        for name, vec in lexical_channels(sparse):
            lexical = qe.SparseVector(indices=vec.indices, values=vec.values)
            queries.append((qe.Query.Nearest(lexical, using=name), None))  # the inverted index is exact
            weights.append(fusion.sparse_weight)
        if not queries:
            return []
        (query, params), prefetches = queries[0], None  # one channel: a plain nearest-neighbour query
        if len(queries) > 1:
            prefetches = [
                qe.Prefetch(limit=max(candidates, limit), query=q, filter=flt, params=p) for q, p in queries
            ]
            params = None
            if fusion.method == "dbsf":
                query = qe.Fusion.Dbsf()
            else:
                query = qe.Fusion.Rrf(k=fusion.k, weights=None if len(set(weights)) == 1 else weights)
        request = qe.QueryRequest(
            limit=limit, query=query, prefetches=prefetches, filter=flt, with_payload=True,
            with_vector=[DENSE] if dense is not None else None, params=params,
        )
        with self._lock:
            points = self._shard.query(request)
        return [Hit(str(p.id), float(p.score), _from_edge(p.payload), _dense_of(p)) for p in points]

    def _scroll(self, flt) -> list[Any]:
        qe = self._qe
        records, offset = [], None
        while True:
            with self._lock:
                batch, offset = self._shard.scroll(
                    qe.ScrollRequest(filter=flt, limit=512, offset=offset, with_payload=True)
                )
            records.extend(batch)
            if offset is None:
                return records

    def chunk(self, chunk_id: str, groups: Groups) -> Hit | None:
        """One committed chunk by id, only if `groups` may read it (the ACL is in the query)."""
        flt = self._filter(groups, also=[self._qe.HasIdCondition({chunk_id})])
        records = self._scroll(flt)
        return Hit(str(records[0].id), 0.0, _from_edge(records[0].payload)) if records else None

    def chunks_of(self, doc_id: str, groups: Groups) -> list[Hit]:
        records = self._scroll(self._filter(groups, {DOC_FIELD: doc_id}))
        hits = [Hit(str(r.id), 0.0, _from_edge(r.payload)) for r in records]
        return sorted(hits, key=lambda h: h.payload.get("chunk_index", 0))

    def count(self, groups: Groups = ALL_GROUPS, staged: bool = False) -> int:
        with self._lock:
            return int(self._shard.count(self._qe.CountRequest(filter=self._filter(groups, staged=staged), exact=True)))

    def document_ids(self, groups: Groups = ALL_GROUPS) -> set[str]:
        qe = self._qe
        with self._lock:
            facets = self._shard.facet(
                qe.FacetRequest(key=DOC_FIELD, limit=1_000_000, exact=True, filter=self._filter(groups))
            )
        return {str(hit.value) for hit in facets.hits}

    def export_points(self, batch: int = 512) -> Iterator[list[StoredChunk]]:
        """Every chunk, staged or not, with its vectors: for migration (app/doors/cli/ops.py)."""
        qe = self._qe
        offset = None
        while True:
            with self._lock:
                request = qe.ScrollRequest(limit=batch, offset=offset, with_payload=True, with_vector=True)
                records, offset = self._shard.scroll(request)
            yield [_stored_from_edge(r) for r in records]
            if offset is None:
                return

    def snapshot_to(self, dest: Path, while_locked: Callable[[], None] | None = None) -> None:
        """Flush and copy the live shard's files to `dest` while no write can run (a live backup);
        `while_locked` runs inside the same lock, so the manifest is copied at the same point."""
        with self._writing, self._lock:
            self._shard.flush()
            copy_shard(self._path, dest, copy_keeping_holes)
            if while_locked is not None:
                while_locked()

    def close(self) -> None:
        self._builds.close()  # first: a build that is swapping needs the locks
        with self._lock:
            self._shard.close()


def lexical_channels(sparse: SparseVec | None) -> list[tuple[str, SparseVec]]:
    """(store vector name, vector) for each non-empty lexical channel of `sparse`."""
    if sparse is None:
        return []
    channels = [(SPARSE, sparse), (NGRAM, sparse.ngrams)]
    return [(name, vec) for name, vec in channels if vec is not None and vec.indices]


def lexical_from_stored(words: Any, ngrams: Any) -> SparseVec | None:
    """The inverse of `lexical_channels` for vectors read back from Qdrant (either may be None)."""
    grams = SparseVec(list(ngrams.indices), list(ngrams.values)) if ngrams is not None else None
    if words is None and grams is None:
        return None
    indices, values = (list(words.indices), list(words.values)) if words is not None else ([], [])
    return SparseVec(indices, values, grams)


def _load_adding_ngram(qe: Any, path: Path, config: Any) -> Any:
    """Open an existing shard; one written before the bigram channel existed gets the
    "sparse_ngram" vector added in place (its chunks have none until re-ingested, so Japanese
    search on them falls back to the word channel alone)."""
    try:
        return qe.EdgeShard.load(str(path), config)
    except Exception as exc:
        if "Incompatible configs" not in str(exc) or NGRAM not in str(exc):
            raise
    legacy = qe.EdgeConfig(vectors=config.vectors, sparse_vectors={SPARSE: config.sparse_vectors[SPARSE]})
    shard = qe.EdgeShard.load(str(path), legacy)
    shard.update(qe.UpdateOperation.create_sparse_vector(NGRAM, qe.Modifier.Idf))
    shard.flush()
    shard.close()
    return qe.EdgeShard.load(str(path), config)  # and the index settings written with it


def committed_update(first_staged: dict[str, Any] | None, unstaged: Any) -> dict[str, Any]:
    """What a commit sets on a document's staged chunks, given one of them: the flag off
    (`unstaged`: 0 on the edge shard, False on a server), and the groups they carried hidden
    (all chunks of a document share them; chunks staged before the groups were hidden already
    carry acl_groups)."""
    update: dict[str, Any] = {STAGED_FIELD: unstaged}
    if first_staged and STAGED_ACL_FIELD in first_staged:
        update[ACL_FIELD] = first_staged[STAGED_ACL_FIELD]
    return update


def _stored_from_edge(record: Any) -> StoredChunk:
    vectors = record.vector or {}
    return StoredChunk(
        id=str(record.id),
        dense=list(vectors[DENSE]) if vectors.get(DENSE) is not None else None,
        sparse=lexical_from_stored(vectors.get(SPARSE), vectors.get(NGRAM)),
        payload=_from_edge(record.payload),
    )


def _dense_of(point: Any) -> list[float] | None:
    vectors = getattr(point, "vector", None)
    if isinstance(vectors, dict) and DENSE in vectors:
        return list(vectors[DENSE])
    return None


def hide_staged_groups(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as stored: a staged chunk's `acl_groups` moved to `staged_acl_groups`."""
    if payload.get(STAGED_FIELD) and ACL_FIELD in payload:
        stored = {k: v for k, v in payload.items() if k != ACL_FIELD}
        stored[STAGED_ACL_FIELD] = payload[ACL_FIELD]
        return stored
    return payload


def shown_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    """The inverse of `hide_staged_groups`: the payload as it was written."""
    out = dict(payload or {})
    if STAGED_ACL_FIELD in out:
        groups = out.pop(STAGED_ACL_FIELD)
        if out.get(STAGED_FIELD):
            out[ACL_FIELD] = groups
    return out


def hidden_groups_update(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload change for a document's staged chunks: new groups stay hidden until commit."""
    return {STAGED_ACL_FIELD if k == ACL_FIELD else k: v for k, v in payload.items()}


# qdrant-edge-py 0.9.0 turns MatchValue(True) into the integer 1, which never matches a stored
# JSON `true`: a bool `staged` flag could not be filtered (staged chunks were visible and
# commit_document un-staged nothing). The edge shard therefore stores the flag as 0/1, and
# payloads leave this class with a bool again, identical to ServerStore's.
def _to_edge(payload: dict[str, Any]) -> dict[str, Any]:
    payload = hide_staged_groups(payload)
    if STAGED_FIELD in payload:
        return {**payload, STAGED_FIELD: int(bool(payload[STAGED_FIELD]))}
    return payload


def _from_edge(payload: dict[str, Any] | None) -> dict[str, Any]:
    out = shown_payload(payload)
    if STAGED_FIELD in out:
        out[STAGED_FIELD] = bool(out[STAGED_FIELD])
    return out


def copy_keeping_holes(src: str, dst: str) -> str:
    """Copy a file leaving all-zero blocks as holes: qdrant-edge preallocates 32 MB WAL and
    segment files that are mostly empty (a 1-chunk store: 432 KB on disk, 201 MB apparent)."""
    import shutil

    block = 1 << 16
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(block):
            if chunk.count(0) == len(chunk):
                fout.seek(len(chunk), 1)
            else:
                fout.write(chunk)
        fout.truncate()
    shutil.copystat(src, dst)
    return dst
