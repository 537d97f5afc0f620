"""kura reads a PDF's text layer through PDFium (ingest/formats_pdf.py) instead of
unstructured's pdfminer path: the same words, the same pages, sideways margin notes left out,
table rows kept together, and safe to call from several threads."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pypdfium2 as pdfium

from ingest.formats_pdf import read_pdf_elements
from ingest.nlp_offline import install_for_unstructured
from ingest.parse import parse_file
from tests.conftest import shared_doc


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_text_is_what_unstructureds_pdfminer_path_reads():
    path = shared_doc("en/scotus_transcript_p1.pdf")
    install_for_unstructured()
    from unstructured.partition.pdf import partition_pdf

    pdfminer = partition_pdf(filename=str(path), strategy="fast", languages=["eng"])
    ours = read_pdf_elements(path)
    assert _squeezed("".join(map(str, ours))) == _squeezed("".join(map(str, pdfminer)))
    assert [e.metadata.page_number for e in ours] == sorted(e.metadata.page_number for e in ours)
    assert {e.metadata.page_number for e in ours} == {e.metadata.page_number for e in pdfminer}


def test_sideways_margin_note_is_left_out():
    path = shared_doc("en/federal_register_2020-17221.pdf")
    document = pdfium.PdfDocument(path)
    try:
        layer = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    assert "DSKJLSW7X2PROD" in layer  # the note is in the text layer, printed down the margin
    parsed = parse_file(path)
    assert not any("DSKJLSW7X2PROD" in _squeezed(block.text) for block in parsed.blocks)
    # ...while the upright text around it is all there
    assert any("AirworthinessDirectives" in _squeezed(b.text) for b in parsed.blocks)


def test_table_row_keeps_its_cells_in_order():
    parsed = parse_file(shared_doc("en/fbi_nics_background_checks_2015-11.pdf"))
    text = " ".join(re.sub(r"\s+", " ", block.text) for block in parsed.blocks)
    # pdfminer read this table column by column: every state, then every number
    assert "Alabama 18,870 23,022 22,650" in text


def test_lines_of_one_paragraph_are_one_element():
    elements = read_pdf_elements(shared_doc("en/federal_register_2020-17221.pdf"))
    words = [len(str(e).split()) for e in elements]
    assert max(words) > 100  # a paragraph wraps over many lines of a narrow column
    line_by_line = sum(1 for n in words if n <= 3)
    assert line_by_line < len(words) / 2


def test_threads_reading_pdfs_at_once_get_what_one_thread_gets():
    paths = [shared_doc("en/scotus_transcript_p1.pdf"), shared_doc("en/fbi_nics_background_checks_2015-11.pdf")] * 4
    expected = {path: [str(e) for e in read_pdf_elements(path)] for path in set(paths)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda p: [str(e) for e in read_pdf_elements(p)], paths))
    assert results == [expected[path] for path in paths]
