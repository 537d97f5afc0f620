"""BM25 sparse encoding: Japanese morphemes, English stems, mixed text, stable ids, BM25 weights."""

from __future__ import annotations

import subprocess
import sys

import pytest

from retrieval.sparse import SparseEncoder, is_japanese, term_id


@pytest.fixture(scope="module")
def encoder() -> SparseEncoder:
    return SparseEncoder()


def test_japanese_is_cut_into_words_and_particles_are_dropped(encoder: SparseEncoder) -> None:
    tokens = encoder.tokens("年次有給休暇は10日です。")
    assert "有給" in tokens and "休暇" in tokens
    assert "は" not in tokens and "です" not in tokens and "。" not in tokens


def test_japanese_inflections_share_one_term(encoder: SparseEncoder) -> None:
    # 使いました / 使える / 使う are one verb to a reader; Sudachi's normalised form
    # makes them one term.
    assert (
        set(encoder.tokens("使いました"))
        & set(encoder.tokens("使える"))
        & set(encoder.tokens("使う"))
    )


def test_english_is_lowercased_stemmed_and_stopwords_dropped(encoder: SparseEncoder) -> None:
    tokens = encoder.tokens("The Employees were RUNNING to the meetings")
    assert tokens == ["employe", "run", "meet"]


def test_mixed_language_text_is_split_by_script(encoder: SparseEncoder) -> None:
    tokens = encoder.tokens("Pythonで書かれたRetrieval systemを使う")
    assert "python" in tokens and "retriev" in tokens and "system" in tokens
    assert "書く" in tokens or "書か" in tokens
    assert not any("で" == t for t in tokens)


def test_full_width_latin_is_the_same_term_as_ascii(encoder: SparseEncoder) -> None:
    assert encoder.tokens("ＡＢＣ社")[0] == encoder.tokens("ABC")[0]


def test_token_ids_are_the_same_in_another_process() -> None:
    code = "from retrieval.sparse import term_id; print(term_id('休暇'), term_id('leav'))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert [int(x) for x in out] == [term_id("休暇"), term_id("leav")]
    assert term_id("休暇") != term_id("休")


def test_query_vector_is_term_presence(encoder: SparseEncoder) -> None:
    vec = encoder.encode_query("leave leave leave policy")
    assert len(vec.indices) == 2 and vec.values == [1.0, 1.0]
    assert vec.indices == sorted(vec.indices)


def test_document_weights_saturate_with_term_frequency_and_fall_with_length() -> None:
    enc = SparseEncoder(k1=1.2, b=0.75, avg_len=10)
    leave = term_id("leav")

    def weight(text: str) -> float:
        vec = enc.encode_document(text)
        return vec.values[vec.indices.index(leave)]

    once, thrice = weight("leave policy"), weight("leave leave leave policy")
    assert once < thrice < 3 * once  # saturation: more mentions help, less than linearly
    assert thrice < enc.k1 + 1  # BM25's ceiling
    short = weight("leave policy")
    long = weight("leave policy " + " ".join(f"word{i}" for i in range(40)))
    assert long < short  # length normalisation


def test_japanese_query_detection_tolerates_latin_product_names() -> None:
    assert is_japanese("Kuraの有給休暇の規則は？")
    assert not is_japanese("What does 有給 mean in the Kura handbook about leave?")


def test_bad_analyzer_or_bm25_parameters_are_rejected_with_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="sudachi, bigram, qdrant"):
        SparseEncoder("mecab")
    with pytest.raises(ValueError, match="0 <= b <= 1"):
        SparseEncoder(b=2.0)


def test_bigram_and_qdrant_analyzers_also_find_japanese_terms() -> None:
    assert "休暇" in SparseEncoder("bigram").tokens("有給休暇")
    vec = SparseEncoder("qdrant").encode_document("有給休暇は10日")
    assert vec.indices and all(v > 0 for v in vec.values)


def test_question_words_are_not_search_terms(encoder: SparseEncoder) -> None:
    tokens = encoder.tokens("誰がいつどこで何を決めたのか")
    assert not {"誰", "いつ", "どこ", "何"} & set(tokens)
    assert "決める" in tokens


def test_japanese_text_carries_a_bigram_channel_with_its_numbers(encoder: SparseEncoder) -> None:
    vec = encoder.encode_document("1945年に有給休暇が制度化された。")
    assert vec.ngrams is not None
    grams = set(vec.ngrams.indices)
    assert {term_id("有給"), term_id("給休"), term_id("1945")} <= grams
    assert term_id("給休") not in set(vec.indices)  # a bigram, not a word: only in its channel
    query = encoder.encode_query("有給休暇はいつ？")
    assert query.ngrams is not None and set(query.ngrams.values) == {1.0}
    assert {term_id("有給"), term_id("休暇")} <= set(query.ngrams.indices)


def test_english_text_has_no_bigram_channel(encoder: SparseEncoder) -> None:
    assert encoder.encode_document("Employees receive twenty days of paid leave").ngrams is None
    assert encoder.encode_query("how many days of leave").ngrams is None
    assert SparseEncoder("bigram").encode_document("有給休暇").ngrams is None
