"""The support check: an answer sentence is supported by what its passages say, by content.

Passages are the public QA sets' own text (SQuAD v1.1 dev, JSQuAD v1.3 valid in ../shared/eval);
the answers are what a model might write about them, right or wrong.
"""

from __future__ import annotations

import json

import pytest

from retrieval.evidence import find_evidence
from retrieval.passage import Passage
from retrieval.sparse import SparseEncoder
from retrieval.support import check_support
from tests.conftest import SHARED_EVAL


def _text(name: str, doc_id: str) -> str:
    corpus = SHARED_EVAL / name / "corpus.jsonl"
    if not corpus.is_file():
        pytest.skip(f"{corpus} is not present (../shared must be beside the checkout)")
    for line in corpus.open(encoding="utf-8"):
        row = json.loads(line)
        if row["_id"] == doc_id:
            return row["text"]
    raise AssertionError(f"{doc_id} is not in {name}")


@pytest.fixture(scope="module")
def super_bowl() -> list[str]:
    return [_text("squad-v1.1-dev", "p35b7f945b09b"), _text("squad-v1.1-dev", "p5b8f3580a761")]


@pytest.fixture(scope="module")
def tesla() -> list[str]:
    return [_text("squad-v1.1-dev", "pa61cfdb455d1")]


@pytest.fixture(scope="module")
def tsuyu() -> list[str]:
    return [_text("jsquad-v1.3-valid", "pbd95b34edda3"), _text("jsquad-v1.3-valid", "p454882b39068")]


def test_a_paraphrase_of_the_passage_is_supported(super_bowl, sparse) -> None:
    verdict = check_support("The Denver Broncos defeated the Carolina Panthers 24–10 [1].", super_bowl, sparse)
    assert verdict.supported
    assert verdict.sentences[0].passage == 0


def test_a_changed_date_is_never_supported(super_bowl, sparse) -> None:
    assert check_support("The game was played on February 7, 2016.", super_bowl, sparse).supported
    for wrong in ("The game was played on February 8, 2016.", "The game was played on February 7, 2015.",
                  "The game was played on March 7, 2016."):
        verdict = check_support(wrong, super_bowl, sparse)
        assert not verdict.supported, wrong
        assert "do not hold" in verdict.sentences[0].reason


def test_a_changed_score_is_never_supported(super_bowl, sparse) -> None:
    verdict = check_support("The Broncos beat the Panthers 24–17.", super_bowl, sparse)
    assert not verdict.supported and "17" in verdict.sentences[0].missing


def test_a_number_moved_next_to_another_fact_is_not_supported(tesla, sparse) -> None:
    # 1879 is in the passage, but as the year his father died, not the year he enrolled.
    assert check_support("In 1875, Tesla enrolled at Austrian Polytechnic in Graz.", tesla, sparse).supported
    verdict = check_support("In 1879, Tesla enrolled at Austrian Polytechnic in Graz.", tesla, sparse)
    assert not verdict.supported
    assert "1879 (in another place)" in verdict.sentences[0].missing


def test_a_name_the_passages_do_not_hold_is_not_supported(super_bowl, sparse) -> None:
    verdict = check_support("Super Bowl 50 was won by the New England Patriots.", super_bowl, sparse)
    assert not verdict.supported
    assert {"england", "patriot"} <= set(verdict.sentences[0].missing)


def test_a_negated_claim_contradicts_the_passage(super_bowl, sparse) -> None:
    verdict = check_support("The Denver Broncos did not defeat the Carolina Panthers.", super_bowl, sparse)
    assert not verdict.supported
    assert "polarity" in verdict.sentences[0].reason


def test_citation_marks_alone_support_nothing(super_bowl, sparse) -> None:
    verdict = check_support("[1][2]", super_bowl, sparse)
    assert verdict.sentences and verdict.checked == [] and not verdict.supported


def test_one_invented_sentence_makes_the_answer_unsupported(super_bowl, sparse) -> None:
    answer = (
        "Thomas Davis went down with a broken arm in the NFC Championship Game [2]. "
        "He missed the Super Bowl and retired in 2017 [2]."
    )
    verdict = check_support(answer, super_bowl, sparse)
    assert [s.supported for s in verdict.sentences] == [True, False]
    assert not verdict.supported and len(verdict.unsupported) == 1


def test_japanese_numbers_in_kanji_and_digits_are_one_number(tsuyu, sparse) -> None:
    assert check_support("朝鮮半島の長雨は1か月ほど続きます。", tsuyu, sparse).supported
    assert check_support("朝鮮半島の長雨は一か月ほど続きます。", tsuyu, sparse).supported
    assert not check_support("朝鮮半島の長雨は2か月ほど続きます。", tsuyu, sparse).supported


def test_japanese_contradicting_month_is_not_supported(tsuyu, sparse) -> None:
    assert check_support("朝鮮半島では6月下旬ごろから長雨の時期となる[1]。", tsuyu, sparse).supported
    verdict = check_support("朝鮮半島では5月下旬ごろから長雨の時期となる[1]。", tsuyu, sparse)
    assert not verdict.supported
    assert verdict.sentences[0].missing  # 5 is held by the other passage, but beside 中旬 and 華南


def test_japanese_negation_contradicts_the_passage(tsuyu, sparse) -> None:
    verdict = check_support("朝鮮半島では長雨の時期はない。", tsuyu, sparse)
    assert not verdict.supported


def test_evidence_quotes_are_supported_as_quoted(sparse) -> None:
    texts = [_text("squad-v1.1-dev", "pa61cfdb455d1"), _text("jsquad-v1.3-valid", "pbd95b34edda3")]
    passages = [
        Passage(f"c{i}", f"d{i}", text, "", f"d{i}.txt", None, None, (), 0, 1.0 - i / 10)
        for i, text in enumerate(texts)
    ]
    for question in ("When did Tesla enroll in Austrian Polytechnic?", "朝鮮半島の長雨はどれくらい続く？"):
        evidence = find_evidence(question, passages, sparse, min_score=0.0)
        verdict = check_support(evidence.text, texts, sparse)
        assert verdict.supported, evidence.text
        assert {s.reason for s in verdict.sentences} == {"quoted verbatim"}


def test_with_the_question_a_true_sentence_about_something_else_is_no_answer(super_bowl, tesla, sparse) -> None:
    question = "When did Tesla enroll in Austrian Polytechnic?"
    off_topic = "The game was played at Levi's Stadium in Santa Clara."
    assert check_support(off_topic, super_bowl + tesla, sparse).supported  # grounded...
    assert not check_support(off_topic, super_bowl + tesla, sparse, question=question).supported  # ...not an answer
    restated = check_support("Tesla enrolled in Austrian Polytechnic.", tesla, sparse, question=question)
    assert restated.checked == [] and not restated.supported
    answer = check_support("Tesla enrolled at Austrian Polytechnic in 1875.", tesla, sparse, question=question)
    assert answer.supported


def test_shares_outside_0_1_are_refused(tesla) -> None:
    with pytest.raises(ValueError, match="min_content"):
        check_support("Tesla enrolled in 1875.", tesla, SparseEncoder(), min_content=0)
