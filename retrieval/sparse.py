"""BM25 sparse vectors computed by kura, for the store's lexical vectors (Qdrant applies IDF).

Documents get BM25 term-frequency weights (saturation `k1`, length normalisation `b` against a
fixed `avg_len`); queries get 1.0 per distinct term. Qdrant's IDF modifier multiplies in the
inverse document frequency at query time, so the dot product is BM25 — and embedded and server
Qdrant hold identical vectors. Token ids are a stable hash (murmur3) of the normalised token.

Text is split by script: Japanese runs go to a Japanese analyzer, everything else is English
words (lowercase, stopwords dropped, Snowball-stemmed). Japanese analyzers (measured on JSQuAD,
see README): "sudachi" (SudachiPy morphemes, normalised form, particles/auxiliaries/symbols
dropped), "bigram" (overlapping character bigrams), "qdrant" (qdrant-edge's Bm25 multilingual
tokenizer, on the whole text).

With the "sudachi" analyzer a second lexical channel rides along: the Japanese character bigrams
of the same text (with its English words and numbers), BM25-weighted on their own (k1 0.9,
b 0.4 — Anserini's defaults — against the measured mean bigram count) and stored in their own
named vector (`SparseVec.ngrams`, store vector "sparse_ngram"), so each channel keeps its own
IDF and the store fuses the two candidate lists. Measured on JSQuAD (nDCG@10, see README):
words alone .947, bigrams alone .942, words+bigrams in one vector .934, two channels fused .954.
Text without Japanese has no second channel: English search is exactly as before.

Usage:
    encoder = SparseEncoder()
    doc_vector = encoder.encode_document("年次有給休暇は10日です。")
    query_vector = encoder.encode_query("有給休暇は何日？")
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from functools import cached_property

import mmh3

from base.cjk import JAPANESE, is_japanese, japanese_share  # noqa: F401  (is_japanese: re-exported)
from retrieval.store import SparseVec

JAPANESE_ANALYZERS = ("sudachi", "bigram", "qdrant")
SUDACHI_MODE = "A"
# BM25 of the bigram channel: Anserini's k1/b; bigram documents are ~2.3x longer than word ones
# (JSQuAD chunks: 127 bigrams vs 54 words on average), so they get their own average length.
NGRAM_K1, NGRAM_B, NGRAM_AVG_LEN = 0.9, 0.4, 127.0

# Japanese letters (base/cjk.py); punctuation is outside on purpose: it separates runs and never
# becomes a token.
_JA = JAPANESE
_RUNS = re.compile(rf"(?P<ja>[{_JA}]+)|(?P<other>[^{_JA}]+)")
_JA_CHAR = re.compile(rf"[{_JA}]")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_FULLWIDTH = str.maketrans({chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)})

# Sudachi parts of speech that carry no topic: particles, auxiliaries, conjunctions, symbols,
# and pronouns — which is where the question words 何/どこ/いつ/誰 land (JSQuAD: +.001 nDCG).
_JA_DROP_POS = {"助詞", "助動詞", "接続詞", "補助記号", "空白", "記号", "代名詞"}

# The classic English stopword list (Lucene/Snowball core), lowercase.
ENGLISH_STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do
    does doesn't doing don't down during each few for from further had hadn't has hasn't
    have haven't having he he'd he'll he's her here here's hers herself him himself his how
    how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most
    mustn't my myself no nor not of off on once only or other ought our ours ourselves out
    over own same shan't she she'd she'll she's should shouldn't so some such than that
    that's the their theirs them themselves then there there's these they they'd they'll
    they're they've this those through to too under until up very was wasn't we we'd we'll
    we're we've were weren't what what's when when's where where's which while who who's
    whom why why's with won't would wouldn't you you'd you'll you're you've your yours
    yourself yourselves s t also""".split()
)



def term_id(token: str) -> int:
    """Stable 32-bit id of a normalised token: the same in every process, version and server."""
    return mmh3.hash(token, 0, signed=False)


class SparseEncoder:
    """Tokenizes English and Japanese text and turns it into BM25 sparse vectors."""

    def __init__(
        self, japanese: str = "sudachi", k1: float = 1.2, b: float = 0.75, avg_len: float = 80.0
    ) -> None:
        if japanese not in JAPANESE_ANALYZERS:
            raise ValueError(
                f"Japanese analyzer must be one of {', '.join(JAPANESE_ANALYZERS)}, "
                f"not {japanese!r}"
            )
        if k1 < 0 or not 0 <= b <= 1 or avg_len <= 0:
            raise ValueError(
                "BM25 needs k1 >= 0, 0 <= b <= 1, avg_len > 0 "
                f"(got k1={k1}, b={b}, avg_len={avg_len})"
            )
        self.japanese = japanese
        self.k1, self.b, self.avg_len = k1, b, avg_len
        self._lock = threading.Lock()  # a Sudachi tokenizer is not safe to share between threads

    @property
    def spec(self) -> str:
        """Everything that decides the vectors this encoder writes (a cache key for stores)."""
        return (
            f"{self.japanese}:{self.k1}:{self.b}:{self.avg_len}:{SUDACHI_MODE}:"
            f"ngram-{NGRAM_K1}-{NGRAM_B}-{NGRAM_AVG_LEN}-mixed:drop-{','.join(sorted(_JA_DROP_POS))}"
        )

    @cached_property
    def _sudachi(self):  # type: ignore[no-untyped-def]
        from sudachipy import Dictionary, SplitMode

        # Mode A (shortest units) lets a query's 有給 match a document's 有給休暇.
        return Dictionary(dict="core").tokenizer(), getattr(SplitMode, SUDACHI_MODE)

    @cached_property
    def _stemmer(self):  # type: ignore[no-untyped-def]
        from py_rust_stemmers import SnowballStemmer

        return SnowballStemmer("english")

    @cached_property
    def _qdrant_bm25(self):  # type: ignore[no-untyped-def]
        import qdrant_edge as qe

        return qe.Bm25(qe.Bm25Config(language="japanese", tokenizer=qe.TokenizerType.Multilingual))

    # --- tokens ------------------------------------------------------------------------
    def tokens(self, text: str) -> list[str]:
        """The normalised terms of `text`, in order, repeats kept (they are the term frequency)."""
        text = text.translate(_FULLWIDTH)
        out: list[str] = []
        for run in _RUNS.finditer(text):
            if run.group("ja"):
                out.extend(self._japanese_tokens(run.group("ja")))
            else:
                out.extend(self._english_tokens(run.group("other")))
        return out

    def _english_tokens(self, text: str) -> list[str]:
        words = [w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOPWORDS]
        return self._stemmer.stem_words(words) if words else []

    def ngram_tokens(self, text: str) -> list[str]:
        """Terms of the second lexical channel: the character bigrams of the Japanese runs of
        `text` (a lone character stands for itself) plus the English words and numbers between
        them (年号 like 1945 carry much of a JSQuAD question: .9505 without them, .9536 with).
        Empty for text without Japanese, and for the non-sudachi analyzers, whose words already
        are bigrams or need no second channel."""
        if self.japanese != "sudachi" or not _JA_CHAR.search(text):
            return []
        out: list[str] = []
        for run in _RUNS.finditer(text.translate(_FULLWIDTH)):
            if run.group("ja"):
                out.extend(_bigrams(run.group("ja")))
            else:
                out.extend(self._english_tokens(run.group("other")))
        return out

    def _japanese_tokens(self, run: str) -> list[str]:
        if self.japanese == "bigram" or self.japanese == "qdrant":
            return _bigrams(run)
        tokenizer, mode = self._sudachi
        with self._lock:
            morphemes = tokenizer.tokenize(run, mode)
            return [
                m.normalized_form() for m in morphemes if m.part_of_speech()[0] not in _JA_DROP_POS
            ]

    # --- vectors -----------------------------------------------------------------------
    def encode_document(self, text: str) -> SparseVec:
        """BM25 document weights: tf·(k1+1) / (tf + k1·(1 − b + b·len/avg_len)); the bigram
        channel, when there is one, in `.ngrams` with its own parameters."""
        if self.japanese == "qdrant":
            return _from_edge(self._qdrant_bm25.embed_document(text))
        words = _bm25(self.tokens(text), self.k1, self.b, self.avg_len)
        grams = self.ngram_tokens(text)
        if not grams:
            return words
        ngrams = _bm25(grams, NGRAM_K1, NGRAM_B, NGRAM_AVG_LEN)
        return SparseVec(words.indices, words.values, ngrams)

    def encode_query(self, text: str) -> SparseVec:
        """Query weights: 1.0 for each distinct term (Qdrant's IDF does the weighting)."""
        if self.japanese == "qdrant":
            return _from_edge(self._qdrant_bm25.embed_query(text))
        words = _sorted_vec({term_id(t): 1.0 for t in set(self.tokens(text))})
        grams = self.ngram_tokens(text)
        if not grams:
            return words
        ngrams = _sorted_vec({term_id(g): 1.0 for g in set(grams)})
        return SparseVec(words.indices, words.values, ngrams)

    def term_coverage(self, query: str, passage_text: str) -> float:
        """Share of the query's distinct terms that occur in the passage: a relevance signal that
        means the same for every corpus size and language (0 when the query has no terms)."""
        terms = set(self.tokens(query))
        if not terms:
            return 0.0
        return len(terms & set(self.tokens(passage_text))) / len(terms)


def _bigrams(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]


def _bm25(tokens: list[str], k1: float, b: float, avg_len: float) -> SparseVec:
    counts = Counter(tokens)
    norm = k1 * (1 - b + b * sum(counts.values()) / avg_len)
    weights: dict[int, float] = {}
    for token, tf in counts.items():
        tid = term_id(token)
        weights[tid] = weights.get(tid, 0.0) + tf * (k1 + 1) / (tf + norm)
    return _sorted_vec(weights)


def _sorted_vec(weights: dict[int, float]) -> SparseVec:
    indices = sorted(weights)
    return SparseVec(indices=indices, values=[weights[i] for i in indices])


def _from_edge(vector) -> SparseVec:  # type: ignore[no-untyped-def]
    return SparseVec(indices=list(vector.indices), values=list(vector.values))
