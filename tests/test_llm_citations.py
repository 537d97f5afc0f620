"""Citation checking on crafted answers: what a small model really gets wrong."""

from __future__ import annotations

from models.citations import check_citations, citing_sentences, strip_invalid

PASSAGES = {
    1: "Employees receive 20 days of paid annual leave each calendar year.",
    2: "The master minimum equipment list (MMEL) was published on April 10, 2020.",
    3: "年次有給休暇は、6か月継続勤務した労働者に10日付与する。",
}


def test_citation_of_a_passage_that_does_not_exist_is_invalid() -> None:
    check = check_citations(
        "Staff get 20 days of annual leave [1]. The MMEL dates from 2020 [7].", PASSAGES
    )
    assert check.valid == [1]
    assert check.invalid == [7]
    assert not check.unsupported and check.flagged


def test_citation_whose_passage_shares_no_content_word_is_flagged() -> None:
    check = check_citations("The cafeteria serves pizza on Fridays [2].", PASSAGES)
    assert check.unsupported_citations == [2]
    assert check.valid == []
    assert check.unsupported, "no valid citation left: the answer is unsupported"


def test_answer_without_any_citation_is_unsupported() -> None:
    check = check_citations("Employees receive 20 days of leave.", PASSAGES)
    assert check.unsupported and check.valid == [] and check.invalid == []


def test_citation_after_the_full_stop_belongs_to_the_sentence_before() -> None:
    assert citing_sentences("The MMEL was published in April 2020. [2]")[-1] == (
        "The MMEL was published in April 2020.",
        [2],
    )
    check = check_citations("The MMEL was published in April 2020. [2]", PASSAGES)
    assert check.valid == [2] and not check.flagged


def test_japanese_sentence_is_matched_on_kanji_words() -> None:
    check = check_citations(
        "6か月勤務すると有給休暇が10日付与されます[3]。社食は無料です[1]。", PASSAGES
    )
    assert check.valid == [3]
    assert check.unsupported_citations == [1]


def test_decimal_numbers_do_not_split_sentences() -> None:
    sentences = citing_sentences("Leave is 2.5 days per month [1]. Rest.")
    assert sentences[0] == ("Leave is 2.5 days per month .", [1])


def test_invalid_markers_can_be_stripped_and_valid_ones_stay() -> None:
    assert strip_invalid("Leave is 20 days [1][9].", [9]) == "Leave is 20 days [1]."
