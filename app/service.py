"""The one door the UI, the CLI and any API use. Every method checks the caller's role, every
read filters by the caller's groups inside the Qdrant query, and every action is audited.

Usage:
    service = KuraService(KuraSettings())
    report = service.ingest(admin, Path("/srv/docs"), groups=("everyone",))
    answer = service.ask(alice, "How many days of leave?")
    for token in answer.tokens(): print(token, end="")
    for citation in answer.citations(): print(citation.location)
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from app import metrics, offline  # noqa: F401
from app.accounts import Accounts, UnknownUser
from app.audit import AuditLog, ChainProblem
from app.backup import BackupError, BackupSummary, backup_service
from app.feedback import Feedback, FeedbackBook
from app.ingest_jobs import DocumentNotFound, IngestJobs, report_from_dict
from app.keys import ADMIN_SCOPE, AUDIT_SCOPE, ApiKeyNotFound, ApiKeyRecord, ApiKeys, InvalidApiKey, check_scope
from app.keys import READ as READ_SCOPE
from app.settings import KuraSettings
from app.siem import start_forwarding
from app.users import ADMIN, AUDITOR, EMPLOYEE, AccessDenied, User, check_group_name
from ingest.errors import DiskFull
from ingest.jobs import Job, WatchedFolder
from ingest.manifest import DocumentRecord, FileRecord, Manifest
from ingest.pipeline import Index, IngestProgress, IngestReport, recover
from models.citations import CitationCheck, check_citations, content_words
from models.embedder import Embedder, load_embedder
from models.llm import LLM, load_llm
from models.prompts import (
    PromptPassage,
    build_messages,
    condense_messages,
    fallback_standalone,
    question_language,
)
from models.queue import LLMQueue, QueueFull
from models.registry import ModelEntry, ModelRegistry, resolve_embedder_path, resolve_llm_path
from retrieval.context import ContextPassage, RelevanceFloor, above_floor, assemble_context
from retrieval.rerank import Reranker
from retrieval.search import Passage, parse_fusion, search_passages
from retrieval.sparse import SparseEncoder
from retrieval.store import ALL_GROUPS, ChunkStore, EdgeStore, Groups

log = logging.getLogger(__name__)

NO_DOCUMENTS_EN = "No relevant documents were found for this question in the documents you may read."
NO_DOCUMENTS_JA = "閲覧可能な文書の中に、この質問に関連する資料は見つかりませんでした。"
_CITATION = re.compile(r"\[(\d{1,2})\]")


def _check_free_space(data_dir: Path, min_free_mb: float) -> None:
    free_mb = shutil.disk_usage(data_dir).free / 1e6
    if free_mb < min_free_mb:
        raise DiskFull(
            f"only {free_mb:.0f} MB free on the disk holding {data_dir} (kura needs {min_free_mb:.0f} MB to "
            "ingest safely): free space there or move KURA_DATA_DIR to a larger disk, then run the ingest again"
        )


__all__ = ["Answer", "DocumentNotFound", "KuraService"]  # DocumentNotFound lives in app/ingest_jobs.py


@dataclass
class Answer:
    """A streamed answer. Iterate `tokens()` once; `text` and `citations()` are complete after."""

    question: str
    context: list[ContextPassage]
    _stream: Iterator[str] | None
    text: str = ""
    first_token_s: float | None = None
    token_count: int = 0
    total_s: float | None = None
    _on_done: Callable[[Answer], None] | None = field(default=None, repr=False)
    standalone_question: str | None = None  # the follow-up rewritten with its history, used for retrieval

    @property
    def found_nothing(self) -> bool:
        return not self.context

    def tokens(self) -> Iterator[str]:
        started = time.monotonic()
        if self._stream is None:
            self.text = NO_DOCUMENTS_JA if question_language(self.question) == "ja" else NO_DOCUMENTS_EN
            yield self.text
        else:
            try:
                for token in self._stream:
                    if self.first_token_s is None:
                        self.first_token_s = time.monotonic() - started
                    self.token_count += 1
                    self.text += token
                    yield token
            finally:  # the reader left early: stop generating, give the model to the next asker
                close = getattr(self._stream, "close", None)
                if close:
                    close()
        self.total_s = time.monotonic() - started
        if self._on_done:
            self._on_done(self)

    @property
    def check(self) -> CitationCheck:
        """Which [n] citations exist and are supported by their passage (complete after tokens())."""
        return check_citations(self.text, {c.number: c.passage.text for c in self.context})

    def cited_numbers(self) -> list[int]:
        numbers = {int(n) for n in _CITATION.findall(self.text)}
        return sorted(n for n in numbers if 1 <= n <= len(self.context))

    def citations(self) -> list[ContextPassage]:
        """The passages the answer cites by [n]; all context passages if it cites none validly."""
        cited = set(self.cited_numbers())
        return [c for c in self.context if c.number in cited] or list(self.context)

    def sources(self) -> list[ContextPassage]:
        """Only the passages the answer cites by an existing [n] (empty if it cites none)."""
        cited = set(self.cited_numbers())
        return [c for c in self.context if c.number in cited]

    def also_retrieved(self) -> list[ContextPassage]:
        """The passages the model was given but did not cite."""
        cited = set(self.cited_numbers())
        return [c for c in self.context if c.number not in cited]

    @property
    def unsupported(self) -> bool:
        """Passages were found, but no sentence of the answer cites one that supports it."""
        return bool(self.context) and self.check.unsupported

    def queue_position(self) -> int:
        """How many answers the model serves before this one starts (0: it started or ended)."""
        position = getattr(self._stream, "position", None)
        return int(position()) if callable(position) else 0


class KuraService:
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

    # --- components, loaded on first use (the UI starts before the models are needed) ---
    @cached_property
    def embedder(self) -> Embedder:
        return load_embedder(
            resolve_embedder_path(self.settings.embedder_path),
            self.settings.embedder_backend,
            cache_dir=self.settings.model_cache_dir,
        )

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

    def use_model(self, user: User, name: str) -> ModelEntry:
        """Switch the answering LLM to the manifest's model `name` without a restart (hot swap):
        the new model loads beside the old, then takes over between two answers."""
        self._denied(user, ADMIN, "switch the LLM", model=name)
        entry = self.models.use(name)  # verifies checksum, GGUF and chat template first
        s = self.settings
        if s.llm_path:
            log.warning("KURA_LLM_PATH=%s is set and wins over the manifest at the next start", s.llm_path)
        new = load_llm(Path(entry.path), None, s.llm_context_tokens, s.llm_threads, s.llm_gpu_layers)
        if "llm_queue" in self.__dict__:
            self.llm_queue.swap(new)
        self.__dict__["llm"] = new
        self.audit.append(user=user.name, role=ADMIN, action="use_model", model=entry.name, sha256=entry.sha256)
        return entry

    def standalone_question(self, user: User, history: Sequence[dict[str, str]], question: str) -> str:
        """A follow-up rewritten so retrieval understands it without the conversation."""
        previous = [m["content"] for m in history if m["role"] == "user"]
        if not previous:
            return question
        stream = self.llm_queue.submit(
            user.name, condense_messages(history, question), 64, min(30.0, self.settings.llm_timeout_s)
        )
        try:
            rewrite = "".join(stream).strip().splitlines()[0].strip() if stream else ""
        except IndexError:
            rewrite = ""
        finally:
            stream.close()
        # Keep the model's rewrite only if it reads like a question about the earlier topic.
        topical = content_words(rewrite) & content_words(" ".join(previous[-1:]))
        if rewrite and "[" not in rewrite and len(rewrite) <= 3 * len(question) + 200 and topical:
            return rewrite
        return fallback_standalone(history, question)

    # --- the doors ---------------------------------------------------------------------
    def ingest(
        self,
        user: User,
        folder: Path,
        groups: Sequence[str],
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> IngestReport:
        """Submit a folder sync as a job, then follow it to its end (calling `on_progress` from
        this thread). Raises JobCancelled if an admin cancels it meanwhile."""
        job = self.submit_ingest(user, folder, groups)
        return report_from_dict(self.ingest_jobs.wait(job.id, on_progress).report)

    # --- ingestion jobs (app/ingest_jobs.py: the queue and the one writer) -----------------
    @cached_property
    def ingest_jobs(self) -> IngestJobs:
        with self._init_lock:
            if "ingest_jobs" in self.__dict__:
                return self.__dict__["ingest_jobs"]
            s = self.settings
            return IngestJobs(s.data_dir, self.audit, open_index=lambda: self.index, nice=s.ingest_nice)

    def start_writer(self) -> None:
        """Start this process's ingest writer now (the server does, so watched folders run and
        interrupted jobs resume without waiting for the first upload)."""
        self.ingest_jobs.start()

    def submit_ingest(self, user: User, folder: Path, groups: Sequence[str]) -> Job:
        """Queue a folder sync; returns at once with the job (follow it with `job()`)."""
        self._denied(user, ADMIN, "ingest documents", folder=str(folder))
        _check_free_space(self.settings.data_dir, self.settings.min_free_mb)
        root = Path(folder).expanduser().resolve()
        if not root.exists():
            raise FileNotFoundError(f"{folder} does not exist")
        return self.ingest_jobs.submit(user, "ingest", {"folder": str(root), "groups": list(groups)})

    def job(self, user: User, job_id: int) -> Job:
        user.require(ADMIN, "see ingestion jobs")
        job = self.ingest_jobs.queue.get(job_id)
        if job is None:
            from app.ingest_jobs import JobNotFound

            raise JobNotFound(f"no job {job_id}; list jobs with `kura jobs list`")
        return job

    def jobs(self, user: User, limit: int = 200) -> list[Job]:
        """Every job, newest first (an admin sees all of them)."""
        user.require(ADMIN, "see ingestion jobs")
        return self.ingest_jobs.queue.list(limit)

    def cancel_job(self, user: User, job_id: int) -> Job:
        self._denied(user, ADMIN, "cancel ingestion jobs", job=job_id)
        return self.ingest_jobs.cancel(user, job_id)

    def watch_folder(self, user: User, folder: Path, groups: Sequence[str], every_s: float) -> WatchedFolder:
        """Re-sync `folder` as a job every `every_s` seconds (adds, replaces and removes what changed)."""
        self._denied(user, ADMIN, "watch folders", folder=str(folder))
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder; give a folder that exists")
        chosen = sorted({check_group_name(g) for g in groups})
        if not chosen:
            raise ValueError("give at least one group; use 'everyone' to let every user read it")
        watched = self.ingest_jobs.queue.watch(str(root), tuple(chosen), every_s, user.name)
        self.audit.append(
            user=user.name, role=ADMIN, action="folder_watch", folder=str(root), groups=chosen, every_s=every_s
        )
        self.ingest_jobs.wake()  # a writer in this process picks it up now, one elsewhere within 0.5 s
        return watched

    def unwatch_folder(self, user: User, folder: Path) -> None:
        self._denied(user, ADMIN, "watch folders", folder=str(folder))
        root = str(Path(folder).expanduser().resolve())
        if not self.ingest_jobs.queue.unwatch(root):
            raise FileNotFoundError(f"{folder} is not a watched folder; list them with `kura folders list`")
        self.audit.append(user=user.name, role=ADMIN, action="folder_unwatch", folder=root)

    def watched_folders(self, user: User) -> list[WatchedFolder]:
        user.require(ADMIN, "see watched folders")
        return self.ingest_jobs.queue.watched()

    @cached_property
    def accounts(self) -> Accounts:
        """User accounts (local, LDAP, OIDC) and sessions (app/accounts.py), audited into the same log."""
        return Accounts.from_settings(self.settings, audit=self.audit)

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

    def search(
        self,
        user: User,
        query: str,
        limit: int | None = None,
        as_admin: bool = False,
        conditions: dict[str, Any] | None = None,
    ) -> list[Passage]:
        """`conditions` narrows the search by payload field, e.g. {"file_type": ["pdf"]};
        the ACL filter always applies."""
        groups = self._groups_for(user, as_admin)
        metrics.QUERIES.labels(kind="search").inc()
        passages = self._find(query, groups, limit or self.settings.search_top_k, conditions)
        log.info("search", extra={"user": user.name, "passages": len(passages)})
        self.audit.append(
            user=user.name,
            role=ADMIN if as_admin else EMPLOYEE,
            action="search",
            query=query,
            chunks=[p.chunk_id for p in passages],
            documents=sorted({p.doc_id for p in passages}),
        )
        return passages

    def ask(
        self,
        user: User,
        question: str,
        as_admin: bool = False,
        conditions: dict[str, Any] | None = None,
        history: Sequence[dict[str, str]] = (),
    ) -> Answer:
        """`history`: the conversation so far ({"role": "user"|"assistant", "content": ...}); a
        follow-up is condensed into a standalone question first. Raises QueueFull when busy."""
        groups = self._groups_for(user, as_admin)
        metrics.QUERIES.labels(kind="ask").inc()
        standalone = self.standalone_question(user, history, question) if history else question
        passages = self._find(standalone, groups, self.settings.search_top_k, conditions)
        s = self.settings
        floor = RelevanceFloor(s.min_term_coverage, s.min_dense_score, s.min_rerank_score)
        passages = [p for p in above_floor(standalone, passages, floor, self.sparse) if p.score >= s.min_relevance]
        budget = self.settings.llm_context_tokens - self.settings.llm_max_answer_tokens - 256
        context = assemble_context(passages, budget, self.settings.context_passages)
        role = ADMIN if as_admin else EMPLOYEE
        stream = None
        if context:  # a place in the model's line first: a refused question was shown nothing
            messages = build_messages(
                standalone, [PromptPassage(c.number, c.passage.location, c.passage.text) for c in context]
            )
            try:
                stream = self.llm_queue.submit(
                    user.name, messages, self.settings.llm_max_answer_tokens, self.settings.llm_timeout_s
                )
            except QueueFull as exc:
                self.audit.append(
                    user=user.name, role=role, action="query", query=question, outcome="refused", reason=str(exc)
                )
                raise
        # Audited before the model runs: the question and what it was shown are on record even
        # if the reader leaves before the answer is complete.
        try:
            self.audit.append(
                user=user.name,
                role=role,
                action="query",
                query=question,
                standalone=standalone,
                chunks=[cid for c in context for cid in c.chunk_ids],
                documents=sorted({c.passage.doc_id for c in context}),
            )
        except BaseException:  # not on record (e.g. AuditKeyMissing): not answered either
            if stream is not None:
                stream.close()
            raise

        def record(answer: Answer) -> None:
            metrics.record_answer(answer)
            log.info(
                "answer",
                extra={
                    "user": user.name,
                    "passages": len(answer.context),
                    "first_token_s": answer.first_token_s,
                    "total_s": answer.total_s,
                },
            )
            self.audit.append(
                user=user.name,
                role=role,
                action="answer",
                query=question,
                answer=answer.text,
                chunks=[cid for c in answer.context for cid in c.chunk_ids],
                documents=sorted({c.passage.doc_id for c in answer.context}),
                cited=[c.passage.location for c in answer.citations()] if answer.context else [],
            )

        if not context:
            metrics.REFUSALS.inc()
            return Answer(question, [], None, _on_done=record, standalone_question=standalone)
        return Answer(question, context, stream, _on_done=record, standalone_question=standalone)

    def documents(self, user: User) -> list[DocumentRecord]:
        self._denied(user, ADMIN, "list all documents")
        return self.manifest.documents()

    def delete(self, user: User, doc_id: str) -> None:
        """A job like every other change to the index (the writer audits it)."""
        self._denied(user, ADMIN, "delete documents", documents=[doc_id])
        job = self.ingest_jobs.submit(user, "delete", {"doc_id": doc_id})
        self.ingest_jobs.wait(job.id)

    def audit_entries(self, user: User) -> list[dict]:
        user.require(AUDITOR, "read the audit log")
        self.audit.append(user=user.name, role=AUDITOR, action="audit_view")
        return list(self.audit.entries())

    def audited_documents(self, user: User, doc_ids: Sequence[str]) -> dict[str, list[FileRecord]]:
        """For the auditor's view: the paths and groups of documents named in audit entries
        (a deleted document maps to no paths). Auditors and admins only."""
        if AUDITOR not in user.roles:
            self._denied(user, ADMIN, "resolve audited documents")
        return {doc_id: self.manifest.files_of(doc_id) for doc_id in dict.fromkeys(doc_ids)}

    # --- what the admin and auditor pages need ------------------------------------------
    def document_files(self, user: User, doc_id: str) -> list[FileRecord]:
        """The paths that hold a document, each with its ACL groups and ingest time."""
        user.require(ADMIN, "list document paths")
        return self.manifest.files_of(doc_id)

    def set_document_groups(self, user: User, doc_id: str, groups: Sequence[str]) -> int:
        """Change which groups may read a document (every path of it), without re-embedding."""
        return self.set_acl(user, doc_id, groups)

    def reingest(
        self, user: User, doc_id: str, on_progress: Callable[[IngestProgress], None] | None = None
    ) -> list[IngestReport]:
        """Sync again every folder a document came from (picks up edits; unchanged files are skipped)."""
        self._denied(user, ADMIN, "re-ingest documents", documents=[doc_id])
        files = self.manifest.files_of(doc_id)
        if not files:
            raise DocumentNotFound(f"no document {doc_id}; list documents with `kura docs`")
        roots: dict[str, tuple[str, ...]] = {}
        for f in files:
            roots.setdefault(f.root, f.groups)
        # One job per folder, each queued behind whatever is running (app/ingest_jobs.py).
        return [self.ingest(user, Path(root), groups, on_progress) for root, groups in roots.items()]

    def passage_neighbors(self, user: User, passage: Passage, radius: int = 1) -> list[Passage]:
        """The chunks around a cited passage, to read it in context; only if the user may read it."""
        groups = self._groups_for(user, as_admin=False)
        hits = self.index.store.chunks_of(passage.doc_id, groups)
        near = [Passage.from_hit(h) for h in hits]
        low, high = passage.chunk_index - radius, passage.chunk_index + radius
        shown = sorted((p for p in near if low <= p.chunk_index <= high), key=lambda p: p.chunk_index)
        self.audit.append(
            user=user.name,
            role=EMPLOYEE,
            action="passage_context",
            documents=[passage.doc_id],
            chunks=[p.chunk_id for p in shown],
            outcome="shown" if shown else "refused",
        )
        return shown

    @cached_property
    def feedback_book(self) -> FeedbackBook:
        return FeedbackBook(self.settings.data_dir / "feedback.sqlite3")

    def record_feedback(self, user: User, answer: Answer, helpful: bool, comment: str = "") -> None:
        """An employee's verdict on an answer, kept for the admin and audited."""
        user.require(EMPLOYEE, "give feedback")
        cited = [c.passage.location for c in answer.citations()] if answer.context else []
        self.feedback_book.add(user.name, answer.question, answer.text, helpful, cited, comment)
        self.audit.append(user=user.name, role=EMPLOYEE, action="feedback", query=answer.question, helpful=helpful)

    def feedback(self, user: User, limit: int = 200) -> list[Feedback]:
        user.require(ADMIN, "read answer feedback")
        return self.feedback_book.recent(limit)

    def verify_audit(self, user: User) -> list[ChainProblem]:
        user.require(AUDITOR, "verify the audit log")
        self.audit.append(user=user.name, role=AUDITOR, action="audit_verify")
        return self.audit.verify()

    def health(self, user: User) -> dict[str, Any]:
        """Counts and sizes for the admin's system page (no model is loaded for this)."""
        self._denied(user, ADMIN, "see system health")
        data = self.settings.data_dir
        usage = shutil.disk_usage(data)
        store_bytes = sum(p.stat().st_size for p in self.settings.store_dir.rglob("*") if p.is_file())
        return {
            "data_dir": str(data),
            "documents": len(self.manifest.documents()),
            "files": len(self.manifest.all_files()),
            "chunks": self.store.count() if not self.settings.qdrant_url else None,
            "store_bytes": store_bytes,
            "disk_free_bytes": usage.free,
            "disk_total_bytes": usage.total,
            "audit_entries": sum(1 for _ in self.audit.entries()),
        }

    def model_status(self, user: User) -> dict[str, Any]:
        """Which LLM and embedder answer, and where the LLM runs (loads them if needed)."""
        user.require(ADMIN, "see model status")
        runtime = self.llm.runtime
        return {
            "llm": self.llm.name,  # after a hot swap, the model that answers now
            "embedder": self.embedder.name,
            "device": runtime.device,
            "reason": runtime.reason,
            "threads": runtime.threads,
            "threads_batch": runtime.threads_batch,
            "gpu_layers": runtime.gpu_layers,
        }

    def backup(self, user: User, dest: Path) -> BackupSummary:
        """A consistent backup written by the process that owns the store (the embedded store
        allows one opener, so `kura backup` from a shell cannot run beside the UI)."""
        self._denied(user, ADMIN, "back up", dest=str(dest))
        try:
            summary = backup_service(self, dest)
        except BackupError as exc:
            self.audit.append(
                user=user.name, role=ADMIN, action="backup", dest=str(dest), outcome="refused", reason=str(exc)
            )
            raise
        # Appended after the copy: the backup's audit chain ends just before this entry.
        self.audit.append(
            user=user.name,
            role=ADMIN,
            action="backup",
            dest=str(dest),
            files=summary.files,
            bytes=summary.bytes,
            chunks=summary.chunks,
        )
        return summary

    # --- permissions, previews and exports (issue 5: access control) ----------------------
    def set_acl(self, user: User, target: str, groups: Sequence[str]) -> int:
        """Change which groups may read a document id, an ingested file, or every file under a
        folder, without re-embedding (a payload update on every chunk). Returns files changed."""
        self._denied(user, ADMIN, "change document permissions", target=target)
        chosen = sorted({check_group_name(g) for g in groups})
        if not chosen:
            raise ValueError("give at least one group; use 'everyone' to let every user read it")
        # A job, so it cannot interleave with a sync of the same files; the writer audits it.
        # A path is resolved here: the writer may run in another process, in another directory.
        path = str(Path(target).expanduser().resolve())
        job = self.ingest_jobs.submit(user, "acl", {"target": target, "path": path, "groups": chosen})
        return int(self.ingest_jobs.wait(job.id).report["changed"])

    def passage(self, user: User, chunk_id: str, as_admin: bool = False) -> Passage:
        """One chunk for a preview, fetched again with the caller's current groups in the query."""
        groups = self._groups_for(user, as_admin)
        hit = self.index.store.chunk(chunk_id, groups)
        role = ADMIN if as_admin else EMPLOYEE
        if hit is None:
            self.audit.append(user=user.name, role=role, action="passage_view", chunks=[chunk_id], outcome="refused")
            raise DocumentNotFound(f"no passage {chunk_id} among the documents you may read")
        self.audit.append(user=user.name, role=role, action="passage_view", chunks=[chunk_id], documents=[hit.doc_id])
        return Passage.from_hit(hit)

    def document_chunks(self, user: User, doc_id: str, as_admin: bool = False) -> list[Passage]:
        """Every chunk of a document, in order, only if the caller's groups may read it."""
        groups = self._groups_for(user, as_admin)
        hits = self.index.store.chunks_of(doc_id, groups)
        role = ADMIN if as_admin else EMPLOYEE
        if not hits:
            self.audit.append(user=user.name, role=role, action="document_view", documents=[doc_id], outcome="refused")
            raise DocumentNotFound(f"no document {doc_id} among the documents you may read")
        self.audit.append(
            user=user.name, role=role, action="document_view", documents=[doc_id], chunks=[h.id for h in hits]
        )
        return [Passage.from_hit(h) for h in hits]

    def export_answer(self, user: User, answer: Answer, as_admin: bool = False) -> str:
        """The answer and its citations as Markdown. Every cited chunk is re-checked against the
        caller's groups now: if one is no longer readable, nothing is exported."""
        groups = self._groups_for(user, as_admin)
        role = ADMIN if as_admin else EMPLOYEE
        chunk_ids = [cid for c in answer.context for cid in c.chunk_ids]
        unreadable = [cid for cid in chunk_ids if self.index.store.chunk(cid, groups) is None]
        if unreadable:
            self.audit.append(
                user=user.name,
                role=role,
                action="export",
                query=answer.question,
                chunks=chunk_ids,
                outcome="refused",
                unreadable=unreadable,
            )
            raise AccessDenied(
                f"{user.name} may no longer read {len(unreadable)} of the passages this answer used; ask again"
            )
        lines = [f"# {answer.question}", "", answer.text.strip(), ""]
        if answer.context:
            lines += ["## Sources", ""] + [f"[{c.number}] {c.passage.location}" for c in answer.citations()]
        self.audit.append(
            user=user.name,
            role=role,
            action="export",
            query=answer.question,
            answer=answer.text,
            chunks=chunk_ids,
            documents=sorted({c.passage.doc_id for c in answer.context}),
        )
        return "\n".join(lines) + "\n"

    # --- personal API keys and the HTTP door (app/keys.py, app/api/) -----------------------
    @cached_property
    def api_keys(self) -> ApiKeys:
        with self._init_lock:
            return self.__dict__.get("api_keys") or ApiKeys(self.settings.data_dir / "api_keys.sqlite3")

    def create_api_key(
        self, user: User, scope: str, name: str = "", expires_days: float | None = None, owner: str | None = None
    ) -> tuple[ApiKeyRecord, str]:
        """A key acting as `owner` (default: the caller). Only an admin (or the local operator)
        creates keys for another account; the key still carries only that account's rights."""
        owner = owner or user.name
        check_scope(scope)
        if owner != user.name:
            self._denied(user, ADMIN, "create API keys for another account", owner=owner)
        account = self.accounts.get(owner)  # UnknownUser: an account must own every key
        needed = {ADMIN_SCOPE: ADMIN, AUDIT_SCOPE: AUDITOR}.get(scope)
        if self.accounts.is_disabled(owner) or (needed and needed not in account.roles):
            self.audit.append(
                user=user.name, role=",".join(sorted(user.roles)), action="denied", attempted="create API key",
                owner=owner, scope=scope,
            )
            raise AccessDenied(
                f"{owner} cannot hold a {scope!r} key: it is disabled or lacks the {needed} role; "
                "give the account the role first, or create a 'read' key"
            )
        record, key = self.api_keys.create(owner, scope, name, expires_days, by=user.name)
        self.audit.append(
            user=user.name, role=",".join(sorted(user.roles)), action="api_key_create", key_id=record.id,
            owner=owner, scope=scope, expires=record.expires, for_other_account=owner != user.name,
        )
        return record, key

    def list_api_keys(self, user: User, everyone: bool = False) -> list[ApiKeyRecord]:
        """The caller's own keys; with `everyone`, every key (admins only)."""
        if everyone:
            self._denied(user, ADMIN, "list every API key")
            return self.api_keys.list()
        return self.api_keys.list(user.name)

    def revoke_api_key(self, user: User, key_id: str) -> ApiKeyRecord:
        """Owners revoke their own keys; admins revoke anyone's. Another user's key id is
        answered like an unknown one (audited), so ids cannot be probed."""
        try:
            record = self.api_keys.get(key_id)
        except ApiKeyNotFound:
            record = None
        if record is None or (record.owner != user.name and ADMIN not in user.roles):
            self.audit.append(
                user=user.name, role=",".join(sorted(user.roles)), action="api_key_revoke", key_id=key_id,
                outcome="refused" if record else "not_found",
            )
            raise ApiKeyNotFound(f"no API key {key_id!r} among yours; list them with `kura keys list`")
        revoked = self.api_keys.revoke(key_id, by=user.name)
        self.audit.append(
            user=user.name, role=",".join(sorted(user.roles)), action="api_key_revoke", key_id=key_id,
            owner=record.owner,
        )
        return revoked

    def api_caller(self, key: str, scope: str) -> tuple[User, ApiKeyRecord]:
        """The account a key acts for, read again now (roles, groups, disabled), if the key is
        active and its scope covers `scope`. Raises InvalidApiKey or AccessDenied (audited)."""
        record = self.api_keys.resolve(key)
        try:
            owner = self.accounts.get(record.owner)
            disabled = self.accounts.is_disabled(record.owner)
        except UnknownUser:
            owner, disabled = None, True
        if owner is None or disabled:
            self.audit.append(
                user=record.owner, role="", action="api_key_refused", key_id=record.id, reason="owner disabled"
            )
            raise InvalidApiKey("the account that owns this API key is disabled or deleted")
        if scope != record.scope and not (scope == READ_SCOPE and record.scope in (ADMIN_SCOPE, AUDIT_SCOPE)):
            self.audit.append(
                user=owner.name, role=",".join(sorted(owner.roles)), action="denied", attempted=f"{scope} call",
                key_id=record.id, key_scope=record.scope,
            )
            raise AccessDenied(
                f"this API key has the {record.scope!r} scope and this call needs {scope!r}: "
                f"create a key with `kura keys create --scope {scope}`"
            )
        return owner, record

    def list_users(self, user: User) -> list[tuple[User, bool]]:
        """Every account with its disabled flag, for admins."""
        self._denied(user, ADMIN, "list users")
        return [(u, self.accounts.is_disabled(u.name)) for u in self.accounts.list()]

    def add_user(
        self, user: User, name: str, password: str, roles: Sequence[str], groups: Sequence[str]
    ) -> User:
        self._denied(user, ADMIN, "add users", target=name)
        return self.accounts.add(name, password, roles, groups, must_change_password=True, by=user.name)

    def set_user_groups(self, user: User, name: str, groups: Sequence[str]) -> User:
        self._denied(user, ADMIN, "change a user's groups", target=name)
        self.accounts.set_groups(name, groups, by=user.name)
        return self.accounts.get(name)

    def set_user_disabled(self, user: User, name: str, disabled: bool) -> None:
        self._denied(user, ADMIN, "disable or enable users", target=name)
        (self.accounts.disable if disabled else self.accounts.enable)(name, by=user.name)

    def search_audit(
        self, user: User, who: str | None = None, action: str | None = None,
        since: str | None = None, until: str | None = None, limit: int = 1000,
    ) -> list[dict]:
        """The newest `limit` matching audit entries (archive included), for auditors."""
        self._denied(user, AUDITOR, "read the audit log")
        found = list(self.audit.select(who, action, since, until))[-limit:]
        self.audit.append(
            user=user.name, role=AUDITOR, action="audit_view",
            filters={"user": who, "action": action, "since": since, "until": until}, entries=len(found),
        )
        return found

    def export_audit(
        self, user: User, dest: Path, fmt: str = "jsonl", who: str | None = None, action: str | None = None,
        since: str | None = None, until: str | None = None,
    ) -> int:
        self._denied(user, AUDITOR, "export the audit log")
        count = self.audit.export(dest, fmt, who, action, since, until)
        self.audit.append(
            user=user.name, role=AUDITOR, action="audit_export", format=fmt, entries=count,
            filters={"user": who, "action": action, "since": since, "until": until},
        )
        return count

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
