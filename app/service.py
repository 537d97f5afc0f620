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
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from app import offline  # noqa: F401
from app.audit import AuditLog
from app.settings import KuraSettings
from app.users import ADMIN, AUDITOR, EMPLOYEE, User
from ingest.manifest import DocumentRecord, Manifest
from ingest.pipeline import Index, IngestProgress, IngestReport, recover, sync_folder
from models.embedder import Embedder, load_embedder
from models.llm import LlamaCppLLM
from models.prompts import PromptPassage, build_messages, question_language
from models.registry import resolve_embedder_path, resolve_llm_path
from retrieval.context import ContextPassage, assemble_context
from retrieval.search import Passage, search_passages
from retrieval.store import ALL_GROUPS, ChunkStore, EdgeStore, Groups

log = logging.getLogger(__name__)

NO_DOCUMENTS_EN = "No relevant documents were found for this question in the documents you may read."
NO_DOCUMENTS_JA = "閲覧可能な文書の中に、この質問に関連する資料は見つかりませんでした。"
_CITATION = re.compile(r"\[(\d{1,2})\]")


@dataclass
class Answer:
    """A streamed answer. Iterate `tokens()` once; `text` and `citations()` are complete after."""

    question: str
    context: list[ContextPassage]
    _stream: Iterator[str] | None
    text: str = ""
    first_token_s: float | None = None
    total_s: float | None = None
    _on_done: Callable[[Answer], None] | None = field(default=None, repr=False)

    @property
    def found_nothing(self) -> bool:
        return not self.context

    def tokens(self) -> Iterator[str]:
        started = time.monotonic()
        if self._stream is None:
            self.text = NO_DOCUMENTS_JA if question_language(self.question) == "ja" else NO_DOCUMENTS_EN
            yield self.text
        else:
            for token in self._stream:
                if self.first_token_s is None:
                    self.first_token_s = time.monotonic() - started
                self.text += token
                yield token
        self.total_s = time.monotonic() - started
        if self._on_done:
            self._on_done(self)

    def cited_numbers(self) -> list[int]:
        numbers = {int(n) for n in _CITATION.findall(self.text)}
        return sorted(n for n in numbers if 1 <= n <= len(self.context))

    def citations(self) -> list[ContextPassage]:
        """The passages the answer cites by [n]; all context passages if it cites none validly."""
        cited = set(self.cited_numbers())
        return [c for c in self.context if c.number in cited] or list(self.context)


class KuraService:
    def __init__(self, settings: KuraSettings | None = None) -> None:
        self.settings = settings or KuraSettings()
        self.settings.ensure_dirs()
        self.audit = AuditLog(self.settings.audit_path)
        self._init_lock = threading.Lock()

    # --- components, loaded on first use (the UI starts before the models are needed) ---
    @cached_property
    def embedder(self) -> Embedder:
        return load_embedder(resolve_embedder_path(self.settings.embedder_path), self.settings.embedder_backend)

    @cached_property
    def store(self) -> ChunkStore:
        if self.settings.qdrant_url:
            from retrieval.server_store import ServerStore

            return ServerStore(self.settings.qdrant_url, self.settings.qdrant_api_key, self.settings.collection, self.embedder.dim)
        return EdgeStore(self.settings.store_dir, self.embedder.dim)

    @cached_property
    def manifest(self) -> Manifest:
        return Manifest(self.settings.manifest_path)

    @cached_property
    def index(self) -> Index:
        with self._init_lock:
            index = Index(
                store=self.store,
                manifest=self.manifest,
                embedder=self.embedder,
                chunk_tokens=self.settings.chunk_tokens,
                overlap_tokens=self.settings.chunk_overlap_tokens,
                max_file_bytes=int(self.settings.max_file_mb * 1024 * 1024),
            )
            repaired = recover(index)
            if repaired:
                log.warning("finished %d document swaps interrupted by a crash", repaired)
            return index

    @cached_property
    def llm(self) -> LlamaCppLLM:
        s = self.settings
        return LlamaCppLLM(resolve_llm_path(s.llm_path), s.llm_context_tokens, s.llm_threads, s.llm_gpu_layers)

    # --- the doors ---------------------------------------------------------------------
    def ingest(
        self,
        user: User,
        folder: Path,
        groups: Sequence[str],
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> IngestReport:
        user.require(ADMIN, "ingest documents")
        report = sync_folder(folder, groups, self.index, on_progress)
        self.audit.append(
            user=user.name, role=ADMIN, action="ingest", folder=str(folder), groups=list(groups),
            ingested=report.count("ingested"), failed=len(report.failures), removed=report.count("removed"),
        )
        return report

    def _groups_for(self, user: User, as_admin: bool) -> Groups:
        if as_admin:
            user.require(ADMIN, "search as admin")
            return ALL_GROUPS
        user.require(EMPLOYEE, "search documents")
        return user.read_groups

    def search(self, user: User, query: str, limit: int | None = None, as_admin: bool = False) -> list[Passage]:
        groups = self._groups_for(user, as_admin)
        passages = search_passages(self.index.store, self.embedder, query, groups, limit or self.settings.search_top_k)
        self.audit.append(
            user=user.name, role=ADMIN if as_admin else EMPLOYEE, action="search", query=query,
            chunks=[p.chunk_id for p in passages], documents=sorted({p.doc_id for p in passages}),
        )
        return passages

    def ask(self, user: User, question: str, as_admin: bool = False) -> Answer:
        groups = self._groups_for(user, as_admin)
        passages = search_passages(self.index.store, self.embedder, question, groups, self.settings.search_top_k)
        passages = [p for p in passages if p.score >= self.settings.min_relevance]
        budget = self.settings.llm_context_tokens - self.settings.llm_max_answer_tokens - 256
        context = assemble_context(passages, budget, self.settings.context_passages)
        role = ADMIN if as_admin else EMPLOYEE

        def record(answer: Answer) -> None:
            self.audit.append(
                user=user.name, role=role, action="ask", query=question, answer=answer.text,
                chunks=[cid for c in answer.context for cid in c.chunk_ids],
                documents=sorted({c.passage.doc_id for c in answer.context}),
                cited=[c.passage.location for c in answer.citations()] if answer.context else [],
            )

        if not context:
            return Answer(question, [], None, _on_done=record)
        messages = build_messages(
            question, [PromptPassage(c.number, c.passage.location, c.passage.text) for c in context]
        )
        stream = self.llm.stream(messages, self.settings.llm_max_answer_tokens, self.settings.llm_timeout_s)
        return Answer(question, context, stream, _on_done=record)

    def documents(self, user: User) -> list[DocumentRecord]:
        user.require(ADMIN, "list all documents")
        return self.manifest.documents()

    def delete(self, user: User, doc_id: str) -> None:
        user.require(ADMIN, "delete documents")
        from ingest.pipeline import remove_path

        files = self.manifest.files_of(doc_id)
        if not files and self.manifest.document(doc_id) is None:
            raise KeyError(f"no document {doc_id}; list documents with `kura docs`")
        for record in files:
            remove_path(self.index, record.path)
        self.audit.append(user=user.name, role=ADMIN, action="delete", documents=[doc_id])

    def audit_entries(self, user: User) -> list[dict]:
        user.require(AUDITOR, "read the audit log")
        self.audit.append(user=user.name, role=AUDITOR, action="audit_view")
        return list(self.audit.entries())

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "manifest" in self.__dict__:
            self.manifest.close()
