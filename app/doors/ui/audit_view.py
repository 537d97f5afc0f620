"""Export and link audit entries for the auditor's pages (pure functions, no Streamlit); the
filtering is the service's (app/service/audit_analytics.py, over the analytics index).

Usage:
    csv_bytes = to_csv(entries)  # JSON Lines come from the service's audited export
    link = entry_link(42)      # "workbench?seq=42": that entry and its chain proof
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import date
from typing import Any

CSV_COLUMNS = (
    "seq",
    "time",
    "user",
    "role",
    "action",
    "query",
    "answer",
    "documents",
    "cited",
    "hash",
    "prev",
)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula (=HYPERLINK(...), +cmd, @SUM)
    gets a leading apostrophe, the usual escape, so it is shown as typed."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    if text.startswith(_FORMULA_START) and not isinstance(value, int | float):
        return "'" + text
    return text


def to_csv(entries: Iterable[dict[str, Any]]) -> bytes:
    """CSV with the common columns first and any other field after; lists as JSON. UTF-8 with BOM
    so spreadsheet programs read Japanese correctly."""
    rows = list(entries)
    extra = sorted({k for e in rows for k in e} - set(CSV_COLUMNS))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CSV_COLUMNS, *extra])
    for entry in rows:
        writer.writerow([_cell(entry.get(k)) for k in (*CSV_COLUMNS, *extra)])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def entry_link(seq: int) -> str:
    """A link to one entry on the workbench page, which shows it with its chain proof (relative,
    so it works under any base path; the workbench is never a user's default page, whose URL
    would be the root)."""
    return f"workbench?seq={int(seq)}"


def recent_months(today: date, count: int) -> list[str]:
    """'YYYY-MM' for this month and the `count - 1` before it, newest first."""
    year, month, out = today.year, today.month, []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out
