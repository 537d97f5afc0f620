"""Scanned pages and images are read with tesseract (eng+jpn), with their page numbers.
The scans are made from real pages (pdftoppm → img2pdf), so they have no text layer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ingest.chunk import chunk_blocks
from ingest.ocr import ocr_available
from ingest.parse import parse_file
from tests.conftest import shared_doc

pytestmark = pytest.mark.skipif(not ocr_available(), reason="tesseract/poppler not installed")


def _rasterise(pdf: Path, page: int, out: Path) -> Path:
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "150",
            "-gray",
            "-png",
            "-singlefile",
            "-f",
            str(page),
            "-l",
            str(page),
            str(pdf),
            str(out),
        ],
        check=True,
    )
    return out.with_suffix(".png")


def test_scanned_page_inside_a_pdf_is_ocrd_and_keeps_its_page_number(tmp_path: Path):
    text_pdf = shared_doc("en/federal_register_2020-17221.pdf")
    png = _rasterise(shared_doc("en/scotus_transcript_p1.pdf"), 1, tmp_path / "scan")
    scan_pdf = tmp_path / "scan.pdf"
    subprocess.run(["img2pdf", str(png), "-o", str(scan_pdf)], check=True)
    mixed = tmp_path / "mixed.pdf"  # page 1 has a text layer, page 2 is only an image
    subprocess.run(
        ["qpdf", "--empty", "--pages", str(text_pdf), "1", str(scan_pdf), "1", "--", str(mixed)],
        check=True,
    )

    parsed = parse_file(mixed)
    assert parsed.ocr_pages == (2,)
    page_two = " ".join(b.text for b in parsed.blocks if b.page == 2)
    for words in ("SUPREME COURT", "KNOWLES", "MIRZAYANCE", "Washington"):
        assert words in page_two
    assert any(b.page == 1 and "Federal Register" in b.text for b in parsed.blocks)


def test_japanese_scan_image_is_read_without_spaces_between_characters(tmp_path: Path):
    png = _rasterise(shared_doc("ja/mhlw_model_shugyo_kisoku_R4-11.pdf"), 10, tmp_path / "ja")
    parsed = parse_file(png)
    chunks = chunk_blocks(parsed.blocks)
    text = "".join(c.text for c in chunks)
    assert parsed.ocr_pages == (1,) and {c.page for c in chunks} == {1}
    for phrase in ("総則", "就業規則", "労働者の就業に関する事項", "適用範囲"):
        assert phrase in text, phrase


def test_pdf_without_text_and_without_ocr_says_to_enable_ocr(tmp_path: Path):
    png = _rasterise(shared_doc("en/scotus_transcript_p1.pdf"), 1, tmp_path / "scan")
    scan_pdf = tmp_path / "scan.pdf"
    subprocess.run(["img2pdf", str(png), "-o", str(scan_pdf)], check=True)
    from ingest.errors import EmptyFile

    with pytest.raises(EmptyFile) as caught:
        parse_file(scan_pdf, ocr=False)
    assert "OCR" in caught.value.hint
