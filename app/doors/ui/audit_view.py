"""Filter and export audit entries for the auditor's page (pure functions, no Streamlit).

Usage:
    shown = filter_entries(entries, users={"alice"}, actions={"ask"}, text="leave")
    csv_bytes = to_csv(shown)  # JSON Lines come from the service's audited export
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterable
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


def entry_date(entry: dict[str, Any]) -> date | None:
    try:
        return date.fromisoformat(str(entry.get("time", ""))[:10])
    except ValueError:
        return None


def filter_entries(
    entries: Iterable[dict[str, Any]],
    users: Collection[str] = (),
    actions: Collection[str] = (),
    start: date | None = None,
    end: date | None = None,
    text: str = "",
) -> list[dict[str, Any]]:
    """Entries matching every given filter (an empty filter matches all); newest first."""
    needle = text.strip().lower()
    out = []
    for entry in entries:
        if users and entry.get("user") not in users:
            continue
        if actions and entry.get("action") not in actions:
            continue
        day = entry_date(entry)
        if (start and (day is None or day < start)) or (end and (day is None or day > end)):
            continue
        if needle and needle not in f"{entry.get('query', '')}\n{entry.get('answer', '')}".lower():
            continue
        out.append(entry)
    return sorted(out, key=lambda e: e.get("seq", 0), reverse=True)


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
