"""Choose and number the passages an answer may draw on, within the LLM's token budget.

First a relevance floor (`above_floor`): a hybrid score is a fused rank, so "how good is the
best passage" is judged on raw signals — the cross-encoder's score when one ran, otherwise the
query/passage cosine or the share of the question's terms the passage contains. When nothing
clears it, kura says it found nothing instead of asking the LLM to answer from noise.
Then adjacent chunks of one document are merged (they overlap, so the merge also drops the
repeated sentences), duplicates are removed, and each kept passage gets the number the answer cites.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from base.text import estimate_tokens, join_text
from retrieval.passage import Passage
from retrieval.sparse import SparseEncoder


@dataclass(frozen=True)
class RelevanceFloor:
    """Minimum raw signal a passage needs to reach the LLM (see module docstring)."""

    min_term_coverage: float = 0.5
    min_dense_score: float = 0.45
    min_rerank_score: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.min_term_coverage <= 1:
            raise ValueError(
                f"min_term_coverage is a share in [0, 1], not {self.min_term_coverage}"
            )
        if not -1 <= self.min_dense_score <= 1:
            raise ValueError(f"min_dense_score is a cosine in [-1, 1], not {self.min_dense_score}")


def above_floor(
    query: str, passages: Sequence[Passage], floor: RelevanceFloor, sparse: SparseEncoder | None
) -> list[Passage]:
    """The passages (order kept) that clear `floor`. With a reranker score and a rerank floor,
    that score decides; otherwise a passage passes on its cosine or on its term coverage."""
    kept = []
    for p in passages:
        if p.rerank_score is not None and floor.min_rerank_score is not None:
            ok = p.rerank_score >= floor.min_rerank_score
        else:
            signals = []
            if p.dense_score is not None:
                signals.append(p.dense_score >= floor.min_dense_score)
            if sparse is not None:
                signals.append(sparse.term_coverage(query, p.text) >= floor.min_term_coverage)
            ok = any(signals) if signals else True
        if ok:
            kept.append(p)
    return kept


@dataclass(frozen=True)
class ContextPassage:
    number: int
    passage: Passage
    chunk_ids: tuple[str, ...]


def _merge_text(left: str, right: str) -> str:
    """Join two overlapping chunks, dropping the longest suffix of `left` that `right` repeats."""
    for size in range(min(len(left), len(right)), 20, -1):
        if left.endswith(right[:size]):
            return left + right[size:]
    return join_text(left, right)


def assemble_context(
    passages: Sequence[Passage],
    budget_tokens: int,
    max_passages: int = 5,
    count_tokens: Callable[[str], int] = estimate_tokens,
) -> list[ContextPassage]:
    """Keep the best passages that fit `budget_tokens`, merged and numbered from 1."""
    groups: list[list[Passage]] = []
    seen_text: set[str] = set()
    for passage in passages:  # best first
        key = " ".join(passage.text.split())
        if key in seen_text:
            continue
        seen_text.add(key)
        for group in groups:
            if group[0].doc_id == passage.doc_id and any(
                abs(p.chunk_index - passage.chunk_index) == 1 for p in group
            ):
                group.append(passage)
                break
        else:
            groups.append([passage])

    out: list[ContextPassage] = []
    used = 0
    for group in groups:
        if len(out) >= max_passages:
            break
        ordered = sorted(group, key=lambda p: p.chunk_index)
        text = ordered[0].text
        for nxt in ordered[1:]:
            text = _merge_text(text, nxt.text)
        cost = count_tokens(text)
        if used + cost > budget_tokens:
            continue
        pages = [p.page for p in ordered if p.page is not None]
        merged = replace(
            max(group, key=lambda p: p.score),
            text=text,
            page=min(pages, default=None),
            page_end=max(
                (p.page_end or p.page for p in ordered if p.page is not None), default=None
            ),
            chunk_index=ordered[0].chunk_index,
        )
        used += cost
        out.append(ContextPassage(len(out) + 1, merged, tuple(p.chunk_id for p in ordered)))
    return out


def answer_context(
    query: str,
    passages: Sequence[Passage],
    floor: RelevanceFloor,
    sparse: SparseEncoder | None,
    budget_tokens: int,
    max_passages: int,
    min_score: float = 0.0,
) -> list[ContextPassage]:
    """What an answer may draw on: the found passages above the relevance floor (and the fused
    `min_score`), merged and numbered within the token budget. The ask use case and
    `kura eval answers` both call this, so the benchmark measures what readers get."""
    kept = [p for p in above_floor(query, passages, floor, sparse) if p.score >= min_score]
    return assemble_context(kept, budget_tokens, max_passages)
