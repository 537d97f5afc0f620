"""Saved conversations: each person's own history, private, searchable, with retention.

The rules, once, for every door:
- **Only the owner.** Listing, opening, searching, renaming, deleting and exporting act on the
  caller's own conversations. Anybody else's id (an employee's, an admin's, an auditor's, the
  local operator's) gets exactly what an id that does not exist gets: ConversationNotFound
  (HTTP 404); the attempt is audited as a denial naming the owner.
- **Permissions apply when a conversation is reopened.** Every passage a turn's answer was
  given is fetched again with the reader's groups *now*, the ACL inside the Qdrant query (an
  admin's ask over every document is re-checked over every document only while the person is
  still an admin). A turn whose answer was given any passage the reader may no longer read (the
  document was deleted or re-ingested, or the reader lost the group) keeps its question and shows
  none of its answer: no quote, no generated text, no file name of the lost passage; it says that
  a source is no longer available. Why the whole answer: a generated answer may draw on any
  passage of its prompt without citing it, so no sentence of it is safe once one is gone. The
  passages still readable stay listed, fetched anew. Search applies the same rule: an answer
  that could not be shown cannot be found by its words.
- **Continuing** a conversation (`ask(..., conversation_id=...)`) rewrites the follow-up with the
  saved turns as they are reopened now (a withheld answer is not given to the model).
- **Retention**: `KURA_CONVERSATION_RETENTION_DAYS` (0: keep); the server sweeps at start and
  every `KURA_CONVERSATION_SWEEP_MINUTES`, also removing conversations of deleted accounts.
  Deletions, exports and imports are audited; the questions stay in the audit log as before.

Usage:
    answer = service.ask(alice, "How many days of leave?", keep=True)   # starts one
    answer = service.ask(alice, "And for part-timers?", conversation_id=answer.conversation_id)
    for turn in service.conversation(alice, answer.conversation_id).turns: print(turn.shown_text)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from app.identity.users import ADMIN, EMPLOYEE, User, local_operator
from app.service.answer import Answer
from app.service.conversation_export import parse_export, to_json, to_markdown
from app.service.conversation_store import (
    UNAVAILABLE,
    Conversation,
    ConversationNotFound,
    ConversationSummary,
    ReopenedTurn,
    SavedCitation,
    SavedTurn,
    SearchHit,
    title_of,
)
from app.service.parts import UseCase
from app.service.rules import HISTORY_TURNS, IMPORT_CHARS, check_question, check_size
from base.cjk import question_language
from base.text import join_text
from retrieval.context import ContextPassage
from retrieval.passage import Passage
from retrieval.store import ALL_GROUPS, Groups

log = logging.getLogger(__name__)
READER_SCOPE, ADMIN_SCOPE = "reader", "admin"
# What a reopened turn says instead of an answer built on a passage the reader may no longer read.
SOURCE_GONE = {
    "en": "A source of this answer is no longer available to you, so the answer is not shown. "
    "Ask again to get an answer from the documents you may read now.",
    "ja": "この回答の出典の一部は現在閲覧できないため、回答を表示しません。"
    "もう一度質問すると、現在閲覧できる文書から回答します。",
}
SNIPPET_CHARS = 240


@dataclass(frozen=True)
class ConversationMatch:
    summary: ConversationSummary
    field: str  # where the words were found: title | question | answer
    snippet: str


@dataclass
class _Readable:
    """One call's memory of which chunks the reader may read and how each cited passage reads
    (a passage cited by many turns is fetched and named once)."""

    hits: dict[tuple[str, str], Passage | None] = field(default_factory=dict)
    passages: dict[tuple[tuple[str, ...], str], Passage | None] = field(default_factory=dict)


class Conversations(UseCase):
    _shown: Callable[[list[Passage]], list[Passage]]  # Asking's: passages named by their display paths

    # --- what every door calls ------------------------------------------------------------------
    def list_conversations(self, user: User, limit: int = 50, offset: int = 0) -> list[ConversationSummary]:
        """The caller's conversations, the most recently continued first (titles and times only:
        nothing from a document, so nothing to re-check)."""
        if not 0 < limit <= 1000 or offset < 0:
            raise ValueError(f"limit is 1 to 1000 and offset 0 or more, not {limit} and {offset}")
        return self.conversation_store.summaries(user.name, limit, offset)

    def conversation(self, user: User, conversation_id: str) -> Conversation:
        """One of the caller's conversations, every turn re-checked with the caller's groups now."""
        summary = self._own(user, conversation_id, "open a conversation")
        turns = self._reopen(user, self.conversation_store.turns(conversation_id), _Readable())
        shown = [cid for t in turns for c in t.context for cid in c.chunk_ids]
        self.audit.append(
            user=user.name,
            role=_roles(user),
            action="conversation_open",
            conversation=conversation_id,
            chunks=shown,
            documents=sorted({c.passage.doc_id for t in turns for c in t.context}),
            unavailable=sum(not t.available for t in turns),
        )
        return Conversation(summary, turns)

    def search_conversations(self, user: User, query: str, limit: int = 20) -> list[ConversationMatch]:
        """The caller's conversations whose title, questions or shown answers hold the query's
        words (English stems, Japanese words and character runs), best first."""
        check_question(query, "query")
        if not 0 < limit <= 200:
            raise ValueError(f"limit is 1 to 200, not {limit}")
        store = self.conversation_store
        hits = store.search(user.name, query, limit=limit * 5)
        turns = store.turns_by_id([h.turn_id for h in hits if h.turn_id is not None])
        found: dict[str, ConversationMatch] = {}
        readable = _Readable()
        for hit in hits:
            if hit.conversation_id not in found and len(found) < limit:
                match = self._match(user, hit, turns, query, readable)
                if match is not None:
                    found[hit.conversation_id] = match
        self.audit.append(user=user.name, role=_roles(user), action="conversation_search", results=len(found))
        return list(found.values())

    def rename_conversation(self, user: User, conversation_id: str, title: str) -> ConversationSummary:
        if not str(title).strip():
            raise ValueError("the title is empty; type a title")
        self._own(user, conversation_id, "rename a conversation")
        self.conversation_store.rename(conversation_id, title)
        self.audit.append(user=user.name, role=_roles(user), action="conversation_rename", conversation=conversation_id)
        summary = self.conversation_store.summary(conversation_id)
        assert summary is not None
        return summary

    def delete_conversation(self, user: User, conversation_id: str) -> None:
        self._own(user, conversation_id, "delete a conversation")
        self.conversation_store.delete([conversation_id])
        self.audit.append(
            user=user.name, role=_roles(user), action="conversation_delete", conversations=[conversation_id], count=1
        )

    def delete_all_conversations(self, user: User) -> int:
        """Delete every conversation of the caller; returns how many."""
        count = self.conversation_store.delete(self.conversation_store.ids_of(user.name))
        self.audit.append(user=user.name, role=_roles(user), action="conversation_delete", all=True, count=count)
        return count

    def export_conversations(self, user: User, fmt: str = "json") -> str:
        """The caller's whole history as JSON (kura can import it again) or Markdown, each turn
        as it is reopened now (the permission rule applies to exports too)."""
        if fmt not in ("json", "markdown"):
            raise ValueError(f"export format is json or markdown, not {fmt!r}")
        readable = _Readable()
        conversations = [
            Conversation(s, self._reopen(user, self.conversation_store.turns(s.id), readable))
            for s in self.conversation_store.summaries(user.name, limit=None)
        ]
        text = (to_json if fmt == "json" else to_markdown)(user.name, conversations)
        self.audit.append(
            user=user.name,
            role=_roles(user),
            action="conversation_export",
            format=fmt,
            count=len(conversations),
            turns=sum(len(c.turns) for c in conversations),
            documents=sorted({p.passage.doc_id for c in conversations for t in c.turns for p in t.context}),
        )
        return text

    def import_conversations(self, user: User, text: str) -> list[str]:
        """Conversations from a JSON export, added to the caller's own (new ids; the owner is
        the caller, whoever exported them). Their citations are re-checked whenever reopened."""
        store = self.conversation_store
        ids = []
        for title, turns in parse_export(check_size("conversations file", text, IMPORT_CHARS)):
            conversation_id = store.new_id()
            for turn in turns:
                store.add_turn(conversation_id, user.name, turn, title=title)
            ids.append(conversation_id)
        self.audit.append(user=user.name, role=_roles(user), action="conversation_import", count=len(ids))
        return ids

    # --- retention -------------------------------------------------------------------------------
    def sweep_conversations(self, now: float | None = None) -> int:
        """Delete conversations past the retention limit and those whose owner's account is gone
        (the local operator is not an account but a person too: theirs stay). Returns how many."""
        store = self.conversation_store
        days = self.settings.conversation_retention_days
        expired = store.older_than((now or time.time()) - days * 86400) if days > 0 else []
        people = {u.name for u in self.accounts.list()} | {local_operator().name}
        orphaned = [cid for owner in store.owners() - people for cid in store.ids_of(owner)]
        count = store.delete([*expired, *orphaned])
        if count:
            self.audit.append(
                user="retention",
                role="system",
                action="conversation_delete",
                count=count,
                expired=len(expired),
                owner_deleted=len(orphaned),
                retention_days=days,
            )
        return count

    def start_conversation_sweep(self) -> threading.Thread:
        """Sweep now and then every KURA_CONVERSATION_SWEEP_MINUTES, until the service closes."""
        stop = self.__dict__.setdefault("_sweep_stop", threading.Event())

        def run() -> None:
            while True:
                try:
                    self.sweep_conversations()
                except (sqlite3.Error, OSError, LookupError) as exc:  # the next sweep tries again
                    log.warning("conversation sweep failed: %s", exc)
                if stop.wait(self.settings.conversation_sweep_minutes * 60):
                    return

        thread = threading.Thread(target=run, name="kura-conversation-sweep", daemon=True)
        thread.start()
        return thread

    def delete_conversations_of(self, owner: str) -> int:
        """Every conversation of an account being deleted (app/service/people.py), at once."""
        return self.conversation_store.delete(self.conversation_store.ids_of(owner))

    def close(self) -> None:
        stop = self.__dict__.get("_sweep_stop")
        if stop is not None:
            stop.set()
        super().close()

    # --- what the ask use case uses --------------------------------------------------------------
    def kept_history(
        self, user: User, history: Sequence[dict[str, str]], conversation_id: str | None, keep: bool
    ) -> tuple[Sequence[dict[str, str]], str | None]:
        """What an ask reads as its history, and the conversation its answer will be kept in
        (None: not kept). A continued conversation's history is its saved turns, reopened now."""
        if conversation_id is not None:
            if history:
                raise ValueError("send either the history or a conversation_id: a saved conversation is its history")
            return self.conversation_history(user, conversation_id), conversation_id
        return history, self.conversation_store.new_id() if keep else None

    def conversation_history(self, user: User, conversation_id: str) -> list[dict[str, str]]:
        """The saved turns as the follow-up rewriting reads them: reopened now, so an answer
        the asker may no longer read is not in it."""
        self._own(user, conversation_id, "continue a conversation")
        turns = self.conversation_store.turns(conversation_id, last=HISTORY_TURNS // 2)
        messages = []
        for turn in self._reopen(user, turns, _Readable()):
            messages += [{"role": "user", "content": turn.question}, {"role": "assistant", "content": turn.shown_text}]
        return messages

    def keep_turn(self, user: User, conversation_id: str, answer: Answer, as_admin: bool) -> None:
        """Save an answer that has been shown as the conversation's next turn (called when it
        has streamed). A failure to save is logged; the reader already has the answer."""
        cited = {c.number for c in answer.sources()}
        turn = SavedTurn(
            question=answer.question,
            shown_text=answer.shown_text,
            verdict=answer.verdict,
            supported=answer.supported,
            statement=answer.statement,
            quotes=tuple(answer.quote_lines()),
            generated=answer.generated or None,
            withheld=answer.withheld_reason,
            citations=tuple(
                SavedCitation(c.number, c.chunk_ids, c.passage.doc_id, c.passage.location, c.passage.page,
                              c.number in cited)
                for c in answer.context
            ),
            scope=ADMIN_SCOPE if as_admin else READER_SCOPE,
            at=time.time(),
            standalone=answer.standalone_question,
        )
        try:
            answer.saved_turn = self.conversation_store.add_turn(conversation_id, user.name, turn)
        except (sqlite3.Error, OSError, ConversationNotFound) as exc:
            log.error("an answer was not saved to conversation %s: %s", conversation_id, exc)

    # --- the rules ---------------------------------------------------------------------------
    def _own(self, user: User, conversation_id: str, attempted: str) -> ConversationSummary:
        """The caller's conversation, or ConversationNotFound, the same for an id that does not
        exist and for someone else's (the latter audited as a denial naming the owner)."""
        conversation_id = str(conversation_id)
        owner = self.conversation_store.owner_of(conversation_id)
        summary = self.conversation_store.summary(conversation_id) if owner == user.name else None
        if summary is None:
            fields = {"attempted": attempted, "conversation": conversation_id[:40]}
            if owner is None:
                self.audit.append(user=user.name, role=_roles(user), action="conversation_open", outcome="not_found",
                                  **fields)
            else:
                self.audit.append(user=user.name, role=_roles(user), action="denied", owner=owner, **fields)
            raise ConversationNotFound(conversation_id)
        return summary

    def _groups_now(self, user: User, scope: str) -> Groups | None:
        """The groups a saved turn is re-checked with: the reader's own now; every group for an
        admin's ask while the person is still an admin; None (nothing) without the employee role."""
        if scope == ADMIN_SCOPE and ADMIN in user.roles:
            return ALL_GROUPS
        return user.read_groups if EMPLOYEE in user.roles else None

    def _passage_now(self, citation: SavedCitation, groups: Groups | None, readable: _Readable) -> Passage | None:
        """The cited passage as the reader may read it now (every chunk of it), or None."""
        if groups is None:
            return None
        key = str(groups)
        if (citation.chunk_ids, key) not in readable.passages:
            readable.passages[(citation.chunk_ids, key)] = self._fetch_passage(citation, groups, key, readable)
        return readable.passages[(citation.chunk_ids, key)]

    def _fetch_passage(self, citation: SavedCitation, groups: Groups, key: str, readable: _Readable) -> Passage | None:
        parts = []
        for chunk_id in citation.chunk_ids:
            if (chunk_id, key) not in readable.hits:
                hit = self.index.store.chunk(chunk_id, groups)
                readable.hits[(chunk_id, key)] = None if hit is None else Passage.from_hit(hit)
            part = readable.hits[(chunk_id, key)]
            if part is None:
                return None
            parts.append(part)
        if not parts:
            return None
        text = parts[0].text
        for part in parts[1:]:
            text = join_text(text, part.text)
        return self._shown([replace(parts[0], text=text)])[0]

    def _reopen(self, user: User, turns: Sequence[SavedTurn], readable: _Readable) -> list[ReopenedTurn]:
        return [self._reopen_turn(user, turn, readable) for turn in turns]

    def _reopen_turn(self, user: User, turn: SavedTurn, readable: _Readable) -> ReopenedTurn:
        groups = self._groups_now(user, turn.scope)
        context = []
        for c in turn.citations:
            passage = self._passage_now(c, groups, readable)
            if passage is not None:
                context.append(ContextPassage(c.number, passage, c.chunk_ids))
        gone = len(turn.citations) - len(context)
        if gone:
            notice = SOURCE_GONE[question_language(turn.question)]
            return ReopenedTurn(turn.question, turn.at, UNAVAILABLE, notice, (), "", None, notice, context,
                                frozenset(), gone, False, turn.id)
        return ReopenedTurn(
            turn.question, turn.at, turn.verdict, turn.statement, turn.quotes, turn.generated or "", turn.withheld,
            turn.shown_text, context, frozenset(c.number for c in turn.citations if c.cited), 0, turn.supported,
            turn.id,
        )

    def _match(
        self, user: User, hit: SearchHit, turns: dict[int, SavedTurn], query: str, readable: _Readable
    ) -> ConversationMatch | None:
        """A search hit as shown: an answer's words count only if that answer can still be shown."""
        summary = self.conversation_store.summary(hit.conversation_id)
        turn = turns.get(hit.turn_id) if hit.turn_id is not None else None
        if summary is None or (hit.field != "title" and turn is None):
            return None  # deleted meanwhile
        if hit.field == "title":
            return ConversationMatch(summary, "title", summary.title)
        assert turn is not None
        if hit.field == "question":
            return ConversationMatch(summary, "question", title_of(turn.question))
        if not self._reopen_turn(user, turn, readable).available:
            return None
        return ConversationMatch(summary, "answer", snippet(turn.answer_words, query))


def snippet(text: str, query: str) -> str:
    """About SNIPPET_CHARS of `text` around the first place a word of the query occurs."""
    flat = " ".join(text.split())
    lowered = flat.lower()
    starts = [lowered.find(w.lower()) for w in query.split() if w and lowered.find(w.lower()) >= 0]
    start = max(0, min(starts, default=0) - SNIPPET_CHARS // 3)
    piece = flat[start : start + SNIPPET_CHARS]
    return ("…" if start else "") + piece + ("…" if start + SNIPPET_CHARS < len(flat) else "")


def _roles(user: User) -> str:
    return ",".join(sorted(user.roles))
