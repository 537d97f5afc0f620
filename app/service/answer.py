"""An answer as a reader receives it: evidence first, then (maybe) a generated answer.

1. What the documents say: the evidence quote (retrieval/evidence.py), one or two sentences
   quoted verbatim from the passages, each with its [n] citation. It is ready the moment the
   search is: no model runs for it, so it reaches the reader before any place in the model's line.
2. A generated answer, streamed by the model and then checked sentence by sentence against the
   passages (retrieval/support.py). It is shown only when every sentence is supported; otherwise
   it is withheld, with the reason.

The verdict says how far the documents answer the question:
- `answered`: a passage answers it; the quote is shown (and `supported` is true);
- `uncertain`: the closest passage is shown, flagged: the documents may not answer it;
- `abstained`: no passage answers it; said plainly, the closest passages listed as related reading;
- `nothing`: nothing the reader may read matched at all.

Built by the ask use case (app/service/asking.py), read by every door.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from base.cjk import question_language
from retrieval.context import ContextPassage
from retrieval.evidence import MIN_SCORE_EN, MIN_SCORE_JA, Evidence
from retrieval.support import SupportVerdict

ANSWERED, UNCERTAIN, ABSTAINED, NOTHING = "answered", "uncertain", "abstained", "nothing"
_CITATION = re.compile(r"\[(\d{1,2})\]")

# What the reader is told, in the question's language.
WORDS = {
    "en": {
        NOTHING: "No relevant documents were found for this question in the documents you may read.",
        ABSTAINED: "None of the documents you may read answers this question. The closest passages are listed "
        "as related reading.",
        UNCERTAIN: "Your documents may not answer this question directly. The closest passage says:",
        ANSWERED: "Your documents say:",
        "withheld": "A generated answer was withheld: it says things the passages do not support",
        "generated": "Generated answer (checked against the passages):",
    },
    "ja": {
        NOTHING: "閲覧可能な文書の中に、この質問に関連する資料は見つかりませんでした。",
        ABSTAINED: "閲覧可能な文書の中に、この質問に答える記述は見つかりませんでした。"
        "近い箇所を関連資料として示します。",
        UNCERTAIN: "文書はこの質問に直接は答えていない可能性があります。最も近い箇所:",
        ANSWERED: "文書の記述:",
        "withheld": "生成された回答は、資料で裏付けられない内容を含むため表示していません",
        "generated": "生成された回答（資料と照合済み）:",
    },
}
# Kept for callers that name the refusal text directly.
NO_DOCUMENTS_EN, NO_DOCUMENTS_JA = WORDS["en"][NOTHING], WORDS["ja"][NOTHING]


def verdict_of(evidence: Evidence, answered_at: float | None = None, hedge_at: float = 0.2) -> str:
    """How far the passages answer the question, from the quote's answer chance: at or above
    `answered_at` (default: the operating point measured for the question's language) answered,
    down to `hedge_at` uncertain (the closest passage shown, flagged), below it abstained."""
    if answered_at is None:
        answered_at = MIN_SCORE_JA if evidence.language == "ja" else MIN_SCORE_EN
    if evidence.quotes and evidence.score >= answered_at:
        return ANSWERED
    if evidence.quotes and evidence.score >= min(hedge_at, answered_at):
        return UNCERTAIN
    return ABSTAINED


@dataclass
class Answer:
    """A question's answer. `evidence` is complete at once; iterate `tokens()` once for the
    generated text, after which `support`, `generated` and `withheld_reason` are set."""

    question: str
    context: list[ContextPassage]
    _stream: Iterator[str] | None
    evidence: Evidence | None = None
    verdict: str = NOTHING
    text: str = ""  # the model's raw text, complete after tokens()
    support: SupportVerdict | None = None
    first_token_s: float | None = None
    token_count: int = 0
    total_s: float | None = None
    _on_done: Callable[[Answer], None] | None = field(default=None, repr=False)
    _check: Callable[[str], SupportVerdict] | None = field(default=None, repr=False)
    standalone_question: str | None = None  # the follow-up rewritten with its history, used for retrieval
    conversation_id: str | None = None  # the saved conversation this answer is kept in (issue 26), if any
    saved_turn: int | None = None  # its turn's id there, once saved (when the answer has streamed)

    @property
    def language(self) -> str:
        return question_language(self.question)

    @property
    def found_nothing(self) -> bool:
        return not self.context

    @property
    def statement(self) -> str:
        """What the reader is told first: the documents say / may not answer / do not answer."""
        return WORDS[self.language][self.verdict]

    def tokens(self) -> Iterator[str]:
        """The model's tokens as they come (none when no answer is generated); the support
        check runs when they end. Doors collect them and show `generated`, never the raw text."""
        started = time.monotonic()
        if self._stream is not None:
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
            if self._check is not None and self.text.strip():
                self.support = self._check(self.text)
        self.total_s = time.monotonic() - started
        if self._on_done:
            self._on_done(self)

    def finish(self) -> str:
        """Run the generation to its end (if any) and return the generated answer as shown."""
        for _ in self.tokens():
            pass
        return self.generated

    @property
    def generated(self) -> str:
        """The generated answer when every sentence of it is supported, else ''."""
        return self.text.strip() if self.support is not None and self.support.supported else ""

    @property
    def withheld_reason(self) -> str | None:
        """Why the generated answer is not shown (None when it is shown or there was none)."""
        if self.support is None or self.support.supported:
            return None
        missing = [m for s in self.support.unsupported for m in s.missing][:6]
        detail = f" ({', '.join(missing)})" if missing else ""
        return WORDS[self.language]["withheld"] + detail

    @property
    def supported(self) -> bool:
        """The documents answer the question and everything shown is quoted from them or backed by them."""
        return self.verdict == ANSWERED

    @property
    def unsupported(self) -> bool:
        return bool(self.context) and not self.supported

    def quote_numbers(self) -> list[int]:
        """The [n] of each quoted sentence, in reading order."""
        if self.evidence is None or self.verdict not in (ANSWERED, UNCERTAIN):
            return []
        by_chunk = {c.passage.chunk_id: c.number for c in self.context}
        return [by_chunk[q.passage.chunk_id] for q in self.evidence.quotes if q.passage.chunk_id in by_chunk]

    def quote_lines(self) -> list[tuple[str, int]]:
        """(quoted text, citation number) for each quoted sentence."""
        numbers = self.quote_numbers()
        if not numbers or self.evidence is None:
            return []
        return list(zip((q.text.strip() for q in self.evidence.quotes), numbers, strict=False))

    @property
    def shown_text(self) -> str:
        """Everything the reader is shown, as plain text with [n] citations: the statement, the
        quote, and the generated answer when it passed the check."""
        parts = [self.statement]
        parts += [f"“{text}” [{n}]" for text, n in self.quote_lines()]
        if self.generated:
            parts += [WORDS[self.language]["generated"], self.generated]
        elif self.withheld_reason:
            parts.append(self.withheld_reason + ".")
        return "\n".join(parts)

    def cited_numbers(self) -> list[int]:
        """Passages the reader is pointed to: the quote's, and those the shown generated answer cites."""
        numbers = set(self.quote_numbers())
        numbers |= {int(n) for n in _CITATION.findall(self.generated)}
        return sorted(n for n in numbers if 1 <= n <= len(self.context))

    def sources(self) -> list[ContextPassage]:
        """The passages the shown answer cites (empty when it abstained)."""
        cited = set(self.cited_numbers())
        return [c for c in self.context if c.number in cited]

    def citations(self) -> list[ContextPassage]:
        """The cited passages; all context passages (related reading) when nothing is cited."""
        return self.sources() or list(self.context)

    def also_retrieved(self) -> list[ContextPassage]:
        """The passages found but not cited: related reading."""
        cited = set(self.cited_numbers())
        return [c for c in self.context if c.number not in cited]

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
