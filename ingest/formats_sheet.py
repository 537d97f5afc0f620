"""Read spreadsheets (XLSX) and CSV/TSV files as tables: one table block per sheet, first
non-empty row as the header, the sheet's name as its heading, so "what is the Q3 figure for
Osaka" finds the row, and the chunker repeats the header in every piece of a long sheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from ingest.blocks import Block
from ingest.formats_text import decode_text


def parse_xlsx(path: Path) -> list[Block]:
    import openpyxl

    # read_only streams rows (a 100k-row sheet stays small in memory); data_only gives the
    # values Excel last computed rather than the formulas.
    book = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    blocks: list[Block] = []
    try:
        for number, sheet in enumerate(book.worksheets, start=1):
            if sheet.sheet_state != "visible":
                continue
            rows = _render_rows(sheet.iter_rows(values_only=True))
            if rows:
                blocks.append(Block(sheet.title, "title", number, 0))
                blocks.append(Block("\n".join(rows), "table", number))
    finally:
        book.close()
    return blocks


def parse_csv(path: Path) -> list[Block]:
    text = decode_text(path.read_bytes())
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    rows = _render_rows(csv.reader(text.splitlines(), dialect))
    return [Block("\n".join(rows), "table", None)] if rows else []


def _render_rows(rows: Iterable[Iterable[object]]) -> list[str]:
    """Rows as 'a | b | c' lines; trailing empty columns and empty rows dropped."""
    out: list[str] = []
    for row in rows:
        cells = ["" if v is None else " ".join(str(v).split()) for v in row]
        while cells and not cells[-1]:
            cells.pop()
        if any(cells):
            out.append(" | ".join(cells))
    return out
