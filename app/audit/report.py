"""A group's monthly audit report as a file an auditor downloads: CSV (one tidy table:
section, name, value, detail) and a printable HTML page with its charts drawn as inline SVG
(no script, no font, no image from anywhere: it opens offline and prints as it shows).
Every string from the log (names, questions, paths) is escaped.

Usage:
    figures = group_month(index, "hr", "2026-12")
    csv_bytes = report_csv(figures, names={"3f9c…": "hr/leave.pdf"})
    html_bytes = report_html(figures, names, lang="ja")
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping, Sequence

from app.audit.analytics import GroupMonth
from app.audit.log import _safe_cell

FIGURES = ("questions", "people", "documents", "shows", "refusals", "alerts")
_WORDS = {
    "title": ("kura audit report", "kura 監査レポート"),
    "group": ("Group", "グループ"),
    "month": ("Month", "月"),
    "questions": ("Questions and searches shown this group's documents", "このグループの文書が示された質問・検索"),
    "people": ("People shown its documents", "文書を示された人数"),
    "documents": ("Its documents shown", "示された文書数"),
    "shows": ("Showings (passages of a document in one answer, search, preview or export)",
              "表示回数(回答・検索・プレビュー・エクスポートごと)"),
    "refusals": ("Refusals and denials of its members", "メンバーへの拒否"),
    "alerts": ("Alerts naming the group", "このグループに関するアラート"),
    "per_day": ("Questions and searches per day", "日別の質問・検索"),
    "per_person": ("Showings per person", "人別の表示回数"),
    "per_document": ("Showings per document", "文書別の表示回数"),
    "alert_list": ("Alerts", "アラート"),
    "none": ("none", "なし"),
    "source": (
        "Counted from the audit log's index; each figure can be recounted from the log (kura audit export).",
        "監査ログの索引から集計。各数値は監査ログ(kura audit export)から数え直せます。",
    ),
}


def _w(key: str, lang: str) -> str:
    english, japanese = _WORDS[key]
    return japanese if lang == "ja" else english


def report_csv(month: GroupMonth, names: Mapping[str, str]) -> bytes:
    """One table (section, name, value, detail), formula-safe cells, UTF-8 with BOM for
    spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "name", "value", "detail"])
    writer.writerow(["report", "group", month.group, ""])
    writer.writerow(["report", "month", month.month, ""])
    for key, value in month.figures().items():
        writer.writerow(["figure", key, value, ""])
    for day, n in month.days:
        writer.writerow(["day", day, n, ""])
    for person, n in month.by_person:
        writer.writerow(["person", _safe_cell(person), n, ""])
    for doc, n in month.by_document:
        writer.writerow(["document", doc, n, _safe_cell(names.get(doc, ""))])
    for seq, stamp, rule, subject in month.alert_rows:
        writer.writerow(["alert", seq, rule, _safe_cell(f"{stamp} {subject}")])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _bars(rows: Sequence[tuple[str, int]], width: int = 640, bar: int = 18) -> str:
    """Horizontal bars, one per row, labelled; an SVG string."""
    if not rows:
        return ""
    top = max(n for _, n in rows) or 1
    label_w, height = 220, bar * len(rows) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (name, n) in enumerate(rows):
        y = i * bar + 2
        length = max(1, int((width - label_w - 60) * n / top))
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar - 6}" text-anchor="end" font-size="12">'
            f"{html.escape(name[:40])}</text>"
            f'<rect x="{label_w}" y="{y + 2}" width="{length}" height="{bar - 5}" fill="#4a6fa5"/>'
            f'<text x="{label_w + length + 4}" y="{y + bar - 6}" font-size="12">{n}</text>'
        )
    return "".join(parts) + "</svg>"


def _columns(rows: Sequence[tuple[str, int]], width: int = 680, height: int = 160) -> str:
    """Vertical bars over the days of the month; an SVG string."""
    if not rows:
        return ""
    top = max(n for _, n in rows) or 1
    step = max(4, (width - 40) // max(1, len(rows)))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 30}" role="img">']
    for i, (day, n) in enumerate(rows):
        h = max(1, int(height * n / top))
        x = 30 + i * step
        parts.append(
            f'<rect x="{x}" y="{height - h + 10}" width="{step - 2}" height="{h}" fill="#4a6fa5">'
            f"<title>{html.escape(day)}: {n}</title></rect>"
            f'<text x="{x}" y="{height + 24}" font-size="9">{html.escape(day[8:10])}</text>'
        )
    parts.append(f'<text x="0" y="20" font-size="11">{top}</text>')
    return "".join(parts) + "</svg>"


def report_html(month: GroupMonth, names: Mapping[str, str], lang: str = "en") -> bytes:
    """A printable page: the figures, then per day, per person and per document charts."""
    e = html.escape
    figure_rows = "".join(
        f"<tr><td>{e(_w(k, lang))}</td><td class=n data-figure={k}>{v}</td></tr>" for k, v in month.figures().items()
    )
    documents = [(names.get(d) or d[:12], n) for d, n in month.by_document[:30]]
    alerts = "".join(
        f"<li>#{seq} {e(stamp)} · {e(rule)} · {e(subject)}</li>" for seq, stamp, rule, subject in month.alert_rows
    ) or f"<li>{e(_w('none', lang))}</li>"
    page = f"""<!doctype html>
<html lang="{e(lang)}"><head><meta charset="utf-8">
<title>{e(_w('title', lang))}: {e(month.group)} {e(month.month)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #111; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #999; padding: 4px 8px; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
h2 {{ margin-top: 1.6em; font-size: 1.1em; }}
@media print {{ body {{ margin: 0; }} h2 {{ break-after: avoid; }} svg {{ break-inside: avoid; }} }}
</style></head><body>
<h1>{e(_w('title', lang))}</h1>
<p>{e(_w('group', lang))}: <b>{e(month.group)}</b> · {e(_w('month', lang))}: <b>{e(month.month)}</b></p>
<table>{figure_rows}</table>
<h2>{e(_w('per_day', lang))}</h2>{_columns(month.days) or e(_w('none', lang))}
<h2>{e(_w('per_person', lang))}</h2>{_bars(month.by_person[:30]) or e(_w('none', lang))}
<h2>{e(_w('per_document', lang))}</h2>{_bars(documents) or e(_w('none', lang))}
<h2>{e(_w('alert_list', lang))}</h2><ul>{alerts}</ul>
<p><small>{e(_w('source', lang))}</small></p>
</body></html>
"""
    return page.encode("utf-8")
