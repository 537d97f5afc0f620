"""An answer as it streams from the model: its tokens, its context passages and which of them
the text cites. Built by the ask use case (app/service/asking.py), read by every door."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from models.citations import CitationCheck, check_citations
from models.prompts import question_language
from retrieval.context import ContextPassage

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

    def abandon(self) -> None:
        """The reader left before the answer started: give up its place in the model's line
        (safe from any thread; an answer already generating is stopped by closing its reader)."""
        leave = getattr(self._stream, "leave", None)
        if callable(leave):
            leave()

    def queue_position(self) -> int:
        """How many answers the model serves before this one starts (0: it started or ended)."""
        position = getattr(self._stream, "position", None)
        return int(position()) if callable(position) else 0
