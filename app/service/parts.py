"""The composition root: every part kura is built from (store, models, manifest, queues,
accounts, keys, audit log), declared once, in dependency order, and built from settings.

A part is built once, on first use or when the server starts it loading (`Parts.start`), under
its own lock. A part's build may ask for the parts listed before it, never after, so two
threads asking for parts at once always take the locks in the same order and cannot deadlock
(tests/test_service_parts.py drives a request and the ingest writer into the same window).
Tests hand in parts they built themselves: `KuraService(settings, embedder=e, llm=fake)`.

Also the checks every use case shares (`UseCase`): `_denied` (a missing role is refused after
it is audited) and `_groups_for` (the groups that go into the Qdrant filter of a read).

Usage:
    parts = Parts(KuraSettings(), embedder=my_embedder)
    parts.start("embedder", "store", "index")   # load in the background, in this order
    store = parts.store.get()                   # waits until it is built
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from app.audit.index import INDEX_FILE, AuditIndex
from app.audit.log import AuditLog
from app.audit.siem import queue_depth, start_forwarding
from app.identity.accounts import Accounts, UnknownUser
from app.identity.keys import ApiKeys
from app.identity.users import ADMIN, EMPLOYEE, User
from app.platform import metrics
from app.platform.settings import KuraSettings
from app.service.backup_schedule import BackupSchedule
from app.service.conversation_store import ConversationStore
from app.service.feedback import FeedbackBook
from app.service.jobs import IngestJobs
from ingest.manifest import Manifest
from ingest.pipeline import Index, recover
from models.embedder import Embedder, load_embedder
from models.llm import LLM, load_llm
from models.queue import LLMQueue
from models.registry import ModelRegistry, resolve_embedder_path, resolve_llm_path
from retrieval.index_build import IndexPlan
from retrieval.passage import Passage
from retrieval.rerank import Reranker
from retrieval.search import parse_fusion, search_passages
from retrieval.sparse import SparseEncoder
from retrieval.store import ALL_GROUPS, ChunkStore, EdgeStore, Groups

log = logging.getLogger(__name__)
T = TypeVar("T")
_UNBUILT: Any = object()


class Part(Generic[T]):
    """One part of the service: built by `build` once, on the first `get()`; a failed build
    raises to its caller and is tried again by the next one."""

    def __init__(self, name: str, build: Callable[[], T], close: Callable[[T], None] | None = None) -> None:
        self.name = name
        self._build, self._close = build, close
        self._lock = threading.Lock()
        self._value: Any = _UNBUILT

    def get(self) -> T:
        """The part, built now if nobody has built it yet (waits while another thread builds it)."""
        value = self._value
        if value is _UNBUILT:
            with self._lock:
                if self._value is _UNBUILT:
                    self._value = self._build()
                value = self._value
        return value

    def peek(self) -> T | None:
        """The part if it is built, else None, never building it: for a metrics scrape and for
        closing, which must not load a model."""
        value = self._value
        return None if value is _UNBUILT else value

    def set(self, value: T) -> None:
        """Hand in a built part (a test's model, a hot-swapped LLM)."""
        with self._lock:
            self._value = value

    def close(self) -> None:
        with self._lock:
            value, self._value = self._value, _UNBUILT
        if value is not _UNBUILT and value is not None and self._close is not None:
            self._close(value)


class Parts:
    """Every part, in the order they may need each other (a part's build uses only parts above it)."""

    ORDER = (
        "models", "embedder", "sparse", "reranker", "store", "manifest", "index",
        "llm", "ingest_jobs", "accounts", "api_keys", "feedback_book", "backups", "audit_index",
        "conversation_store",
    )

    def __init__(self, settings: KuraSettings | None = None, **given: Any) -> None:
        self.settings = s = settings or KuraSettings()
        s.ensure_dirs()
        self.audit = AuditLog(s.audit_path)
        self.siem = start_forwarding(s, self.audit)  # None unless KURA_AUDIT_SYSLOG
        self.models = Part("models", lambda: ModelRegistry(s.models_manifest_path))
        self.embedder: Part[Embedder] = Part("embedder", self._load_embedder)
        self.sparse = Part("sparse", lambda: SparseEncoder(s.sparse_japanese))
        self.reranker: Part[Reranker | None] = Part("reranker", self._load_reranker)
        self.store: Part[ChunkStore] = Part("store", self._open_store, close=lambda store: store.close())
        self.manifest = Part("manifest", lambda: Manifest(s.manifest_path), close=lambda m: m.close())
        self.index = Part("index", self._open_index)
        self.llm: Part[LLM] = Part("llm", self._load_llm)
        # The line exists from the start; the model behind it loads when it is first needed.
        self.llm_queue = LLMQueue(max_waiting=s.llm_queue_limit, load=self.llm.get)
        self.ingest_jobs = Part("ingest_jobs", self._ingest_jobs, close=lambda jobs: jobs.close())
        self.accounts = Part("accounts", lambda: Accounts.from_settings(s, audit=self.audit), close=lambda a: a.close())
        self.api_keys = Part("api_keys", lambda: ApiKeys(s.data_dir / "api_keys.sqlite3"), close=lambda k: k.close())
        self.feedback_book = Part("feedback_book", lambda: FeedbackBook(s.data_dir / "feedback.sqlite3"),
                                  close=lambda book: book.close())
        # Scheduled backups: their thread stops (after a backup it is writing) before the store closes.
        self.backups = Part("backups", lambda: BackupSchedule(s), close=lambda schedule: schedule.stop())
        # The auditor's analytics index (issue 27): derived from the log, rebuilt from it.
        self.audit_index = Part(
            "audit_index", lambda: AuditIndex(s.data_dir / INDEX_FILE, self.audit, s.audit_timezone),
            close=lambda index: index.close(),
        )
        # Saved conversations (issue 26): conversations.sqlite3, searched with document search's analyzers.
        self.conversation_store = Part(
            "conversation_store",
            lambda: ConversationStore(s.data_dir / "conversations.sqlite3", self.sparse.get()),
            close=lambda store: store.close(),
        )
        for name, value in given.items():
            if name not in self.ORDER:
                raise TypeError(f"no part named {name!r}; parts are {', '.join(self.ORDER)}")
            self.part(name).set(value)
        metrics.add_reader(_gauge_reader(self))
        if s.metrics_port is not None:  # the UI process, a worker: whoever serves
            try:
                metrics.start_metrics_server(s.metrics_port, s.metrics_host)
            except OSError as exc:
                log.warning("metrics endpoint not started: %s", exc)

    def part(self, name: str) -> Part[Any]:
        return getattr(self, name)

    def start(self, *names: str) -> threading.Thread:
        """Build the named parts (in ORDER) in a background thread; a failure is logged, and the
        next use of the part tries again and raises to its caller."""

        def build() -> None:
            for name in (n for n in self.ORDER if n in names):
                try:
                    self.part(name).get()
                except Exception as exc:  # the request that needs it reports it
                    log.warning("part %s did not load: %s", name, exc)

        thread = threading.Thread(target=build, name="kura-parts", daemon=True)
        thread.start()
        return thread

    def _load_embedder(self) -> Embedder:
        s = self.settings
        folder = resolve_embedder_path(s.embedder_path)
        embedder = load_embedder(folder, s.embedder_backend, cache_dir=s.model_cache_dir)
        # One setting says which languages get dense vectors, for chunks (ingest) and for
        # questions (search) alike: a Japanese site with a multilingual model sets "en,ja".
        embedder.languages = tuple(s.embedder_languages)  # type: ignore[attr-defined]
        return embedder

    def _load_reranker(self) -> Reranker | None:
        path = self.settings.reranker_path
        return metrics.TimedReranker(Reranker(path)) if path else None  # type: ignore[return-value]

    def _open_store(self) -> ChunkStore:
        s = self.settings
        dim = self.embedder.get().dim
        if s.qdrant_url:
            from retrieval.server_store import ServerStore

            return ServerStore(
                s.qdrant_url,
                s.qdrant_api_key,
                s.collection,
                dim,
                shards=s.qdrant_shards,
                replicas=s.qdrant_replicas,
                plan=index_plan(s),
            )
        return EdgeStore(s.store_dir, dim, index_plan(s))

    def _open_index(self) -> Index:
        s = self.settings
        index = Index(
            store=self.store.get(),
            manifest=self.manifest.get(),
            embedder=self.embedder.get(),
            encode_sparse=self.sparse.get().encode_document,
            chunk_tokens=s.chunk_tokens,
            overlap_tokens=s.chunk_overlap_tokens,
            max_file_bytes=int(s.max_file_mb * 1024 * 1024),
        )
        # Once per process, before its ingest writer takes a job (never inside a job).
        repaired = recover(index)
        if repaired:
            log.warning("finished %d document swaps interrupted by a crash", repaired)
        return index

    def _load_llm(self) -> LLM:
        s = self.settings
        path = None if s.llm_url else resolve_llm_path(s.llm_path, self.models.get())
        return load_llm(
            path, s.llm_url, s.llm_context_tokens, s.llm_threads, s.llm_gpu_layers, s.llm_model, s.llm_api_key
        )

    def _ingest_jobs(self) -> IngestJobs:
        s = self.settings
        return IngestJobs(s.data_dir, self.audit, open_index=self.index.get, nice=s.ingest_nice)

    def close(self) -> None:
        """Close what was built, the ingest writer first (it stops between two files)."""
        for name in ("backups", "ingest_jobs", "api_keys", "store", "manifest", "feedback_book", "accounts",
                     "audit_index", "conversation_store"):
            self.part(name).close()


def index_plan(s: KuraSettings) -> IndexPlan:
    """The store's index plan from settings: built by itself in a serving process."""
    return IndexPlan(
        min_new_chunks=s.index_min_new_chunks,
        threads=s.index_threads,
        quantization=s.index_quantization,
        search_ef=s.index_search_ef,
    )


def _gauge_reader(parts: Parts) -> Callable[[], None]:
    """Read store size, document count and queue depth at scrape time (never on the query path);
    only parts already built are read, so a scrape never loads a model."""
    ref = weakref.ref(parts)  # a closed, dropped service stops being read

    def read() -> None:
        alive = ref()
        if alive is None:
            raise LookupError("service is gone")
        if (store := alive.store.peek()) is not None:
            metrics.STORE_CHUNKS.set(store.count())
        if (manifest := alive.manifest.peek()) is not None:
            metrics.STORE_DOCUMENTS.set(len(manifest.documents()))
        metrics.QUEUE_WAITING.set(alive.llm_queue.waiting())
        if alive.settings.audit_syslog:
            metrics.AUDIT_SIEM_QUEUE.set(queue_depth(alive.audit))
        if (backups := alive.backups.peek()) is not None:
            age = backups.status().age_s
            metrics.BACKUP_AGE.set(float("inf") if age is None else age)

    return read


class BuiltPart(Generic[T]):
    """`use_case.store` and friends: the part of that name, waiting until it is built."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, use_case: Any, owner: type | None = None) -> T:
        return use_case.parts.part(self.name).get()


class UseCase:
    """What every use case shares: the parts (`self.store`, `self.llm`...: each waits until its
    part is built) and the two checks of every request."""

    def __init__(self, settings: KuraSettings | None = None, **given: Any) -> None:
        self.parts = Parts(settings, **given)
        self.settings = self.parts.settings
        self.audit = self.parts.audit
        self.siem = self.parts.siem
        self.llm_queue = self.parts.llm_queue

    embedder = BuiltPart[Embedder]()
    sparse = BuiltPart[SparseEncoder]()
    reranker = BuiltPart["Reranker | None"]()
    store = BuiltPart[ChunkStore]()
    manifest = BuiltPart[Manifest]()
    index = BuiltPart[Index]()
    models = BuiltPart[ModelRegistry]()
    llm = BuiltPart[LLM]()
    ingest_jobs = BuiltPart[IngestJobs]()
    accounts = BuiltPart[Accounts]()
    api_keys = BuiltPart[ApiKeys]()
    feedback_book = BuiltPart[FeedbackBook]()
    conversation_store = BuiltPart[ConversationStore]()

    def _find(self, query: str, groups: Groups, limit: int, conditions: dict[str, Any] | None) -> list[Passage]:
        """Hybrid search (+ rerank when configured) with the ACL filter inside the query."""
        s = self.settings
        with metrics.RETRIEVAL.time():
            return search_passages(
                self.index.store,
                self.embedder,
                query,
                groups,
                limit,
                sparse=self.sparse,
                conditions=conditions,
                fusion=parse_fusion(s.fusion),
                dense_languages=s.embedder_languages,
                reranker=self.reranker,
                rerank_top_n=s.rerank_top_n,
            )

    def _denied(self, user: User, role: str, action: str, **fields: Any) -> None:
        """Raise AccessDenied for a missing role, after auditing the attempt."""
        if role not in user.roles:
            self.audit.append(
                user=user.name, role=",".join(sorted(user.roles)), action="denied", attempted=action,
                **fields, **self._read_facts(user, ()),
            )
            user.require(role, action)

    def _read_facts(self, user: User, doc_ids: Iterable[str]) -> dict[str, Any]:
        """Audit fields of a read or a refusal (issue 27), for the auditor's who-saw, reports and
        alerts: the reader's groups now, from the account store (so a stale session shows), and,
        aligned with the entry's sorted `documents`, each shown document's groups now."""
        try:
            held = self.accounts.get(user.name).read_groups
        except UnknownUser:  # the local operator, a caller no account backs
            held = user.read_groups
        facts: dict[str, Any] = {"reader_groups": list(held)}
        if held != user.read_groups:
            facts["session_groups"] = list(user.read_groups)
        if docs := sorted(set(doc_ids)):
            manifest = self.manifest
            facts["doc_groups"] = [",".join(sorted({g for f in manifest.files_of(d) for g in f.groups})) for d in docs]
        return facts

    def _groups_for(self, user: User, as_admin: bool) -> Groups:
        self._denied(user, ADMIN if as_admin else EMPLOYEE, "search as admin" if as_admin else "search documents")
        return ALL_GROUPS if as_admin else user.read_groups

    def close(self) -> None:
        self.parts.close()
