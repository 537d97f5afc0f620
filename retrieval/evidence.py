"""The evidence quote: the sentence(s) of the retrieved passages that answer a question, verbatim.

Lexical and fast (no model runs; ~2 ms a question). Each sentence of the passages gets a score
from a few signals, weighed by a linear model fit on a tuning sample of SQuAD / JSQuAD questions
(disjoint from the sample the measurements in docs/evidence.md report): how much of the question
the sentence covers (each question term weighted by its rarity among the retrieved sentences, so
the topic words every passage shares count little), the same for the sentence with its
neighbours and for its whole passage, question phrases it repeats, whether it holds what the
question asks for (a year for "when", a number for "how many", a name for "who"), and its
passage's rank. Terms are kura's search terms (`SparseEncoder`: English stems, Japanese Sudachi
words, plus character bigrams). The quote is the one or two sentences most likely to hold the
answer together: at most about 60 English words or 150 Japanese characters, exact substrings of
their passages. A second linear model turns the best sentence's signals into the chance that the
quote answers the question; below `min_score` the finder abstains and the closest passages
become related reading.

Usage:
    evidence = find_evidence("When was the treaty signed?", passages, SparseEncoder())
    for quote in evidence.quotes:
        print(quote.text, quote.passage.location)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from base.cjk import is_japanese
from retrieval.passage import Passage
from retrieval.sentences import sentence_spans
from retrieval.sparse import SparseEncoder

MAX_WORDS = 60
MAX_JA_CHARS = 150
RELATED_PASSAGES = 3
PAIR_POOL = 6  # the quote's sentences are chosen among this many best
WINDOW_TYPE_BONUS = 0.5  # a clause window of an over-long sentence that holds the asked-for kind
# Operating points on the answer chance: above them a quote is presented as the answer. Chosen on
# the tuning sample (seed 7) as the lowest that presents at most 8% of unanswerable questions'
# quotes as answers, a margin under the 10% goal for the gap to unseen questions (docs/evidence.md).
# Below them the quote is still shown, flagged "may not answer" (app/service/answer.py).
MIN_SCORE_EN = 0.65
MIN_SCORE_JA = 0.54

# Words that frame a question rather than name its topic ("What is the name of…", 「何という」):
# the answer sentence rarely repeats them. Search terms (stems / Sudachi normalised forms).
QUESTION_FRAME = frozenset(
    "name call type kind year mani much percent percentag number amount refer term known one "
    "為る 居る 有る 成る 言う 呼ぶ 何 こと 事 物 名 名前 どう 其の おく 出来る 答える 漢字 文字 よる".split()
)

_NUMBER_Q_EN = re.compile(
    r"\bhow (many|much|long|old|far|large|big|tall|high|often|fast|deep|wide|heavy)\b"
    r"|\bwhat (percentage|percent|proportion|number|amount|size|population)\b",
    re.I,
)
_DATE_Q_EN = re.compile(
    r"\bwhen\b|\b(what|which|in what) (year|years|date|day|month|century|decade|time|period|era|season)\b",
    re.I,
)
_PERSON_Q_EN = re.compile(r"\bwho(m|se)?\b", re.I)
_NUMBER_Q_JA = re.compile(
    r"何(人|個|回|本|%|パーセント|割|倍|歳|番|位|種|台|件|キロ|メートル|トン|円|票|点|匹|頭|社|校|曲|枚|階|度|つ|カ|か|ヶ)"
    r"|いくつ|いくら|どれ(くらい|ほど|だけ)|どのくらい|どの程度"
)
_DATE_Q_JA = re.compile(r"いつ|何(年|月|日|世紀|時代|時|曜)|西暦|年代")
_PERSON_Q_JA = re.compile(r"誰|だれ|何者|人物")

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_NUMBER = re.compile(
    r"\d+|[０-９]+|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|dozen|half)\b|[一二三四五六七八九十百千万億]+",
    re.I,
)
_DATE = re.compile(
    rf"\b(1\d{{3}}|20\d{{2}})s?\b|\b({_MONTHS})\b|\bcentury\b|\d+年|\d+月|\d+日|世紀|[元明大昭平令]\w?\d*年", re.I
)
_CAPITALISED = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+")
_NAME_JA = re.compile(r"[\u30a0-\u30ff]{2,}|[\u4e00-\u9fff]{2,4}(?:氏|王|帝|公|卿)")

# Clause breaks inside an over-long sentence, where a shorter verbatim window may start or end.
_CLAUSE = re.compile(r"[、，,;；:：]\s*")

# The sentence model: signal -> weight (fit by logistic regression on the tuning sample).
SENTENCE_SIGNALS = ("cover", "cover_near", "cover_passage", "phrase", "answer_type", "top_passage",
                    "passage_rank", "first", "length", "share", "novel", "passage_score", "density",
                    "facts_missing")
SENTENCE_WEIGHTS = {
    "en": {
        "cover": 4.11, "cover_near": 1.443, "cover_passage": -1.641, "phrase": 0.387,
        "answer_type": 1.34, "top_passage": 0.089, "passage_rank": 0.517, "first": -0.207, "length": -0.05,
        "share": 0.315, "novel": 0.488, "passage_score": 4.406, "density": -0.155, "facts_missing": -0.541
    },
    "ja": {
        "cover": 1.238, "cover_near": 0.466, "cover_passage": -1.497, "phrase": -0.312,
        "answer_type": 1.477, "top_passage": 0.536, "passage_rank": 1.227, "first": 0.224, "length": -0.323,
        "share": 2.032, "novel": 0.75, "passage_score": 2.996, "density": -0.196, "facts_missing": -0.06
    },
}
# The answer model: signal of the chosen quote -> weight; its logistic is `Evidence.score`.
ANSWER_SIGNALS = ("bias", "sentence_score", "cover_context", "margin", "missing", "pair_cover") + tuple(
    f"best_{k}" for k in SENTENCE_SIGNALS
)
ANSWER_WEIGHTS = {
    "en": {
        "bias": 0.286, "sentence_score": 0.251, "cover_context": -3.011, "margin": 0.638, "missing": -3.865,
        "pair_cover": 0.91, "best_cover": -2.664, "best_cover_near": 4.079, "best_cover_passage": -1.029,
        "best_phrase": 1.909, "best_answer_type": -0.284, "best_top_passage": -0.884, "best_passage_rank":
        1.538, "best_first": 0.208, "best_length": -0.633, "best_share": -0.107, "best_novel": -0.238,
        "best_passage_score": 0.485, "best_density": -0.119, "best_facts_missing": -1.02
    },
    "ja": {
        "bias": 0.286, "sentence_score": -0.45, "cover_context": -4.253, "margin": 0.484, "missing": -3.604,
        "pair_cover": 1.844, "best_cover": 2.624, "best_cover_near": 0.38, "best_cover_passage": 3.014,
        "best_phrase": 0.974, "best_answer_type": 1.066, "best_top_passage": 1.782, "best_passage_rank":
        1.473, "best_first": 0.164, "best_length": -0.441, "best_share": -0.83, "best_novel": 0.448,
        "best_passage_score": -0.731, "best_density": 0.304, "best_facts_missing": -0.418
    },
}


@dataclass(frozen=True)
class Quote:
    """A verbatim piece of one passage: `passage.text[start:end]`."""

    passage: Passage
    rank: int  # position of the passage in the list given (0 = best)
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]


@dataclass(frozen=True)
class Evidence:
    """What the documents say: `quotes` (at most two, in reading order), or none when the
    passages do not answer the question; `related` are the closest passages either way."""

    question: str
    quotes: tuple[Quote, ...]
    related: tuple[Passage, ...]
    score: float  # the chance (0..1) that the best quote answers the question: the abstention signal
    language: str = "en"

    @property
    def abstained(self) -> bool:
        return not self.quotes

    @property
    def text(self) -> str:
        """The quotes joined as they would be read (a space between English sentences)."""
        return ("" if self.language == "ja" else " ").join(q.text for q in self.quotes)


@dataclass
class _Sentence:
    rank: int  # its passage's position
    index: int  # its position within the passage
    start: int
    end: int
    text: str
    terms: list[str]  # search terms in order (phrases are adjacent pairs)
    grams: frozenset[str]  # Japanese character bigrams
    size: int  # words (English) or characters (Japanese)
    signals: dict[str, float]
    score: float = 0.0


@dataclass
class _Question:
    """A question as the scorer sees it: its terms weighted by rarity among the retrieved
    sentences, what kind of answer it asks for, and the numbers and names it mentions."""

    text: str
    japanese: bool
    words: set[str]
    pairs: set[tuple[str, str]]
    kind: str | None
    facts: set[str]
    word_idf: dict[str, float]
    gram_idf: dict[str, float]

    def cover(self, terms: set[str] | frozenset[str], grams: set[str] | frozenset[str]) -> float:
        """Rarity-weighted share of the question found in `terms` (and, for Japanese, bigrams)."""
        words = _covered(self.word_idf, terms)
        return (words + _covered(self.gram_idf, grams)) / 2 if self.japanese else words

    def has_answer_type(self, text: str) -> bool:
        return _has_type(self.kind, text, self.text, self.japanese)


def find_evidence(
    question: str,
    passages: Sequence[Passage],
    sparse: SparseEncoder,
    min_score: float | None = None,
) -> Evidence:
    """The evidence quote for `question` from `passages` (best first, already ACL-filtered).

    `min_score`: the answer chance the quote needs (default: the measured operating point for the
    question's language); below it the result abstains, with the closest passages as related.
    """
    japanese = is_japanese(question)
    language = "ja" if japanese else "en"
    if min_score is None:
        min_score = MIN_SCORE_JA if japanese else MIN_SCORE_EN
    if not 0 <= min_score <= 1:
        raise ValueError(f"min_score is a chance in [0, 1], not {min_score}")
    related = tuple(passages[:RELATED_PASSAGES])
    ranked, answer, analysed = _rank_sentences(question, passages, sparse)
    if analysed is None:
        return Evidence(question, (), related, 0.0, language)
    score = _logistic(ANSWER_WEIGHTS[language], answer)
    if score < min_score:
        return Evidence(question, (), related, score, language)
    quotes = _quote(ranked, passages, analysed, sparse)
    return Evidence(question, quotes, related, score, language)


def _rank_sentences(
    question: str, passages: Sequence[Passage], sparse: SparseEncoder
) -> tuple[list[_Sentence], dict[str, float], _Question | None]:
    """The passages' sentences, best first, each with its signals; the answer model's signals
    for the best one; and the analysed question. Empty when there is nothing to rank."""
    japanese = is_japanese(question)
    language = "ja" if japanese else "en"
    terms = [t for t in sparse.tokens(question) if t not in QUESTION_FRAME]
    q_grams = set(sparse.ngram_tokens(question)) if japanese else set()
    if not passages or not (terms or q_grams):
        return [], {}, None
    by_passage: list[list[_Sentence]] = []
    for rank, passage in enumerate(passages):
        sentences = []
        for index, (start, end) in enumerate(sentence_spans(passage.text)):
            text = passage.text[start:end]
            grams = frozenset(sparse.ngram_tokens(text)) if japanese else frozenset()
            sentences.append(
                _Sentence(rank, index, start, end, text, sparse.tokens(text), grams, _size(text, japanese), {})
            )
        by_passage.append(sentences)
    everything = [s for group in by_passage for s in group]
    words = set(terms)
    q = _Question(
        question,
        japanese,
        words,
        set(zip(terms, terms[1:], strict=False)),
        _answer_type(question, japanese),
        _facts(question, japanese),
        _idf(words, [set(s.terms) for s in everything]),
        _idf(q_grams, [s.grams for s in everything]),
    )
    top_score = passages[0].score
    context_terms: set[str] = set()
    context_grams: set[str] = set()
    for rank, group in enumerate(by_passage):
        passage_terms = {t for s in group for t in s.terms}
        passage_grams = {g for s in group for g in s.grams}
        context_terms |= passage_terms
        context_grams |= passage_grams
        cover_passage = q.cover(passage_terms, passage_grams)
        for i, s in enumerate(group):
            near = group[max(0, i - 1) : i + 2]
            pairs = set(zip(s.terms, s.terms[1:], strict=False))
            s.signals = {
                "cover": q.cover(set(s.terms), s.grams),
                "cover_near": q.cover({t for n in near for t in n.terms}, {g for n in near for g in n.grams}),
                "cover_passage": cover_passage,
                "phrase": len(q.pairs & pairs) / len(q.pairs) if q.pairs else 0.0,
                "answer_type": float(q.has_answer_type(s.text)),
                "top_passage": float(rank == 0),
                "passage_rank": 1.0 / (1 + rank),
                "first": float(i == 0),
                "length": math.log1p(s.size),
                "share": len(words & set(s.terms)) / len(words) if words else 0.0,
                "novel": float(
                    _has_type("name", s.text, question, japanese) or _has_type("number", s.text, question, japanese)
                ),
                "passage_score": passages[rank].score / top_score if top_score > 0 else 0.0,
                "density": _density(s.terms, words),
                "facts_missing": _facts_missing(q.facts, "".join(n.text for n in near).lower()),
            }
            s.score = _linear(SENTENCE_WEIGHTS[language], s.signals)
    everything.sort(key=lambda s: -s.score)
    best = everything[0]
    second = everything[1].score if len(everything) > 1 else 0.0
    pair = everything[:2]
    answer = {
        "bias": 1.0,
        "sentence_score": best.score,
        "cover_context": q.cover(context_terms, context_grams),
        "margin": best.score - second,
        "missing": len(words - context_terms) / len(words) if words else 0.0,
        "pair_cover": q.cover({t for s in pair for t in s.terms}, {g for s in pair for g in s.grams}),
    } | {f"best_{k}": v for k, v in best.signals.items()}
    return everything, answer, q


def _quote(
    ranked: list[_Sentence], passages: Sequence[Passage], q: _Question, sparse: SparseEncoder
) -> tuple[Quote, ...]:
    """The one or two sentences of the best sentence's document most likely to hold the answer
    together (their softmax chances added) that fit the budget, in reading order; a lone sentence
    over the budget is cut to its best clause window. Pairs are drawn from the best few: two
    weaker sentences can beat the best one with a partner when the best is too long to take one."""
    budget = MAX_JA_CHARS if q.japanese else MAX_WORDS
    # One document speaks: a second sentence from another file would read as one statement
    # that no document makes (3-4% of quotes; dropping them costs no coverage, measured).
    document = _document(passages[ranked[0].rank])
    top = [s for s in ranked if _document(passages[s.rank]) == document][:PAIR_POOL]
    chance = [math.exp(s.score - top[0].score) for s in top]
    choice: tuple[float, tuple[_Sentence, ...]] = (chance[0], (top[0],))
    for i, first in enumerate(top):
        for j in range(i + 1, len(top)):
            second = top[j]
            fits = first.size + second.size <= budget and second.text != first.text
            if fits and chance[i] + chance[j] > choice[0]:
                choice = (chance[i] + chance[j], (first, second))
    lead = choice[1][0]
    picked = sorted(choice[1], key=lambda s: (s.rank != lead.rank, s.rank, s.start))
    if len(picked) == 2:
        return tuple(Quote(passages[s.rank], s.rank, s.start, s.end) for s in picked)
    start, end = _fit(lead, passages[lead.rank].text, budget, q, sparse)
    return (Quote(passages[lead.rank], lead.rank, start, end),)


def _fit(sentence: _Sentence, text: str, budget: int, q: _Question, sparse: SparseEncoder) -> tuple[int, int]:
    """The sentence, or when it is longer than the budget, the window of whole clauses (verbatim)
    that covers the most of the question and holds the kind of thing it asks for."""
    if sentence.size <= budget:
        return sentence.start, sentence.end
    cuts = [sentence.start] + [
        sentence.start + m.end() for m in _CLAUSE.finditer(sentence.text) if m.end() < len(sentence.text)
    ]
    ends = cuts[1:] + [sentence.end]
    best: tuple[float, int, int] | None = None
    for i, start in enumerate(cuts):
        for end in ends[i:]:
            piece = text[start:end]
            if _size(piece, q.japanese) > budget:
                break
            grams = set(sparse.ngram_tokens(piece)) if q.japanese else set()
            value = q.cover(set(sparse.tokens(piece)), grams) + WINDOW_TYPE_BONUS * q.has_answer_type(piece)
            if best is None or (value, end - start) > (best[0], best[2] - best[1]):
                best = (value, start, end)
    if best is None:  # not even one clause fits: cut at the budget from the sentence start
        end = sentence.start
        for m in re.finditer(r"." if q.japanese else r"\S+\s*", sentence.text):
            if _size(text[sentence.start : sentence.start + m.end()], q.japanese) > budget:
                break
            end = sentence.start + m.end()
        best = (0.0, sentence.start, end)
    _, start, end = best
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _document(passage: Passage) -> str:
    return passage.title or passage.source_path


def _size(text: str, japanese: bool) -> int:
    """Words for English; non-space characters for Japanese (the 150-character budget)."""
    return sum(1 for c in text if not c.isspace()) if japanese else len(text.split())


def _answer_type(question: str, japanese: bool) -> str | None:
    if japanese:
        patterns = (("date", _DATE_Q_JA), ("number", _NUMBER_Q_JA), ("person", _PERSON_Q_JA))
    else:
        patterns = (("number", _NUMBER_Q_EN), ("date", _DATE_Q_EN), ("person", _PERSON_Q_EN))
    for kind, pattern in patterns:
        if pattern.search(question):
            return kind
    return None


def _has_type(kind: str | None, sentence: str, question: str, japanese: bool) -> bool:
    """Does the sentence hold something of the asked-for kind that the question does not?"""
    if kind is None:
        return False
    pattern = {"number": _NUMBER, "date": _DATE}.get(kind) or (_NAME_JA if japanese else _CAPITALISED)
    found = {m.group().lower() for m in pattern.finditer(sentence)}
    return bool(found - {m.group().lower() for m in pattern.finditer(question)})


def _facts(text: str, japanese: bool) -> set[str]:
    """The numbers and names of a question (lowercase): an answer sentence must repeat them."""
    names = _NAME_JA if japanese else _CAPITALISED
    return {m.group().lower() for pattern in (_NUMBER, names) for m in pattern.finditer(text)}


def _facts_missing(facts: set[str], window: str) -> float:
    return sum(1 for f in facts if f not in window) / len(facts) if facts else 0.0


def _density(terms: list[str], wanted: set[str]) -> float:
    """Distinct question terms per token of the shortest stretch that holds all the ones present:
    an answer sentence tends to repeat the question's words close together."""
    positions = [i for i, t in enumerate(terms) if t in wanted]
    if not positions:
        return 0.0
    return len({terms[i] for i in positions}) / (positions[-1] - positions[0] + 1)


def _idf(terms: set[str], documents: Sequence[set[str] | frozenset[str]]) -> dict[str, float]:
    """BM25 idf of each question term over the retrieved sentences; a term none of them holds
    gets the highest weight, so a question about something the passages never mention scores low."""
    n = len(documents)
    return {
        t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t in terms for df in [sum(1 for d in documents if t in d)]
    }


def _covered(idf: dict[str, float], terms: set[str] | frozenset[str]) -> float:
    total = sum(idf.values())
    return sum(w for t, w in idf.items() if t in terms) / total if total else 0.0


def _linear(weights: dict[str, float], signals: dict[str, float]) -> float:
    return sum(weights[k] * signals[k] for k in weights)


def _logistic(weights: dict[str, float], signals: dict[str, float]) -> float:
    z = max(-30.0, min(30.0, _linear(weights, signals)))
    return 1 / (1 + math.exp(-z))
