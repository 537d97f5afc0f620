"""The support check: is each sentence of a generated answer backed by one of its passages?

Checked by content, never by `[n]` marks: a sentence is supported when one window of a passage
(one sentence, or two adjacent ones) holds every number and date of the sentence, every name,
and most of its content words (English stems, Japanese Sudachi words: the terms search uses),
with the same polarity (a "not" / 「ない」 the window lacks, or the reverse, breaks it). A
number, date or name no window holds is a missing fact, never supported, so a contradiction
("opens at 10:30" against "opens at 11:30") is always unsupported. Sentences with nothing to
check (a bare "[2]", "Sources:") get no verdict. The answer is supported when it has at least
one checked sentence and every checked sentence is supported. It checks grounding, not
relevance: a true sentence that does not answer the question is still supported.

Usage:
    verdict = check_support("Leave is 10 days [1].", ["Annual leave is 10 days."], SparseEncoder())
    verdict.supported, [s.missing for s in verdict.sentences]
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.evidence import QUESTION_FRAME
from retrieval.sentences import sentence_spans
from retrieval.sparse import ENGLISH_STOPWORDS, SparseEncoder

MIN_CONTENT = 0.75  # share of a sentence's content words one window must hold (docs/evidence.md)
MIN_QUESTION = 0.5  # share of the question's terms a supporting window must hold, when the question is given

_CITATION = re.compile(r"\s*[\[［]\d{1,3}(?:\s*[,、，]\s*\d{1,3})*[\]］]")
_MARKUP = re.compile(r"[*_`#>]+|^\s*(?:[-•・*]|\d+[.)])\s+", re.M)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_KANJI_NUMBER = re.compile(r"[〇一二三四五六七八九十百千万億]+")
_KANJI_DIGIT = {c: i for i, c in enumerate("〇一二三四五六七八九")}
_KANJI_UNIT = {"十": 10, "百": 100, "千": 1000}
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000"}
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.I)
_MONTH = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|december)\b", re.I
)
_NAME_EN = re.compile(r"\b[A-Z][A-Za-z'’-]*[A-Za-z]\b|\b[A-Z]\b")
_NEGATION_EN = re.compile(r"\b(not|no|never|neither|nor|none|cannot|without)\b|n't\b", re.I)
_NEGATION_JA = re.compile(r"(?:(?<![少危幼切])な[いくかけ]|ません|ず(?:に|、|。|$)|無い|無く)")
_JA_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
# Written numbers, English words and single Japanese characters, punctuation dropped.
_PIECE = re.compile(
    r"\d+(?:[.,:]\d+)*|[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]|[^\W\d_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+"
)
_KATAKANA = re.compile(r"[\u30a0-\u30ff]{2,}")
# Capitalised words that start English sentences without naming anything.
_NOT_NAMES = frozenset(
    "a an the this that these those it its there here he she they we i you his her their our my "
    "in on at by for from with of to as and but or if when while after before since during "
    "however also yes no according answer".split()
)
_MONTH_TERMS = frozenset("januari februari march april may june juli august septemb octob novemb decemb".split())
_FRAME_WORDS = frozenset("answer answers passage passages document documents question according text source".split())
# Words that frame an answer rather than claim anything ("The answer is…", 「資料によると」).
_FRAME = frozenset(
    "answer passag document question accord mention text sourc 回答 答え 資料 質問 文書 記載 依る".split()
)


@dataclass(frozen=True)
class SentenceSupport:
    """The verdict on one answer sentence. `supported` is None when the sentence holds nothing
    to check; `passage` is the index of the passage that supports it (or came closest)."""

    sentence: str
    supported: bool | None
    passage: int | None
    missing: tuple[str, ...] = ()  # facts and words no passage window holds
    reason: str = ""


@dataclass(frozen=True)
class SupportVerdict:
    """Per-sentence verdicts, in answer order, and the overall one (`supported`)."""

    sentences: tuple[SentenceSupport, ...]

    @property
    def checked(self) -> list[SentenceSupport]:
        return [s for s in self.sentences if s.supported is not None]

    @property
    def supported(self) -> bool:
        checked = self.checked
        return bool(checked) and all(s.supported for s in checked)

    @property
    def unsupported(self) -> list[SentenceSupport]:
        return [s for s in self.sentences if s.supported is False]


@dataclass(frozen=True)
class _Facts:
    numbers: frozenset[str]
    names: frozenset[str]
    words: frozenset[str]
    negated: bool
    text: str  # NFKC form, where katakana names are looked up as written
    anchors: frozenset[tuple[str, str]]  # (number, neighbour): see _anchors
    plain: str  # see _plain
    sentences: tuple[tuple[frozenset[str], bool], ...]  # (words, negated) of each sentence

    def __add__(self, other: _Facts) -> _Facts:
        """The facts of two adjacent sentences read together (Japanese sentences join unspaced)."""
        sep = "" if self.text[-1:] in "。！？」』）" or _JA_CHAR.match(self.text[-1:]) else " "
        return _Facts(
            self.numbers | other.numbers,
            self.names | other.names,
            self.words | other.words,
            self.negated or other.negated,
            f"{self.text}{sep}{other.text}",
            self.anchors | other.anchors,
            f"{self.plain}{sep}{other.plain}",
            self.sentences + other.sentences,
        )


def check_support(
    answer: str,
    passages: Sequence[str],
    sparse: SparseEncoder,
    question: str | None = None,
    min_content: float = MIN_CONTENT,
    min_question: float = MIN_QUESTION,
) -> SupportVerdict:
    """Per-sentence verdicts for `answer` against the texts of the `passages` it was given.

    With the `question`, only a window that holds `min_question` of the question's terms can
    support a sentence (a true sentence about something else is not an answer), and a sentence
    that adds nothing to the question (a restatement) gets no verdict.
    """
    if not 0 < min_content <= 1 or not 0 <= min_question <= 1:
        raise ValueError(f"min_content and min_question are shares in [0, 1], not {min_content}, {min_question}")
    asked = _facts(question, sparse) if question else None
    asked_terms = (asked.words | asked.names) - QUESTION_FRAME if asked else frozenset()
    windows = [
        (i, facts)
        for i, text in enumerate(passages)
        for facts in _windows(text, sparse)
        if not asked_terms or len(asked_terms & facts.words) >= min_question * len(asked_terms)
    ]
    verdicts = []
    for start, end in sentence_spans(answer):
        raw = answer[start:end]
        claim = _MARKUP.sub(" ", _CITATION.sub("", raw)).strip()
        facts = _facts(claim, sparse)
        if not (facts.numbers or facts.names or facts.words):
            verdicts.append(SentenceSupport(raw, None, None, reason="nothing to check"))
            continue
        if asked and not (facts.numbers - asked.numbers or facts.names - asked.names or facts.words - asked.words):
            verdicts.append(SentenceSupport(raw, None, None, reason="it restates the question"))
            continue
        # Quoted word for word (an evidence quote, or a copied clause): supported as it stands,
        # whatever a negation elsewhere in its sentence says.
        copied = next((i for i, w in windows if _plain(claim) in w.plain), None)
        if copied is not None:
            verdicts.append(SentenceSupport(raw, True, copied, reason="quoted verbatim"))
            continue
        verdicts.append(_judge(raw, facts, windows, min_content))
    return SupportVerdict(tuple(verdicts))


def _judge(raw: str, facts: _Facts, windows: list[tuple[int, _Facts]], min_content: float) -> SentenceSupport:
    best: tuple[float, int, tuple[str, ...], str] | None = None
    for index, window in windows:
        missing_facts = (
            sorted(facts.numbers - window.numbers)
            + sorted(n for n in facts.names if n not in window.words and n not in window.text)
            + sorted(_misplaced(facts, window))
        )
        missing_words = sorted(facts.words - window.words)
        share = 1 - len(missing_words) / len(facts.words) if facts.words else 1.0
        if not missing_facts and share >= min_content:
            # Polarity is read in the window's sentence that says most of the claim: a "not"
            # in its neighbour is about something else.
            closest = max(window.sentences, key=lambda sentence: len(sentence[0] & facts.words))
            if facts.negated == closest[1]:
                return SentenceSupport(raw, True, index)
            reason = "the passage says it with the opposite polarity (a negation differs)"
        elif missing_facts:
            reason = "names, numbers or dates the passages do not hold: " + ", ".join(missing_facts)
        else:
            reason = f"only {share:.0%} of its content words are in one place of the passages"
        closeness = share - len(missing_facts)  # fewest missing facts first, then most words
        if best is None or closeness > best[0]:
            best = (closeness, index, tuple(missing_facts + missing_words), reason)
    if best is None:
        return SentenceSupport(raw, False, None, reason="no passage to check against")
    _, index, missing, reason = best
    return SentenceSupport(raw, False, index, missing, reason)


def _plain(text: str) -> str:
    """NFKC, lowercase, whitespace collapsed: the form in which a copied text is recognised."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _windows(text: str, sparse: SparseEncoder) -> list[_Facts]:
    """Each sentence, and each two adjacent ones: a fact and its subject are usually this close,
    and a number elsewhere in a long passage must not vouch for a sentence about something else."""
    singles = [_facts(text[s:e], sparse) for s, e in sentence_spans(text)]
    return singles + [a + b for a, b in zip(singles, singles[1:], strict=False)]


def _facts(text: str, sparse: SparseEncoder) -> _Facts:
    text = unicodedata.normalize("NFKC", text)
    japanese = bool(_JA_CHAR.search(text))
    numbers = {_canonical_number(m.group()) for m in _NUMBER.finditer(text)}
    numbers |= {str(v) for m in _KANJI_NUMBER.finditer(text) if (v := _kanji_value(m.group()))}
    numbers |= {_NUMBER_WORDS[m.group().lower()] for m in _NUMBER_WORD.finditer(text)}
    numbers |= {m.group().lower()[:3] for m in _MONTH.finditer(text)}
    names = {
        t
        for m in _NAME_EN.finditer(text)
        if m.group().lower() not in _NOT_NAMES and not _NUMBER_WORD.fullmatch(m.group())
        for t in sparse.tokens(m.group())
        if t not in _NUMBER_WORDS
    }
    if japanese:
        # Katakana names are compared as written: Sudachi splits and normalises a name read
        # alone differently from the same name inside a sentence.
        names |= {m.group() for m in _KATAKANA.finditer(text)}
    # Numbers are checked as numbers and months as dates, not again as words.
    words = frozenset(
        w
        for w in sparse.tokens(text)
        if not w.isdigit() and w not in _NUMBER_WORDS and w not in _MONTH_TERMS and w not in _FRAME
    )
    negated = bool((_NEGATION_JA if japanese else _NEGATION_EN).search(text))
    return _Facts(
        frozenset(numbers),
        frozenset(names - _FRAME - _MONTH_TERMS),
        words,
        negated,
        text,
        _anchors(text),
        _plain(text),
        ((words, negated),),
    )


def _anchors(text: str) -> frozenset[tuple[str, str]]:
    """Each written number with what stands next to it: the nearest English word on each side
    (stopwords skipped) or the two nearest Japanese characters."""
    pieces = [p.lower() for p in _PIECE.findall(text) if p.lower() not in ENGLISH_STOPWORDS | _FRAME_WORDS]
    out = set()
    for i, piece in enumerate(pieces):
        if not piece[0].isdigit():
            continue
        number = _canonical_number(piece)
        left, right = pieces[max(0, i - 2) : i], pieces[i + 1 : i + 3]
        if left:
            out.add((number, "".join(left[-2:]) if _JA_CHAR.match(left[-1]) else left[-1]))
        if right:
            out.add((number, "".join(right[:2]) if _JA_CHAR.match(right[0]) else right[0]))
    return frozenset(out)


def _misplaced(claim: _Facts, window: _Facts) -> list[str]:
    """Numbers the claim puts beside something that the window puts beside another number:
    "Crimea in 1350" against "Crimea in 1347 … Norway in 1350". A reordered paraphrase ("enrolled
    in 1875" against "In 1875, Tesla enrolled") is not misplaced: its neighbours touch no number."""
    out = []
    for number, neighbour in claim.anchors:
        there = {n for n, w in window.anchors if w == neighbour}
        if there and number not in there:
            out.append(f"{number} (in another place)")
    return sorted(set(out))


def _canonical_number(raw: str) -> str:
    """ "1,000" and "1000" are one number; "3.50" and "3.5" too; "11:30" stays a time."""
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", raw):
        raw = raw.replace(",", "")
    if re.fullmatch(r"\d+\.\d+", raw):
        raw = raw.rstrip("0").rstrip(".")
    return raw.lstrip("0") or "0"


def _kanji_value(run: str) -> int:
    """十日 → 10, 二十三 → 23, 三千五百 → 3500, 一〇 → 10 (digit by digit); 0 when not a number."""
    if all(c in _KANJI_DIGIT for c in run):
        return int("".join(str(_KANJI_DIGIT[c]) for c in run))
    total, section, digit = 0, 0, 0
    for c in run:
        if c in _KANJI_DIGIT:
            digit = _KANJI_DIGIT[c]
        elif c in _KANJI_UNIT:
            section += (digit or 1) * _KANJI_UNIT[c]
            digit = 0
        else:  # 万 or 億
            total += ((section + digit) or 1) * (10_000 if c == "万" else 100_000_000)
            section, digit = 0, 0
    return total + section + digit
