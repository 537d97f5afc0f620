"""Cut parsed blocks into token-bounded chunks that respect sections, sentences and languages.

- A chunk never crosses a heading: the heading path travels with it in `heading_path`.
- Text is cut at sentence ends (。！？ for Japanese, . ! ? for English); a sentence longer
  than the budget is cut hard as a last resort.
- A CJK character counts as one token, a Latin word as ~1.3 (wordpieces), so Japanese and
  English chunks hold a similar amount of meaning.
- Tables are cut between rows, never inside one; continuation chunks repeat the header row.
- Consecutive chunks of a section overlap by up to `overlap_tokens` of whole sentences.

Usage:
    pieces = chunk_blocks(parsed.blocks, max_tokens=200, overlap_tokens=30)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from base.cjk import CJK
from base.text import estimate_tokens, join_text, split_sentences
from ingest.blocks import Block

_CJK = CJK
# A block whose last sentence ends like this is complete; otherwise the next line continues it.
_SENTENCE_CLOSED = re.compile(r"[。！？!?.:;：；」』）)]$")


@dataclass(frozen=True)
class ChunkPiece:
    """The text of one chunk and where it sits; ids and ACLs are added by the pipeline."""

    text: str
    heading_path: tuple[str, ...]
    page: int | None
    page_end: int | None
    kind: str = "text"

    def embedding_text(self) -> str:
        """What the embedder and the sparse encoder see: the section title helps both."""
        heading = " > ".join(self.heading_path)
        return f"{heading}\n{self.text}" if heading else self.text


@dataclass
class _Unit:
    text: str
    page: int | None
    tokens: int


def _hard_split(sentence: str, max_tokens: int) -> list[str]:
    """Cut an over-long sentence into pieces under the budget (by words, or by characters)."""
    if estimate_tokens(sentence) <= max_tokens:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for token in re.findall(rf"[{_CJK}]|[^\s{_CJK}]+\s*|\s+", sentence):
        candidate = current + token
        if current and estimate_tokens(candidate) > max_tokens:
            pieces.append(current.strip())
            current = token
        else:
            current = candidate
    if current.strip():
        pieces.append(current.strip())
    return pieces


def chunk_blocks(
    blocks: list[Block], max_tokens: int = 200, overlap_tokens: int = 30
) -> list[ChunkPiece]:
    if max_tokens < 16:
        raise ValueError(f"max_tokens must be at least 16, not {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens // 2:
        raise ValueError(f"overlap_tokens must be in [0, {max_tokens // 2}), not {overlap_tokens}")

    pieces: list[ChunkPiece] = []
    headings: list[tuple[int, str]] = []  # (level, title) of the current section
    section: list[_Unit] = []

    carry: _Unit | None = None  # an unfinished sentence waiting for the next line (PDF lines)

    def add(sentences: list[str], page: int | None) -> None:
        for sentence in sentences:
            for part in _hard_split(sentence, max_tokens):
                section.append(_Unit(part, page, estimate_tokens(part)))

    def flush() -> None:
        nonlocal carry
        if carry is not None:
            add([carry.text], carry.page)
            carry = None
        if section:
            pieces.extend(_pack(section, tuple(t for _, t in headings), max_tokens, overlap_tokens))
            section.clear()

    for block in blocks:
        if block.kind == "title" and estimate_tokens(block.text) <= 48:
            flush()
            headings[:] = [(lvl, t) for lvl, t in headings if lvl < block.heading_level]
            headings.append((block.heading_level, block.text))
            continue
        if block.kind == "table":
            flush()
            pieces.extend(_pack_table(block, tuple(t for _, t in headings), max_tokens))
            continue
        text, first_page = block.text, block.page
        if carry is not None:  # the previous line ended mid-sentence: this line continues it
            text, first_page = join_text(carry.text, text), carry.page
            carry = None
        sentences = split_sentences(text)
        last = sentences[-1] if sentences else ""
        if (
            block.kind == "text"
            and last
            and not _SENTENCE_CLOSED.search(last)
            and estimate_tokens(last) < max_tokens
        ):
            carry = _Unit(sentences.pop(), first_page if len(sentences) == 0 else block.page, 0)
        add(sentences[:1], first_page)
        add(sentences[1:], block.page)
    flush()
    if not pieces and headings:  # a document of headings only still deserves to be found
        pieces.append(
            ChunkPiece(" ".join(t for _, t in headings), (), blocks[0].page, blocks[0].page)
        )
    return pieces


def _pack(
    units: list[_Unit], heading_path: tuple[str, ...], max_tokens: int, overlap: int
) -> list[ChunkPiece]:
    out: list[ChunkPiece] = []
    start = 0
    while start < len(units):
        end, used = start, 0
        while end < len(units) and (end == start or used + units[end].tokens <= max_tokens):
            used += units[end].tokens
            end += 1
        window = units[start:end]
        text = ""
        for unit in window:
            text = join_text(text, unit.text)
        pages = [u.page for u in window if u.page is not None]
        out.append(
            ChunkPiece(text, heading_path, min(pages, default=None), max(pages, default=None))
        )
        if end >= len(units):
            break
        # Step back over whole sentences worth at most `overlap` tokens, always advancing.
        back, carried = end, 0
        while back - 1 > start and carried + units[back - 1].tokens <= overlap:
            back -= 1
            carried += units[back].tokens
        start = back
    return out


def _pack_table(block: Block, heading_path: tuple[str, ...], max_tokens: int) -> list[ChunkPiece]:
    rows = [r for r in block.text.split("\n") if r.strip()]
    if not rows:
        return []
    header, out, current = rows[0], [], [rows[0]]
    for row in rows[1:]:
        # A single row over budget stays whole: a row is the smallest unit a table answers with.
        if len(current) > 1 and estimate_tokens("\n".join([*current, row])) > max_tokens:
            out.append("\n".join(current))
            current = [header]
        current.append(row)
    out.append("\n".join(current))
    return [ChunkPiece(text, heading_path, block.page, block.page, kind="table") for text in out]
