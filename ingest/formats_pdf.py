"""A PDF's text layer, read with PDFium, as the blocks unstructured's "fast" strategy would give.

Why not `partition_pdf(strategy="fast")`: it runs pdfminer, whose pure-Python content-stream
interpreter spent 28 of the 33 s that the 93-page Japanese work rules took to parse (0.3 s a
page, 620k PostScript objects). While a folder ingests, that CPU is taken from the embedder.
PDFium (pypdfium2, already installed for unstructured) reads the same text layer in 0.5 s.

What stays the same: lines are grouped into paragraphs by pdfminer's own rule (close below,
same height, aligned left, right or centred; LAParams line_margin 0.5), the text is cleaned
and classified by the functions unstructured's pdfminer path calls (`clean_extra_whitespace`,
`element_from_text`: title, list item, narrative, header/footer by position), and a block
keeps the page it is printed on. What differs: the order is the content stream's, as PDFium
reads it, not unstructured's XY-cut sort; and the cells of one table row stay on one line.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# PDFium is not thread-safe, not even across documents (pypdfium2's docs): one call at a time
# in this process. Parsing runs in its own process (ingest/parse_pool.py), so this rarely waits.
_PDFIUM = threading.Lock()

_SAME_ANGLE = 5  # 0.05 rad: glyphs this close to the page's usual angle are upright
_LINE_MARGIN = 0.5  # pdfminer's LAParams default: how far apart two lines of a paragraph may be


@dataclass
class _Line:
    text: str
    left: float
    bottom: float
    right: float
    top: float

    @property
    def height(self) -> float:
        return self.top - self.bottom


@dataclass
class _Page:
    number: int
    width: float
    height: float
    lines: list[_Line]


def read_pdf_elements(path: Path) -> list:
    """unstructured elements, one per paragraph, with `metadata.page_number` set."""
    with _PDFIUM:
        pages = _read_lines(path)
    elements: list = []
    for page in pages:
        elements.extend(_page_elements(page))
    return elements


def _read_lines(path: Path) -> list[_Page]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    pages: list[_Page] = []
    document = pdfium.PdfDocument(path)
    try:
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            try:
                width, height = page.get_size()
                pages.append(_Page(index + 1, width, height, _lines_of(textpage, pdfium_c)))
            finally:
                textpage.close()
                page.close()
    finally:
        document.close()
    return pages


def _lines_of(textpage, pdfium_c) -> list[_Line]:
    """Split the page's characters at PDFium's line breaks; each line's box from its glyphs'
    font boxes (the "loose" box: the same height for every glyph of one font size).

    Glyphs at another angle than most of the page's are left out: margin notes set sideways
    ("jbell on DSKJLSW7X2PROD with PROPOSALS" down a Federal Register page) and diagonal
    watermarks are not part of the text. pdfminer read them as spaced letters, which
    parse._clean drops."""
    import ctypes

    count = textpage.count_chars()
    if count <= 0:
        return []
    # One call for the page's text: PDFium gives one UTF-16 code unit per character index
    # (a character outside the BMP takes two indices), so units[i] is character i.
    buffer = (ctypes.c_ushort * (count + 1))()
    pdfium_c.FPDFText_GetText(textpage.raw, 0, count, buffer)
    units = buffer[:count]
    # Per-glyph calls go straight to the C functions: the wrappers' checks cost more than
    # the calls on a page of 4,000 characters.
    char_angle, loose_box = pdfium_c.FPDFText_GetCharAngle, pdfium_c.FPDFText_GetLooseCharBox
    handle, rect = textpage.raw, pdfium_c.FS_RECTF()
    glyphs = {}  # index -> (angle in 1/100 rad, left, bottom, right, top); spaces have none
    for i, unit in enumerate(units):
        if chr(unit).isspace():
            continue  # spaces and the line breaks PDFium infers have no glyph box
        loose_box(handle, i, rect)
        glyphs[i] = (round(char_angle(handle, i) * 100), rect.left, rect.bottom, rect.right, rect.top)
    angles = Counter(glyph[0] for glyph in glyphs.values())
    upright = angles.most_common(1)[0][0] if angles else 0

    lines: list[_Line] = []
    line: list[int] = []  # UTF-16 code units: a character outside the BMP comes as two
    box: list[float] | None = None
    for i, unit in enumerate(units):
        if unit in (0x0D, 0x0A):
            if line and box is not None:
                lines.append(_Line(_decode(line), *box))
            line, box = [], None
            continue
        glyph = glyphs.get(i)
        if glyph is None:
            line.append(unit)
            continue
        angle, left, bottom, right, top = glyph
        if abs(angle - upright) > _SAME_ANGLE:
            continue
        line.append(unit)
        if box is None:
            box = [left, bottom, right, top]
        else:
            box = [min(box[0], left), min(box[1], bottom), max(box[2], right), max(box[3], top)]
    if line and box is not None:
        lines.append(_Line(_decode(line), *box))
    return lines


def _decode(units: list[int]) -> str:
    raw = "".join(chr(u) for u in units)
    return raw.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _continues(above: _Line, below: _Line) -> bool:
    """pdfminer's neighbour rule (LTTextLineHorizontal.find_neighbors), applied to the next
    line in reading order: within half a line height below, about the same height, and
    aligned on the left, the right or the centre."""
    d = _LINE_MARGIN * max(above.height, below.height)
    if below.top > above.top or above.bottom - below.top > d:
        return False  # above it (a new column), or too far below
    if below.right < above.left or below.left > above.right:
        return False  # no horizontal overlap: another column
    if abs(above.height - below.height) > d:
        return False
    return (
        abs(above.left - below.left) <= d
        or abs(above.right - below.right) <= d
        or abs((above.left + above.right) - (below.left + below.right)) / 2 <= d
    )


def _page_elements(page: _Page) -> list:
    from unstructured.cleaners.core import clean_extra_whitespace
    from unstructured.documents.coordinates import PixelSpace
    from unstructured.partition.text import element_from_text

    system = PixelSpace(width=page.width, height=page.height)
    elements: list = []
    for group in _paragraphs(page.lines):
        text = clean_extra_whitespace("\n".join(line.text for line in group))
        if not text:
            continue
        left = min(line.left for line in group)
        right = max(line.right for line in group)
        # Pixel space counts y from the top of the page, as unstructured's pdfminer path does.
        top = page.height - max(line.top for line in group)
        bottom = page.height - min(line.bottom for line in group)
        points = ((left, top), (left, bottom), (right, bottom), (right, top))
        element = element_from_text(text, coordinates=points, coordinate_system=system)
        element.metadata.page_number = page.number
        elements.append(element)
    return elements


def _paragraphs(lines: list[_Line]) -> list[list[_Line]]:
    groups: list[list[_Line]] = []
    for line in lines:
        if not line.text.strip():
            continue
        if groups and _continues(groups[-1][-1], line):
            groups[-1].append(line)
        else:
            groups.append([line])
    return groups
