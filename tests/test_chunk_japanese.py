"""Japanese text is chunked at sentence ends, never with spaces between characters, under
article headings, with CJK characters counted as tokens."""

from __future__ import annotations

import re

from base.text import estimate_tokens
from ingest.blocks import Block
from ingest.chunk import chunk_blocks
from ingest.parse import parse_file
from tests.conftest import shared_doc

_ENDS_SENTENCE = re.compile(r"[。！？」）)]$")


def test_japanese_pdf_chunks_end_at_sentence_boundaries():
    parsed = parse_file(shared_doc("ja/mhlw_model_shugyo_kisoku_R4-11.pdf"))
    chunks = chunk_blocks(parsed.blocks, max_tokens=200, overlap_tokens=30)
    prose = [c for c in chunks if c.kind == "text" and estimate_tokens(c.text) > 60]
    ended = sum(1 for c in prose if _ENDS_SENTENCE.search(c.text))
    assert len(prose) > 200
    assert ended / len(prose) >= 0.9, f"{ended}/{len(prose)} prose chunks end a sentence"
    assert all(estimate_tokens(c.text) <= 200 for c in chunks if c.kind == "text")


def test_japanese_pdf_headings_are_chapters_and_article_captions():
    parsed = parse_file(shared_doc("ja/mhlw_model_shugyo_kisoku_R4-11.pdf"))
    chunks = chunk_blocks(parsed.blocks)
    article = next(
        c for c in chunks if "第１９条" in c.text and "始業" in c.text and c.page and c.page > 20
    )
    assert article.heading_path[0].startswith("第４章")
    titles = [b.text for b in parsed.blocks if b.kind == "title"]
    assert "（目的）" in titles and "第１章 総則" in titles
    assert not any(t.endswith("。") for t in titles)  # sentences are not headings
    assert not any("……" in t for t in titles)  # table-of-contents lines are not headings


def test_lines_of_one_sentence_are_joined_without_spaces():
    blocks = [
        Block("この規則は、労働基準法第８９条に基づき、", "text", 3),
        Block("労働者の就業に関する事項を定めるものである。", "text", 3),
        Block("次の文です。", "text", 4),
    ]
    chunks = chunk_blocks(blocks, max_tokens=45, overlap_tokens=0)
    assert (
        chunks[0].text
        == "この規則は、労働基準法第８９条に基づき、労働者の就業に関する事項を定めるものである。"
    )
    assert chunks[-1].text == "次の文です。" and chunks[-1].page == 4


def test_a_cjk_character_counts_as_one_token():
    assert estimate_tokens("就業規則") == 4
    assert estimate_tokens("就業規則 rules") == 4 + 2


def test_table_is_never_split_inside_a_row():
    rows = ["氏名 | 部署 | 内線"] + [f"社員{n} | 総務部 | {1000 + n}" for n in range(80)]
    chunks = chunk_blocks([Block("\n".join(rows), "table", 1)], max_tokens=60, overlap_tokens=0)
    assert len(chunks) > 3
    for chunk in chunks:
        lines = chunk.text.splitlines()
        assert lines[0] == rows[0]
        assert all(line in rows for line in lines)
