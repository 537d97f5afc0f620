"""Checking an answer's [n] citations against the passages it was given.

Small models cite passages that do not exist, or cite a real passage for a sentence it does
not support. After generation each [n] is checked: a number with no passage is invalid; a
passage that shares no content word with the sentence citing it is flagged as unsupported;
an answer left without one valid, supported citation is marked unsupported.

Usage:
    check = check_citations("Staff get 20 days of leave [1]. [7]", {1: "Annual leave is 20 days."})
    check.valid == [1]; check.invalid == [7]; check.unsupported is False
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from base.cjk import KANJI_KATAKANA

CITATION = re.compile(r"\[(\d{1,3})\]")
# Sentence ends: ASCII punctuation needs a space after it (so 3.5 is not split), CJK does not.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^\[\s])|(?<=[。！？])\s*(?=[^\[\s])|\n+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+|\d+(?:[.,]\d+)?")
_CJK_RUN = re.compile(f"[{KANJI_KATAKANA}]+")  # kanji and katakana: the content in Japanese
_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that these "
    "those there their they them he she his her we our you your i me my not no nor so than then too very can could "
    "will would shall should may might must do does did done has have had having which who whom whose what when "
    "where why how all any both each few more most other some such only own same also just into over under about "
    "after before between through during above below up down out off again further once here per via according "
    "passage passages document documents say says said".split()
)


@dataclass(frozen=True)
class CitationCheck:
    valid: list[int]  # cited, exist, and share content with the citing sentence
    invalid: list[int]  # cited numbers with no such passage
    unsupported_citations: list[int]  # exist, but share no content word with the citing sentence
    unsupported: bool  # the answer has no valid citation at all

    @property
    def flagged(self) -> bool:
        return bool(self.invalid or self.unsupported_citations or self.unsupported)


def content_words(text: str) -> set[str]:
    """Lower-cased English content words (crudely stemmed) and Japanese kanji/katakana bigrams."""
    words = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS or (len(word) < 3 and not word.isdigit()):
            continue
        words.add(
            word[:6] if not word[0].isdigit() else word
        )  # "policies"/"policy" -> "polici"/"policy"
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            words.add(run)
        words.update(run[i : i + 2] for i in range(len(run) - 1))
    return words


def _stem_match(a: set[str], b: set[str]) -> bool:
    if a & b:
        return True
    # "leave"/"leaves", "employ"/"employee": a shared 5-letter start counts as the same word.
    starts = {w[:5] for w in b if len(w) >= 5}
    return any(len(w) >= 5 and w[:5] in starts for w in a)


def citing_sentences(text: str) -> list[tuple[str, list[int]]]:
    """Each sentence of the answer with the passage numbers it cites."""
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    out = []
    previous = ""
    for sentence in sentences:
        numbers = [int(n) for n in CITATION.findall(sentence)]
        claim = " ".join(CITATION.sub(" ", sentence).split())
        if numbers and not content_words(claim):  # a bare "[2]." cites the sentence before it
            claim = previous
        out.append((claim, numbers))
        previous = claim
    return out


def check_citations(text: str, passages: Mapping[int, str]) -> CitationCheck:
    """Check every [n] in `text` against `passages` (number -> passage text)."""
    valid: list[int] = []
    invalid: list[int] = []
    weak: list[int] = []
    passage_words = {n: content_words(t) for n, t in passages.items()}
    for claim, numbers in citing_sentences(text):
        claim_words = content_words(claim)
        for n in numbers:
            if n not in passages:
                _add(invalid, n)
            elif _stem_match(claim_words, passage_words[n]):
                _add(valid, n)
            else:
                _add(weak, n)
    weak = [n for n in weak if n not in valid]  # supported by another sentence that cites it
    return CitationCheck(sorted(valid), sorted(invalid), sorted(weak), unsupported=not valid)


def strip_invalid(text: str, invalid: list[int]) -> str:
    """The answer without citation markers that point at no passage."""
    bad = set(invalid)
    return CITATION.sub(lambda m: "" if int(m.group(1)) in bad else m.group(0), text)


def _add(numbers: list[int], n: int) -> None:
    if n not in numbers:
        numbers.append(n)


def sentence_support(text: str, passages: Mapping[int, str]) -> list[tuple[str, bool]]:
    """The answer cut into sentences (concatenated they give `text` back, separators included),
    each with whether it carries a citation of a passage that supports it; for the UI to mark
    the sentences that nothing supports."""
    passage_words = {n: content_words(t) for n, t in passages.items()}
    pieces: list[tuple[str, bool]] = []
    start, previous = 0, ""
    for end in [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]:
        piece = text[start:end]
        start = end
        if not piece:
            continue
        numbers = [int(n) for n in CITATION.findall(piece)]
        claim = " ".join(CITATION.sub(" ", piece).split())
        bare = bool(numbers) and not content_words(claim)
        if bare:  # a bare "[2]." cites the sentence before it
            claim = previous
        words = content_words(claim)
        if not words and not numbers:  # no claim to support ("Sure!", a blank line)
            pieces.append((piece, True))
            continue
        supported = any(n in passage_words and _stem_match(words, passage_words[n]) for n in numbers)
        if bare and supported and pieces:
            pieces[-1] = (pieces[-1][0], True)
        pieces.append((piece, supported or bare))
        previous = claim
    return pieces
