"""Turn one file into structured blocks of text with page numbers, using unstructured.

Usage:
    doc = parse_file(Path("handbook.pdf"))
    for block in doc.blocks: print(block.page, block.kind, block.text[:40])
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app import offline  # noqa: F401  (telemetry off before unstructured loads)
from ingest.errors import CorruptFile, EmptyFile, EncryptedFile, UnsupportedFile

log = logging.getLogger(__name__)

BlockKind = Literal["title", "text", "table", "list"]

SUPPORTED_SUFFIXES = frozenset(
    {".pdf", ".docx", ".pptx", ".xlsx", ".html", ".htm", ".md", ".markdown", ".txt", ".text"}
)


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

    @property
    def page_count(self) -> int:
        pages = [b.page for b in self.blocks if b.page is not None]
        return max(pages) if pages else 0


_KIND_BY_CATEGORY: dict[str, BlockKind] = {
    "Title": "title",
    "Table": "table",
    "ListItem": "list",
}
# Page furniture: repeated on every page, noise in every chunk.
_SKIPPED_CATEGORIES = frozenset({"Header", "Footer", "PageNumber", "PageBreak", "Image"})


def parse_file(path: Path, languages: tuple[str, ...] = ("eng", "jpn")) -> ParsedDocument:
    """Parse `path` into blocks. Raises an `IngestError` subclass when the file can't be used."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFile(f"{suffix or 'no extension'} files are not supported")
    elements = _partition(path, suffix, list(languages))
    blocks = [block for element in elements if (block := _to_block(element)) is not None]
    if not blocks:
        raise EmptyFile()
    return ParsedDocument(path=path, blocks=blocks)


def _partition(path: Path, suffix: str, languages: list[str]) -> list:
    from ingest.nlp_offline import install_for_unstructured

    install_for_unstructured()
    try:
        if suffix == ".pdf":
            from unstructured.partition.pdf import partition_pdf

            # "fast" reads the text layer (9-15 pages/s here) and keeps page numbers;
            # "hi_res" needs layout models from a hub and cannot run offline.
            return partition_pdf(filename=str(path), strategy="fast", languages=languages)
        if suffix in (".md", ".markdown"):
            from unstructured.partition.md import partition_md

            return partition_md(filename=str(path), languages=languages)
        if suffix in (".txt", ".text"):
            from unstructured.partition.text import partition_text

            return partition_text(filename=str(path), languages=languages)
        from unstructured.partition.auto import partition

        return partition(filename=str(path), languages=languages)
    except (ImportError, MemoryError):
        raise  # kura's installation is broken, not the file: crash loudly
    except Exception as exc:  # unstructured raises many types for bad files; classify them
        raise _classify_failure(exc) from exc


def _classify_failure(exc: Exception) -> Exception:
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    if "password" in lowered or "encrypt" in lowered:
        return EncryptedFile(text[:200])
    return CorruptFile(text[:200])


def _to_block(element: object) -> Block | None:
    category = getattr(element, "category", "")
    if category in _SKIPPED_CATEGORIES:
        return None
    metadata = getattr(element, "metadata", None)
    text = str(element).strip()
    kind = _KIND_BY_CATEGORY.get(category, "text")
    if kind == "table":
        # Rows as lines, cells separated by " | ": a question about a cell finds its row.
        text = _table_text(metadata) or text
    if not text:
        return None
    page = getattr(metadata, "page_number", None)
    depth = getattr(metadata, "category_depth", None) or 0
    return Block(text=text, kind=kind, page=page, heading_level=int(depth))


def _table_text(metadata: object) -> str | None:
    html = getattr(metadata, "text_as_html", None)
    if not html:
        return None
    from html.parser import HTMLParser

    rows: list[list[str]] = []

    class _Rows(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag == "tr":
                rows.append([])
            elif tag in ("td", "th") and rows:
                rows[-1].append("")

        def handle_data(self, data: str) -> None:
            if rows and rows[-1]:
                rows[-1][-1] += data.strip()

    _Rows().feed(html)
    lines = [" | ".join(cell for cell in row) for row in rows if any(row)]
    return "\n".join(lines) or None
