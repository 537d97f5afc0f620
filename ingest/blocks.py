"""What a parser gives: a document as structural blocks (heading, paragraph, list item, table)
with page numbers. Every reader in formats_*.py and parse.py builds these."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

BlockKind = Literal["title", "text", "table", "list"]


@dataclass(frozen=True)
class Block:
    """One structural piece of a document: a heading, a paragraph, a list item or a table."""

    text: str
    kind: BlockKind
    page: int | None = None
    heading_level: int = 0  # for titles: 0 is the top level


@dataclass
class ParsedDocument:
    path: Path
    blocks: list[Block] = field(default_factory=list)
    file_format: str = ""  # what the content is (may differ from the extension)
    ocr_pages: tuple[int, ...] = ()  # pages whose text came from OCR

    @property
    def page_count(self) -> int:
        pages = [b.page for b in self.blocks if b.page is not None]
        return max(pages) if pages else 0


