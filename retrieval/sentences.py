"""Where the sentences of a passage begin and end, as offsets into its text (so a quote is an
exact substring): English and Japanese, abbreviations and initials kept inside their sentence.

Usage:
    text = "Dr. Smith arrived in 1998. 彼は医者だ。"
    [text[s:e] for s, e in sentence_spans(text)]  # ["Dr. Smith arrived in 1998.", "彼は医者だ。"]
"""

from __future__ import annotations

import re

# Sentence ends: 。！？ (with any closing bracket), or . ! ? before a space and a capital, digit,
# quote or Japanese character; a blank line; a line break after closing punctuation or before a bullet.
_BOUNDARY = re.compile(
    r"[。！？][」』）)]*"
    r"|[.!?][\"'”’)\]]*\s+(?=[A-Z0-9\"“'‘(\[\u3040-\u30ff\u3400-\u9fff])"
    r"|\n\s*\n"
    r"|(?<=[.:;。：；])\s*\n"
    r"|\n(?=\s*(?:[-•・*●◆■]|\(?\d{1,2}[.)）]))"
)
# Abbreviations and initials ("Dr.", "U.S.", "J. R. R.") do not end a sentence.
_ABBREVIATION = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Gen|Col|Lt|Sgt|Capt|Rev|Mt|Ft|No|Co|Corp|Inc|Ltd|vs|etc|"
    r"approx|est|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|e\.g|i\.e|U\.S|U\.K)|\b[A-Z])\.$"
)

def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, trimmed of surrounding space, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if match.group().startswith(".") and _ABBREVIATION.search(text[start : match.start() + 1]):
            continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out
