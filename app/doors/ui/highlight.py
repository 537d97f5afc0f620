"""Mark the query's words inside a passage, for citations and search results.

Usage:
    html = highlight_html("Employees get 20 days of leave.", "how many leave days")
    # 'Employees get 20 <mark>days</mark> of <mark>leave</mark>.'
"""

from __future__ import annotations

import html
import re

from base.cjk import JAPANESE

_LATIN = re.compile(r"[0-9A-Za-z\u00C0-\u024F]{3,}")
_CJK = re.compile(f"[{JAPANESE}]{{2,}}")
_STOP = frozenset(
    "the and for are was were what which who whom whose how why when where does did has have had "
    "that this these those with from into about than then there their they them you your "
    "our".split()
)


def query_terms(query: str) -> list[str]:
    """Latin words of 3+ letters (no stop words) and, since Japanese has no spaces, CJK bigrams."""
    terms = {w.lower() for w in _LATIN.findall(query) if w.lower() not in _STOP}
    for run in _CJK.findall(query):
        terms.update(run[i : i + 2] for i in range(len(run) - 1))
    return sorted(terms, key=len, reverse=True)


def match_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Merged (start, end) character spans of `text` that match a query term."""
    lowered = text.lower()
    spans: list[tuple[int, int]] = []
    for term in query_terms(query):
        is_word = term.isascii()
        start = lowered.find(term)
        while start != -1:
            end = start + len(term)
            # Latin terms match whole-word prefixes only ("leave" in "leaves", not in "cleave").
            if not is_word or start == 0 or not lowered[start - 1].isalnum():
                spans.append((start, end))
            start = lowered.find(term, start + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight_html(text: str, query: str) -> str:
    """`text` HTML-escaped, with query terms wrapped in <mark>. Safe to render as HTML."""
    # One line of HTML, whatever the line endings: a blank line would end the HTML block and let
    # Markdown (images, links) through in whatever followed it.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    position = 0
    for start, end in match_spans(text, query):
        out.append(html.escape(text[position:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        position = end
    out.append(html.escape(text[position:]))
    return "".join(out).replace("\n", "<br>")
