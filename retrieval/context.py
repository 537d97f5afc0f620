"""Choose and number the passages an answer may draw on, within the LLM's token budget.

Adjacent chunks of one document are merged (they overlap, so the merge also drops the repeated
sentences), duplicates are removed, and each kept passage gets the number the answer cites.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ingest.chunk import estimate_tokens, join_text
from retrieval.search import Passage


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
            if group[0].doc_id == passage.doc_id and any(abs(p.chunk_index - passage.chunk_index) == 1 for p in group):
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
            page_end=max((p.page_end or p.page for p in ordered if p.page is not None), default=None),
            chunk_index=ordered[0].chunk_index,
        )
        used += cost
        out.append(ContextPassage(len(out) + 1, merged, tuple(p.chunk_id for p in ordered)))
    return out
