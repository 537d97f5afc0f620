"""Which characters are Japanese (or other CJK) text: one definition for every layer.

Japanese has no spaces, so tokenizing, joining lines, counting tokens and choosing a language
all hinge on these classes; seven slightly different copies once disagreed (one missed the
CJK extension A block and half-width katakana).

Usage:
    is_japanese("年次有給休暇は何日ですか")   # True
    question_language("How many days?")       # "en"
    re.compile(f"[{CJK}]")                    # any character laid out without spaces
"""

from __future__ import annotations

import re

# Hiragana, katakana with the prolonged sound mark, half-width katakana.
KANA = "\u3040-\u309f\u30a0-\u30ff\uff66-\uff9f"
# CJK ideographs (extension A, unified, compatibility) and the iteration mark 々.
KANJI = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005"
# The letters of Japanese text: what becomes a token. Punctuation is outside on purpose.
JAPANESE = KANA + KANJI
# What carries content in a Japanese sentence (hiragana is mostly grammar).
KANJI_KATAKANA = "\u30a0-\u30ff\uff66-\uff9f" + KANJI
# 、。「」 and the ideographic space; full-width ！（０Ａ and friends.
CJK_PUNCTUATION = "\u3000-\u303f"
FULLWIDTH_FORMS = "\uff01-\uff60"
# Every character that is laid out without spaces between its neighbours.
CJK = JAPANESE + CJK_PUNCTUATION + FULLWIDTH_FORMS

_JAPANESE_CHAR = re.compile(f"[{JAPANESE}]")
_CJK_CHAR = re.compile(f"[{CJK}]")


def is_cjk(char: str) -> bool:
    """Whether one character is laid out without spaces (kana, kanji, CJK punctuation, full-width)."""
    return bool(_CJK_CHAR.match(char))


def japanese_share(text: str) -> float:
    """Fraction of the non-space characters of `text` that are Japanese (kana or kanji)."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(1 for c in chars if _JAPANESE_CHAR.match(c)) / len(chars)


def is_japanese(text: str) -> bool:
    """Text is Japanese when a fifth of its characters are kana/kanji (a product name in Latin
    letters inside a Japanese question must not flip it to English)."""
    return japanese_share(text) >= 0.2


def question_language(text: str) -> str:
    """'ja' when the text contains any Japanese letter, else 'en': the language an answer,
    a prompt and an abstention are written in."""
    return "ja" if _JAPANESE_CHAR.search(text) else "en"
