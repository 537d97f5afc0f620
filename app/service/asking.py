"""Ask and search: the employee's use case. Every read carries the caller's groups inside
the Qdrant query (`_groups_for`), and every question, answer, preview, "show in context" and
export is audited under the caller's name, refused ones included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from app.identity.users import ADMIN, EMPLOYEE, AccessDenied, User
from app.platform import metrics
from app.service.answer import ABSTAINED, ANSWERED, NOTHING, UNCERTAIN, Answer, verdict_of
from app.service.conversations import Conversations
from app.service.feedback import Feedback
from app.service.jobs import DocumentNotFound
from app.service.rules import TURN_CHARS, check_history, check_question, check_size
from models.citations import content_words
from models.prompts import (
    PromptPassage,
    build_messages,
    condense_messages,
    fallback_standalone,
)
from models.queue import QueuedStream, QueueFull
from retrieval.context import ContextPassage, RelevanceFloor, answer_context
from retrieval.evidence import Evidence, find_evidence
from retrieval.passage import Passage
from retrieval.store import Groups
from retrieval.support import SupportVerdict, check_support

log = logging.getLogger(__name__)
TASK_TOKENS = 160  # a title or three follow-up questions; a task never needs a long answer


class Asking(Conversations):  # an ask may continue a saved conversation (app/service/conversations.py)
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
        check_question(query, "query")
        metrics.QUERIES.labels(kind="search").inc()
        passages = self._shown(self._find(query, groups, limit or self.settings.search_top_k, conditions))
        log.info("search", extra={"user": user.name, "passages": len(passages)})
        self.audit.append(
            user=user.name,
            role=ADMIN if as_admin else EMPLOYEE,
            action="search",
            query=query,
            chunks=[p.chunk_id for p in passages],
            documents=sorted({p.doc_id for p in passages}),
            **self._read_facts(user, (p.doc_id for p in passages)),  # issue 27: who saw what
        )
        return passages

    def ask(
        self,
        user: User,
        question: str,
        as_admin: bool = False,
        conditions: dict[str, Any] | None = None,
        history: Sequence[dict[str, str]] = (),
        conversation_id: str | None = None,
        keep: bool = False,
    ) -> Answer:
        """`history`: the conversation so far ({"role": "user"|"assistant", "content": ...}); a
        follow-up is condensed into a standalone question first. Raises QueueFull when busy.
        `keep` saves it as a new conversation, `conversation_id` continues one (conversations.py)."""
        groups = self._groups_for(user, as_admin)
        check_question(question)
        history, conversation_id = self.kept_history(user, history, conversation_id, keep)  # issue 26
        history = check_history(history)
        metrics.QUERIES.labels(kind="ask").inc()
        standalone = self.standalone_question(user, history, question) if history else question
        role = ADMIN if as_admin else EMPLOYEE
        # A place in the model's line on arrival (a refused question was shown nothing), so a
        # slower retrieval cannot let a later asker overtake.
        place = self._take_place(user, role, question) if self.settings.answer_generation else None
        try:
            context = self._context_for(standalone, groups, conditions)
            evidence, verdict = self._evidence(standalone, context)
            stream = self._start_answer(place, standalone, context, verdict)
        except BaseException:
            if place is not None:
                place.close()
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
                verdict=verdict,
                **self._read_facts(user, (c.passage.doc_id for c in context)),  # issue 27: who saw what
            )
        except BaseException:  # not on record (e.g. AuditKeyMissing): not answered either
            if stream is not None:
                stream.close()
            raise
        if verdict in (NOTHING, ABSTAINED):
            metrics.REFUSALS.inc()
        return Answer(
            question,
            context,
            stream,
            evidence=evidence,
            verdict=verdict,
            _on_done=partial(self._answered, user, role, question, conversation_id),
            _check=partial(self._check_support, context),
            standalone_question=standalone, conversation_id=conversation_id,
        )

    def _evidence(self, question: str, context: list[ContextPassage]) -> tuple[Evidence | None, str]:
        """What the passages say about the question, and how far they answer it (answer.py)."""
        if not context:
            return None, NOTHING
        with metrics.EVIDENCE.time():
            evidence = find_evidence(question, [c.passage for c in context], self.sparse, min_score=0.0)
        return evidence, verdict_of(evidence, self.settings.evidence_min_score, self.settings.evidence_hedge_score)

    def _check_support(self, context: list[ContextPassage], generated: str) -> SupportVerdict:
        """The support check of a generated answer; the file names the prompt gave the passages
        are not claims (a model echoes "[1] (handbook.pdf p.3)"), so they are not checked."""
        for c in context:
            generated = generated.replace(c.passage.location, "").replace(c.passage.shown_path or "\0", "")
        return check_support(generated, [c.passage.text for c in context], self.sparse)

    def _context_for(self, question: str, groups: Groups, conditions: dict[str, Any] | None) -> list[ContextPassage]:
        """The numbered passages an answer may draw on: searched, above the relevance floor,
        within the model's context budget, named by their display paths."""
        s = self.settings
        passages = self._find(question, groups, s.search_top_k, conditions)
        floor = RelevanceFloor(s.min_term_coverage, s.min_dense_score, s.min_rerank_score)
        budget = s.llm_context_tokens - s.llm_max_answer_tokens - 256
        return answer_context(
            question, self._shown(passages), floor, self.sparse, budget, s.context_passages, s.min_relevance
        )

    def _start_answer(
        self, place: QueuedStream | None, question: str, context: list[ContextPassage], verdict: str
    ) -> QueuedStream | None:
        """Give the model its prompt when the passages may answer the question, or give up the
        place (the next asker need not wait for this one). No place: generation is off."""
        if place is None:
            return None
        if verdict not in (ANSWERED, UNCERTAIN):
            place.close()
            return None
        s = self.settings
        self.parts.llm.get()  # the model this answer needs: loaded now (once) if it is not yet
        passages = [PromptPassage(c.number, c.passage.location, c.passage.text) for c in context]
        return place.start(build_messages(question, passages), s.llm_max_answer_tokens, s.llm_timeout_s)

    def _answered(self, user: User, role: str, question: str, conversation_id: str | None, answer: Answer) -> None:
        """When an answer has streamed: its timings, a log line, the audit entry of what it said
        and, when it is kept, the conversation's new turn."""
        if not answer.found_nothing:
            metrics.record_answer(answer.first_token_s, answer.total_s, answer.token_count)
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
            answer=answer.shown_text,
            generated=answer.text,
            verdict=answer.verdict,
            supported=answer.supported,
            chunks=[cid for c in answer.context for cid in c.chunk_ids],
            documents=sorted({c.passage.doc_id for c in answer.context}),
            cited=[c.passage.location for c in answer.citations()] if answer.context else [],
        )
        if conversation_id is not None:
            self.keep_turn(user, conversation_id, answer, as_admin=role == ADMIN)

    def _shown(self, passages: list[Passage]) -> list[Passage]:
        """The passages as a reader sees them: each file named by its display path (relative to
        the folder it was ingested from), never by the server's absolute path."""
        return [replace(p, shown_path=self.shown_path(p)) for p in passages]

    def shown_path(self, passage: Passage) -> str:
        """A passage named by its file relative to the folder it was ingested from."""
        if passage.shown_path:
            return passage.shown_path
        record = self.manifest.file(passage.source_path)
        if record is not None and passage.source_path.startswith(record.root.rstrip("/") + "/"):
            return str(Path(passage.source_path).relative_to(record.root))
        return Path(passage.source_path).name or passage.title

    def run_task(self, user: User, prompt: str) -> Iterator[str]:
        """A chat front end's own background prompt (a chat title, follow-up suggestions, tags):
        the model alone, no documents and no retrieval, so nothing a reader may not read can
        reach it. Audited as an `llm_task` with its size, not as a question about the documents."""
        self._denied(user, EMPLOYEE, "run a model task")
        check_size("task prompt", prompt, TURN_CHARS)
        self.audit.append(user=user.name, role=EMPLOYEE, action="llm_task", chars=len(prompt))
        if not self.settings.answer_generation:
            return iter(())
        self.parts.llm.get()
        messages = [{"role": "user", "content": prompt}]
        return self.llm_queue.submit(user.name, messages, TASK_TOKENS, min(60.0, self.settings.llm_timeout_s))

    def _take_place(self, user: User, role: str, question: str) -> QueuedStream:
        try:
            return self.llm_queue.reserve(user.name)
        except QueueFull as exc:
            self.audit.append(
                user=user.name, role=role, action="query", query=question, outcome="refused", reason=str(exc)
            )
            raise

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

    def passage(self, user: User, chunk_id: str, as_admin: bool = False) -> Passage:
        """One chunk for a preview, fetched again with the caller's current groups in the query."""
        groups = self._groups_for(user, as_admin)
        hit = self.index.store.chunk(chunk_id, groups)
        role = ADMIN if as_admin else EMPLOYEE
        if hit is None:
            self.audit.append(user=user.name, role=role, action="passage_view", chunks=[chunk_id], outcome="refused")
            raise DocumentNotFound(f"no passage {chunk_id} among the documents you may read")
        self.audit.append(user=user.name, role=role, action="passage_view", chunks=[chunk_id], documents=[hit.doc_id],
                          **self._read_facts(user, [hit.doc_id]))  # issue 27: who saw what
        return self._shown([Passage.from_hit(hit)])[0]

    def passage_neighbors(self, user: User, passage: Passage, radius: int = 1) -> list[Passage]:
        """The chunks around a cited passage, to read it in context; only if the user may read it."""
        groups = self._groups_for(user, as_admin=False)
        hits = self.index.store.chunks_of(passage.doc_id, groups)
        near = self._shown([Passage.from_hit(h) for h in hits])
        low, high = passage.chunk_index - radius, passage.chunk_index + radius
        shown = sorted((p for p in near if low <= p.chunk_index <= high), key=lambda p: p.chunk_index)
        self.audit.append(
            user=user.name,
            role=EMPLOYEE,
            action="passage_context",
            documents=[passage.doc_id],
            chunks=[p.chunk_id for p in shown],
            outcome="shown" if shown else "refused",
            **self._read_facts(user, [passage.doc_id] if shown else []),  # issue 27: who saw what
        )
        return shown

    def document_chunks(self, user: User, doc_id: str, as_admin: bool = False) -> list[Passage]:
        """Every chunk of a document, in order, only if the caller's groups may read it."""
        groups = self._groups_for(user, as_admin)
        hits = self.index.store.chunks_of(doc_id, groups)
        role = ADMIN if as_admin else EMPLOYEE
        if not hits:
            self.audit.append(user=user.name, role=role, action="document_view", documents=[doc_id], outcome="refused")
            raise DocumentNotFound(f"no document {doc_id} among the documents you may read")
        self.audit.append(
            user=user.name, role=role, action="document_view", documents=[doc_id], chunks=[h.id for h in hits],
            **self._read_facts(user, [doc_id]),  # issue 27: who saw what
        )
        return self._shown([Passage.from_hit(h) for h in hits])

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
        lines = [f"# {answer.question}", "", answer.shown_text, ""]
        if answer.context:
            lines += ["## Sources", ""] + [f"[{c.number}] {c.passage.location}" for c in answer.citations()]
        self.audit.append(
            user=user.name,
            role=role,
            action="export",
            query=answer.question,
            answer=answer.shown_text,
            chunks=chunk_ids,
            documents=sorted({c.passage.doc_id for c in answer.context}),
            **self._read_facts(user, (c.passage.doc_id for c in answer.context)),  # issue 27: who saw what
        )
        return "\n".join(lines) + "\n"

    def record_feedback(self, user: User, answer: Answer, helpful: bool, comment: str = "") -> None:
        """An employee's verdict on an answer, kept for the admin and audited."""
        user.require(EMPLOYEE, "give feedback")
        cited = [c.passage.location for c in answer.citations()] if answer.context else []
        self.feedback_book.add(user.name, answer.question, answer.shown_text, helpful, cited, comment)
        self.audit.append(user=user.name, role=EMPLOYEE, action="feedback", query=answer.question, helpful=helpful)

    def feedback(self, user: User, limit: int = 200) -> list[Feedback]:
        user.require(ADMIN, "read answer feedback")
        return self.feedback_book.recent(limit)
