"""Plain text measures shared by chunking, context assembly and evidence: a tokenizer-free
token estimate, joining pieces without spaces inside Japanese, and sentence splitting.

Usage:
    estimate_tokens("年次有給休暇 annual leave")  # CJK characters count 1, Latin words ~1.3
    split_sentences("第1条 目的。本規則は… It applies. To all.")
"""

from __future__ import annotations

import math
import re

from base.cjk import CJK, is_cjk

_CJK_CHAR = re.compile(f"[{CJK}]")
_LATIN_WORD = re.compile(rf"[^\s{CJK}]+")
# A sentence ends after 。！？ (with any closing bracket), or after . ! ? followed by space.
_SENTENCE_END = re.compile(
    r"(?<=[。！？!?][」』）)])|(?<=[。！？])(?![」』）)])|(?<=[.!?])\s+(?=\S)"
)


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: CJK characters count 1, Latin words ~1.3."""
    cjk = len(_CJK_CHAR.findall(text))
    words = len(_LATIN_WORD.findall(text))
    return cjk + math.ceil(words * 1.3)


def join_text(left: str, right: str, sep: str = " ") -> str:
    """Join two pieces without putting a space between CJK characters."""
    if not left:
        return right
    if not right:
        return left
    if sep == " " and (is_cjk(left[-1]) or is_cjk(right[0])):
        return left + right
    return left + sep + right


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`: cut after 。！？ (with a closing bracket) or after . ! ? and a space."""
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text.strip())
    # A line break inside Japanese text is layout, not meaning; inside English it is a space.
    text = re.sub(rf"(?<=[{CJK}])\n(?=[{CJK}])", "", text)
    text = text.replace("\n", " ")
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
