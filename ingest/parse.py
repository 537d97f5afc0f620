"""Turn one file into structured blocks of text with page numbers.

The file's real type is read from its bytes (a PDF named .docx is parsed as a PDF). PDFs use
unstructured's "fast" text-layer strategy, and pages without a text layer are OCR'd with
tesseract; images are OCR'd; DOCX, spreadsheets and text encodings have kura's own readers
(see formats_*.py for why); PPTX, HTML, Markdown and mail go through unstructured.

Usage:
    doc = parse_file(Path("handbook.pdf"))
    for block in doc.blocks: print(block.page, block.kind, block.text[:40])
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from base import offline  # noqa: F401  (telemetry off before unstructured loads)
from base.cjk import CJK
from ingest.blocks import Block, BlockKind, ParsedDocument
from ingest.errors import CorruptFile, EmptyFile, EncryptedFile, IngestError, UnreadableFile

log = logging.getLogger(__name__)

# Kept for callers that filter by name before parsing; the content decides in the end.
SUPPORTED_SUFFIXES = frozenset(
    {
        ".pdf",
        ".docx",
        ".pptx",
        ".xlsx",
        ".csv",
        ".tsv",
        ".html",
        ".htm",
        ".xhtml",
        ".md",
        ".markdown",
        ".txt",
        ".text",
        ".eml",
        ".msg",
        ".png",
        ".jpg",
        ".jpeg",
        ".tif",
        ".tiff",
    }
)
# A page with fewer visible characters than this in its text layer is treated as a scan.
MIN_TEXT_LAYER_CHARS = 20


_KIND_BY_CATEGORY: dict[str, BlockKind] = {
    "Title": "title",
    "Table": "table",
    "ListItem": "list",
}
# Page furniture: repeated on every page, noise in every chunk.
_SKIPPED_CATEGORIES = frozenset({"Header", "Footer", "PageNumber", "PageBreak", "Image"})
# A line that is only a page number ("12", "- 12 -", "１２", "12/93") is furniture too.
_PAGE_NUMBER_LINE = re.compile(
    r"^[\s\-－–—‐ー(（]*[0-9０-９]{1,4}(\s*/\s*[0-9]{1,4})?[\s\-－–—‐ー)）]*$"
)


def parse_file(
    path: Path, languages: tuple[str, ...] = ("eng", "jpn"), ocr: bool = True
) -> ParsedDocument:
    """Parse `path` into blocks. Raises an `IngestError` subclass when the file can't be used."""
    from ingest.formats_detect import detect_format

    try:
        if not path.is_file():
            raise UnreadableFile(f"{path.name} is not a regular file")
        if path.stat().st_size == 0:
            raise EmptyFile("the file is zero bytes")
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from exc
    file_format = detect_format(path)
    if file_format != _suffix_format(path):
        log.info("%s: content is %s, parsing it as that", path.name, file_format)
    doc = ParsedDocument(path=path, file_format=file_format)
    try:
        doc.blocks = _read(path, file_format, list(languages), ocr, doc)
    except (IngestError, ImportError, MemoryError, RecursionError):
        raise  # ours, or kura's installation is broken rather than the file: crash loudly
    except Exception as exc:  # parsers raise many types for bad files; classify them
        raise _classify_failure(exc, file_format) from exc
    doc.blocks = _clean(doc.blocks, trust_titles=file_format == "docx")
    if not doc.blocks:
        hint = None if ocr else "the file has no text layer; enable OCR to read it"
        raise EmptyFile("no text in the file", hint=hint)
    return doc


def _suffix_format(path: Path) -> str | None:
    from ingest.formats_detect import FORMAT_BY_SUFFIX

    return FORMAT_BY_SUFFIX.get(path.suffix.lower())


def _read(
    path: Path, file_format: str, languages: list[str], ocr: bool, doc: ParsedDocument
) -> list[Block]:
    if file_format == "pdf":
        return _read_pdf(path, ocr, doc)
    if file_format == "image":
        if not ocr:
            return []
        from ingest.ocr import ocr_image

        doc.ocr_pages = (1,)
        return _ocr_blocks(ocr_image(path), page=1)
    if file_format == "docx":
        from ingest.formats_docx import parse_docx

        return parse_docx(path)
    if file_format == "xlsx":
        from ingest.formats_sheet import parse_xlsx

        return parse_xlsx(path)
    if file_format == "csv":
        from ingest.formats_sheet import parse_csv

        return parse_csv(path)
    return _elements_to_blocks(_partition(path, file_format, languages))


def _partition(path: Path, file_format: str, languages: list[str]) -> list:
    from ingest.formats_text import decode_text
    from ingest.nlp_offline import install_for_unstructured

    install_for_unstructured()
    if file_format == "md":
        from unstructured.partition.md import partition_md

        return partition_md(text=decode_text(path.read_bytes()), languages=languages)
    if file_format == "text":
        from unstructured.partition.text import partition_text

        return partition_text(text=decode_text(path.read_bytes()), languages=languages)
    if file_format == "html":
        from unstructured.partition.html import partition_html

        return partition_html(
            text=_visible_html(decode_text(path.read_bytes())), languages=languages
        )
    if file_format == "pptx":
        from unstructured.partition.pptx import partition_pptx

        return partition_pptx(filename=str(path), languages=languages)
    if file_format == "eml":
        from unstructured.partition.email import partition_email

        # Attachments are separate documents in kura's model; an admin ingests them as files.
        return partition_email(filename=str(path), process_attachments=False, languages=languages)
    if file_format == "msg":
        from unstructured.partition.msg import partition_msg

        return partition_msg(filename=str(path), process_attachments=False, languages=languages)
    raise AssertionError(f"no reader for {file_format}")  # detect_format only returns known ones


def _read_pdf(path: Path, ocr: bool, doc: ParsedDocument) -> list[Block]:
    page_count = _check_pdf(path)
    from pypdfium2 import PdfiumError

    from ingest.formats_pdf import read_pdf_elements
    from ingest.nlp_offline import install_for_unstructured

    install_for_unstructured()
    # The text layer, as unstructured's "fast" strategy reads it but through PDFium (see
    # formats_pdf); "hi_res" needs layout models from a hub and cannot run offline.
    try:
        blocks = _elements_to_blocks(read_pdf_elements(path))
    except PdfiumError as exc:  # pikepdf opened it, PDFium could not
        raise CorruptFile(f"the PDF cannot be read: {exc}"[:200]) from exc
    chars: dict[int, int] = {}
    for block in blocks:
        if block.page is not None:
            chars[block.page] = chars.get(block.page, 0) + len("".join(block.text.split()))
    scanned = [p for p in range(1, page_count + 1) if chars.get(p, 0) < MIN_TEXT_LAYER_CHARS]
    if not scanned or not ocr:
        return blocks
    from ingest.ocr import ocr_pdf_pages

    by_page = ocr_pdf_pages(path, scanned)
    doc.ocr_pages = tuple(sorted(by_page))
    kept = [b for b in blocks if b.page not in by_page]  # OCR replaces a page's stray text
    for page, text in by_page.items():
        kept.extend(_ocr_blocks([text], page))
    return sorted(kept, key=lambda b: b.page or 0)  # stable: order within a page is kept


def _check_pdf(path: Path) -> int:
    """Page count; a typed error for encrypted, truncated or damaged PDFs before parsing."""
    import pikepdf

    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - 2048, 0))
        if b"%%EOF" not in handle.read():
            raise CorruptFile(
                "the PDF is truncated (no end-of-file marker)",
                hint="copy the file again from its source; an interrupted copy cuts it short",
            )
    try:
        with pikepdf.open(path) as pdf:
            return len(pdf.pages)
    except pikepdf.PasswordError as exc:
        raise EncryptedFile("the PDF needs a password to open") from exc
    except pikepdf.PdfError as exc:
        raise CorruptFile(f"the PDF's structure is damaged: {exc}"[:200]) from exc


def _ocr_blocks(pages: list[str], page: int) -> list[Block]:
    """OCR text into paragraph blocks; `pages` holds one text per page (TIFF frames)."""
    blocks: list[Block] = []
    for offset, text in enumerate(pages):
        for paragraph in re.split(r"\n\s*\n", text):
            paragraph = paragraph.strip()
            if paragraph:
                blocks.append(Block(paragraph, "text", page + offset))
    return blocks


def _visible_html(html: str) -> str:
    """Drop what a browser would not show, before unstructured sees it.

    Inline XBRL filings (SEC 10-K/10-Q) carry an `ix:header` of hidden facts, contexts and
    units inside a display:none div; scripts and styles are not text either.
    """
    import warnings

    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():  # XHTML filings are XML, and lxml's HTML parser reads them
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(["script", "style", "noscript", "template", "ix:header"]):
        tag.decompose()
    for tag in soup.find_all(style=re.compile(r"display\s*:\s*none", re.I)):
        tag.decompose()
    for tag in soup.find_all(hidden=True):
        tag.decompose()
    return str(soup)


def _classify_failure(exc: Exception, file_format: str) -> IngestError:
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    if "password" in lowered or "encrypt" in lowered:
        return EncryptedFile(text[:200])
    if "zip" in lowered or "package not found" in lowered or "not a zip" in lowered:
        return CorruptFile(f"the {file_format.upper()} file is truncated or damaged ({text[:150]})")
    return CorruptFile(text[:200])


def _elements_to_blocks(elements: list) -> list[Block]:
    return [block for element in elements if (block := _to_block(element)) is not None]


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
        if "\n" not in text:  # a one-row "table" is layout (bullets, checkboxes), not data
            kind = "list"
            text = text.replace(" | ", " ").strip()
    if not text:
        return None
    page = getattr(metadata, "page_number", None)
    depth = getattr(metadata, "category_depth", None) or 0
    return Block(text=text, kind=kind, page=page, heading_level=int(depth))


# Cells that only hold layout: currency signs and closing brackets set in their own cell.
_ATTACH_RIGHT = frozenset({"$", "€", "£", "¥", "(", "($", "$("})
_ATTACH_LEFT = frozenset({")", "%", ")%", "%)"})


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
                rows[-1][-1] = (rows[-1][-1] + " " + data.strip()).strip()

    _Rows().feed(html)
    lines = [" | ".join(_compact_cells(row)) for row in rows]
    return "\n".join(line for line in lines if line) or None


def _compact_cells(row: list[str]) -> list[str]:
    """Drop empty spacer cells and glue '$' / ')' cells to their number (SEC-style tables)."""
    out: list[str] = []
    pending = ""
    for cell in row:
        cell = cell.strip()
        if not cell:
            continue
        if cell in _ATTACH_RIGHT:
            pending += cell
            continue
        if cell in _ATTACH_LEFT and out:
            out[-1] += cell
            continue
        out.append(pending + cell)
        pending = ""
    return out


# --- after parsing: page furniture out, Japanese headings recognised ------------------------

_MOSTLY_CJK = re.compile(f"[{CJK}]")
_NUM = r"[0-9０-９一二三四五六七八九十百〇]+"
# 第１章 総則 / 第２節 … → section headings; （目的） and 【第１条 目的】 → article captions.
_JA_CHAPTER = re.compile(rf"^第{_NUM}[編章]\s*\S")
_JA_SECTION = re.compile(rf"^第{_NUM}節\s*\S")
_JA_CAPTION = re.compile(r"^[（(【][^（）()【】。]{1,30}[）)】]$")


def _clean(blocks: list[Block], trust_titles: bool = False) -> list[Block]:
    """Drop page furniture; in Japanese documents decide headings by shape (see below).
    `trust_titles`: the titles come from the author's heading styles (DOCX), not from guessing."""
    cleaned: list[Block] = []
    kept = [b for b in blocks if b.kind == "table" or not _PAGE_NUMBER_LINE.match(b.text.strip())]
    kept = [b for b in kept if not _SPACED_LETTERS.match(b.text.strip())]
    text = "".join(b.text for b in kept)
    japanese = len(_MOSTLY_CJK.findall(text)) * 3 >= len("".join(text.split()))
    previous_closed = True
    for block in kept:
        if japanese and not (trust_titles and block.kind == "title"):
            block = _japanese_kind(block, previous_closed)
        cleaned.append(block)
        previous_closed = block.kind != "text" or bool(_CLOSED.search(block.text.strip()))
    return cleaned


# Rotated margin text comes out of PDFs as spaced single letters: "S L A S O P O R P h t i".
_SPACED_LETTERS = re.compile(r"^(?:[A-Za-z0-9] ){4,}[A-Za-z0-9]$")
_CLOSED = re.compile(r"[。！？!?.:;：；」』）)】]$")
_TOC_LINE = re.compile(r"[…‥]{2,}|[・.．]{4,}|…+\s*[0-9０-９]+$")
_JA_ARTICLE = re.compile(rf"^第\s*{_NUM}\s*条")


def _japanese_kind(block: Block, previous_closed: bool) -> Block:
    """unstructured tags most Japanese PDF lines as Title (its rules are for English).
    Decide from the line's shape: 第X章 / 第X節 / （見出し） are headings, the rest is text."""
    if block.kind == "table":
        return block
    text = block.text.strip()
    if len(text) <= 40 and "。" not in text and not _TOC_LINE.search(text):
        if _JA_CHAPTER.match(text):
            return Block(text, "title", block.page, 0)
        if _JA_SECTION.match(text):
            return Block(text, "title", block.page, 1)
        if _JA_CAPTION.match(text) and previous_closed:
            return Block(text, "title", block.page, 2)
        short = len(text) <= 20 and not re.search(r"[、。，．]", text)
        if block.kind == "title" and short and previous_closed and not _JA_ARTICLE.match(text):
            # Short, unpunctuated, after a finished sentence: keep unstructured's guess
            # ("はじめに", "１ 就業規則の意義"), below the chapters so it does not reset them.
            return Block(text, "title", block.page, 1)
    return Block(text, "list" if block.kind == "list" else "text", block.page, 0)
