"""The parser reads every supported format from real files, with the page numbers a citation
needs, tables kept as rows under their header, and no hidden markup turned into text."""

from __future__ import annotations

import email.message
import re
from pathlib import Path

import pytest

from base.cjk import JAPANESE
from ingest.chunk import chunk_blocks
from ingest.parse import parse_file
from tests.conftest import shared_doc


def _chunk_with(chunks, needle: str):
    found = [c for c in chunks if needle in re.sub(r"\s+", " ", c.text)]
    assert found, f"no chunk contains {needle!r}"
    return found[0]


def test_pdf_chunk_cites_the_page_its_sentence_is_printed_on():
    parsed = parse_file(shared_doc("en/federal_register_2020-17221.pdf"))
    chunks = chunk_blocks(parsed.blocks)
    chunk = _chunk_with(chunks, "replace the existing Airspeed Unreliable")
    assert chunk.page == 7
    assert parsed.page_count == 15


def test_japanese_pdf_article_one_is_cited_on_page_ten_under_chapter_one():
    parsed = parse_file(shared_doc("ja/mhlw_model_shugyo_kisoku_R4-11.pdf"))
    chunk = _chunk_with(
        chunk_blocks(parsed.blocks), "労働基準法（以下「労基法」という。）第８９条に基づき"
    )
    assert chunk.page == 10
    assert chunk.heading_path[0] == "第１章 総則"


def test_docx_pages_follow_its_page_breaks(tmp_path: Path):
    import docx

    document = docx.Document()
    document.add_heading("Leave policy", level=1)
    document.add_paragraph("Employees accrue two days of leave per month.")
    document.add_page_break()
    document.add_paragraph("Unused leave expires at the end of March.")
    document.add_page_break()
    document.add_heading("Travel", level=1)
    document.add_paragraph("Economy class is booked for flights under six hours.")
    path = tmp_path / "policy.docx"
    document.save(str(path))

    chunks = chunk_blocks(parse_file(path).blocks)
    assert _chunk_with(chunks, "two days of leave").page == 1
    march = _chunk_with(chunks, "expires at the end of March")
    assert (march.page, march.page_end) == (1, 2)  # one chunk across the break cites both
    travel = _chunk_with(chunks, "Economy class")
    assert (travel.page, travel.heading_path) == (3, ("Travel",))


def test_real_docx_handbook_gets_page_numbers_from_its_hard_breaks():
    parsed = parse_file(shared_doc("en/usdoj_chapter13_trustee_handbook_2012.docx"))
    pages = [b.page for b in parsed.blocks]
    assert None not in pages and pages == sorted(pages)
    assert parsed.page_count > 50  # the handbook is >100 printed pages; breaks give a lower bound
    cover = next(b for b in parsed.blocks if b.text == "Standing Trustees")
    toc = next(b for b in parsed.blocks if b.text == "Table of Contents")
    assert cover.page == 1 and toc.page > cover.page
    headings = [b for b in parsed.blocks if b.kind == "title"]
    assert len(headings) > 100  # Heading 1-3 styles become the heading path


def test_japanese_docx_keeps_its_heading_styles():
    parsed = parse_file(shared_doc("ja/mhlw_model_shugyo_kisoku_p1-40.DERIVED.docx"))
    titles = [b.text for b in parsed.blocks if b.kind == "title"]
    assert "モデル就業規則" in titles and len(titles) >= 20
    chunks = chunk_blocks(parsed.blocks)
    # Sentences joined into a chunk get no space between them (a plain " ".join gave 115 of these),
    # and no space lands inside Japanese prose.
    assert not [m.group(0) for c in chunks for m in re.finditer(f"[。、] [{JAPANESE}]", c.text)]
    assert not any(re.search(r"[ぁ-ん] [ぁ-ん]", c.text) for c in chunks)


def test_inline_xbrl_10k_gives_no_hidden_facts_or_empty_cells():
    parsed = parse_file(shared_doc("en/sec_10k_glatfelter_fy2021.html"))
    chunks = chunk_blocks(parsed.blocks)
    text = "\n".join(c.text for c in chunks)
    assert not re.search(r"\b(?:us-gaap|dei|xbrli|iso4217):[A-Za-z]", text)
    assert "C_0000013156" not in text
    assert " |  | " not in text  # SEC spacer cells dropped
    row = _chunk_with(chunks, "Cash and cash equivalents | $16,058,714")
    assert row.kind == "table" and "2021 | 2020" in row.text  # header repeated with the row


def test_spreadsheet_rows_carry_their_header_and_sheet_name(tmp_path: Path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "支店別売上"
    sheet.append(["Branch", "Q1", "Q2"])
    for number in range(60):
        sheet.append([f"Branch {number}", number * 10, number * 11])
    sheet.append(["Osaka", 1200, 1350])
    path = tmp_path / "sales.xlsx"
    book.save(str(path))

    chunks = chunk_blocks(parse_file(path).blocks, max_tokens=120)
    osaka = _chunk_with(chunks, "Osaka | 1200 | 1350")
    assert osaka.text.splitlines()[0] == "Branch | Q1 | Q2"
    assert osaka.heading_path == ("支店別売上",) and osaka.page == 1
    assert all(c.text.splitlines()[0] == "Branch | Q1 | Q2" for c in chunks)  # never mid-row


def test_csv_in_shift_jis_is_read_as_a_table(tmp_path: Path):
    path = tmp_path / "社員名簿.csv"
    path.write_bytes("氏名,部署,内線\n山田太郎,総務部,1234\n佐藤花子,経理部,5678\n".encode("cp932"))
    chunks = chunk_blocks(parse_file(path).blocks)
    assert chunks[0].kind == "table"
    assert "佐藤花子 | 経理部 | 5678" in chunks[0].text


def test_shift_jis_text_file_is_decoded_without_spaces_between_characters(tmp_path: Path):
    path = tmp_path / "お知らせ.txt"
    body = "年末年始の休業についてお知らせします。十二月二十九日から一月三日まで休業します。"
    path.write_bytes(body.encode("shift_jis"))
    chunks = chunk_blocks(parse_file(path).blocks)
    assert "".join(c.text for c in chunks) == body


def test_markdown_headings_become_the_heading_path(tmp_path: Path):
    path = tmp_path / "runbook.md"
    path.write_text(
        "# Backups\n\n## Restore\n\nStop kura, copy the data directory back, start kura.\n"
    )
    chunks = chunk_blocks(parse_file(path).blocks)
    assert chunks[0].heading_path[-1] == "Restore"
    assert "copy the data directory back" in chunks[0].text


def test_email_body_and_subject_are_read(tmp_path: Path):
    message = email.message.EmailMessage()
    message["From"] = "soumu@example.co.jp"
    message["To"] = "all@example.co.jp"
    message["Subject"] = "健康診断の日程"
    message.set_content("今年の健康診断は十月十五日に本社三階で行います。予約は不要です。")
    path = tmp_path / "kenshin.eml"
    path.write_bytes(bytes(message))
    text = "".join(c.text for c in chunk_blocks(parse_file(path).blocks))
    assert "十月十五日に本社三階で行います。" in text


def test_pptx_slide_number_is_the_page(tmp_path: Path):
    from pptx import Presentation

    deck = Presentation()
    for title, body in [
        ("Kickoff", "Goals for the year."),
        ("Budget", "Travel budget is frozen until June."),
    ]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    path = tmp_path / "deck.pptx"
    deck.save(str(path))
    chunk = _chunk_with(chunk_blocks(parse_file(path).blocks), "Travel budget is frozen")
    assert chunk.page == 2


def test_pdf_named_docx_is_parsed_as_the_pdf_it_is(tmp_path: Path):
    path = tmp_path / "transcript.docx"
    path.write_bytes(shared_doc("en/scotus_transcript_p1.pdf").read_bytes())
    parsed = parse_file(path)
    assert parsed.file_format == "pdf"
    assert "SUPREME COURT" in " ".join(b.text for b in parsed.blocks)


@pytest.mark.parametrize(
    "name", ["with space.md", "日本語の名前.md", "emoji 📄.md", "new\nline.md"]
)
def test_odd_characters_in_a_path_do_not_matter(tmp_path: Path, name: str):
    folder = tmp_path / "共有 フォルダ"
    folder.mkdir()
    path = folder / name
    path.write_text("# Notes\n\nThe odd path still parses.\n")
    assert "still parses" in parse_file(path).blocks[-1].text
