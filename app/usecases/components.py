"""The composition root: every part kura is built from (store, models, manifest, queues,
accounts, keys, audit log), created once from settings and on first use, so the UI starts before
the models are needed. The use cases beside this module inherit it; nothing here is a door.

Also the two checks every use case shares: `_denied` (a missing role is refused after it is
audited) and `_groups_for` (the groups that go into the Qdrant filter of a read).
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from typing import Any

from app import metrics, offline  # noqa: F401
from app.accounts import Accounts
from app.audit import AuditLog
from app.feedback import FeedbackBook
from app.ingest_jobs import IngestJobs
from app.keys import ApiKeys
from app.settings import KuraSettings
from app.siem import start_forwarding
from app.users import ADMIN, EMPLOYEE, User
from ingest.manifest import Manifest
from ingest.pipeline import Index, recover
from models.embedder import Embedder, load_embedder
from models.llm import LLM, load_llm
from models.queue import LLMQueue
from models.registry import ModelRegistry, resolve_embedder_path, resolve_llm_path
from retrieval.rerank import Reranker
from retrieval.search import Passage, parse_fusion, search_passages
from retrieval.sparse import SparseEncoder
from retrieval.store import ALL_GROUPS, ChunkStore, EdgeStore, Groups

log = logging.getLogger(__name__)


class Components:
    def __init__(self, settings: KuraSettings | None = None) -> None:
        self.settings = settings or KuraSettings()
        self.settings.ensure_dirs()
        self.audit = AuditLog(self.settings.audit_path)
        self.siem = start_forwarding(self.settings, self.audit)  # None unless KURA_AUDIT_SYSLOG
        # Re-entrant: `index` builds `store` and `manifest` under it. Each of them checks again
        # inside the lock, so two threads (a reader and the ingest writer) never open two.
        self._init_lock = threading.RLock()
        metrics.watch_service(self)
        if self.settings.metrics_port is not None:  # the UI process, a worker: whoever serves
            try:
                metrics.start_metrics_server(self.settings.metrics_port, self.settings.metrics_host)
            except OSError as exc:
                log.warning("metrics endpoint not started: %s", exc)

    @cached_property
    def embedder(self) -> Embedder:
        embedder = load_embedder(
            resolve_embedder_path(self.settings.embedder_path),
            self.settings.embedder_backend,
            cache_dir=self.settings.model_cache_dir,
        )
        # One setting says which languages get dense vectors, for chunks (ingest) and for
        # questions (search) alike: a Japanese site with a multilingual model sets "en,ja".
        embedder.languages = tuple(self.settings.embedder_languages)  # type: ignore[attr-defined]
        return embedder

    @cached_property
    def store(self) -> ChunkStore:
        with self._init_lock:
            if "store" in self.__dict__:
                return self.__dict__["store"]
            return self._open_store()

    def _open_store(self) -> ChunkStore:
        if self.settings.qdrant_url:
            from retrieval.server_store import ServerStore

            s = self.settings
            return ServerStore(
                s.qdrant_url,
                s.qdrant_api_key,
                s.collection,
                self.embedder.dim,
                shards=s.qdrant_shards,
                replicas=s.qdrant_replicas,
            )
        return EdgeStore(self.settings.store_dir, self.embedder.dim)

    @cached_property
    def sparse(self) -> SparseEncoder:
        return SparseEncoder(self.settings.sparse_japanese)

    @cached_property
    def reranker(self) -> Reranker | None:
        path = self.settings.reranker_path
        return metrics.TimedReranker(Reranker(path)) if path else None  # type: ignore[return-value]

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

    @cached_property
    def manifest(self) -> Manifest:
        with self._init_lock:
            return self.__dict__.get("manifest") or Manifest(self.settings.manifest_path)

    @cached_property
    def index(self) -> Index:
        with self._init_lock:
            if "index" in self.__dict__:  # another thread opened it while this one waited
                return self.__dict__["index"]
            index = Index(
                store=self.store,
                manifest=self.manifest,
                embedder=self.embedder,
                encode_sparse=self.sparse.encode_document,
                chunk_tokens=self.settings.chunk_tokens,
                overlap_tokens=self.settings.chunk_overlap_tokens,
                max_file_bytes=int(self.settings.max_file_mb * 1024 * 1024),
            )
            # Once per process, before its ingest writer takes a job (never inside a job).
            repaired = recover(index)
            if repaired:
                log.warning("finished %d document swaps interrupted by a crash", repaired)
            return index

    @cached_property
    def llm(self) -> LLM:
        s = self.settings
        path = None if s.llm_url else resolve_llm_path(s.llm_path, self.models)
        return load_llm(
            path, s.llm_url, s.llm_context_tokens, s.llm_threads, s.llm_gpu_layers, s.llm_model, s.llm_api_key
        )

    @cached_property
    def models(self) -> ModelRegistry:
        return ModelRegistry(self.settings.models_manifest_path)

    @cached_property
    def llm_queue(self) -> LLMQueue:
        """The one line in front of the one model: fair across users, bounded, cancellable."""
        with self._init_lock:
            return LLMQueue(self.llm, self.settings.llm_queue_limit)

    @cached_property
    def ingest_jobs(self) -> IngestJobs:
        with self._init_lock:
            if "ingest_jobs" in self.__dict__:
                return self.__dict__["ingest_jobs"]
            s = self.settings
            return IngestJobs(s.data_dir, self.audit, open_index=lambda: self.index, nice=s.ingest_nice)

    @cached_property
    def accounts(self) -> Accounts:
        """User accounts (local, LDAP, OIDC) and sessions (app/accounts.py), audited into the same log."""
        return Accounts.from_settings(self.settings, audit=self.audit)

    @cached_property
    def api_keys(self) -> ApiKeys:
        with self._init_lock:
            return self.__dict__.get("api_keys") or ApiKeys(self.settings.data_dir / "api_keys.sqlite3")

    @cached_property
    def feedback_book(self) -> FeedbackBook:
        return FeedbackBook(self.settings.data_dir / "feedback.sqlite3")

    def _denied(self, user: User, role: str, action: str, **fields: Any) -> None:
        """Raise AccessDenied for a missing role, after auditing the attempt."""
        if role not in user.roles:
            self.audit.append(
                user=user.name, role=",".join(sorted(user.roles)), action="denied", attempted=action, **fields
            )
            user.require(role, action)

    def _groups_for(self, user: User, as_admin: bool) -> Groups:
        self._denied(user, ADMIN if as_admin else EMPLOYEE, "search as admin" if as_admin else "search documents")
        return ALL_GROUPS if as_admin else user.read_groups

    def close(self) -> None:
        if "ingest_jobs" in self.__dict__:
            self.ingest_jobs.close()  # the writer stops between two files first
        if "api_keys" in self.__dict__:
            self.api_keys.close()
        if "store" in self.__dict__:
            self.store.close()
        if "manifest" in self.__dict__:
            self.manifest.close()
        if "feedback_book" in self.__dict__:
            self.feedback_book.close()
