"""The evidence quote: verbatim sentences that answer the question, or an honest abstention.

Real public QA passages (SQuAD v1.1 dev, JSQuAD v1.3 valid, in ../shared/eval) go through kura's
real chunk -> embed -> store -> search -> relevance floor -> context path, as a question asked
through kura would; a question whose answering passage is left out must abstain.
"""

from __future__ import annotations

import json

import pytest

from app.service.evaluation import EVAL_GROUP, ingest_corpus, load_dataset
from retrieval.context import RelevanceFloor, above_floor, assemble_context
from retrieval.evidence import MAX_JA_CHARS, MAX_WORDS, find_evidence
from retrieval.passage import Passage
from retrieval.search import search_passages
from retrieval.sentences import sentence_spans
from retrieval.sparse import SparseEncoder
from tests.conftest import SHARED_EVAL

ARTICLES = {
    "squad-v1.1-dev": {"Super_Bowl_50", "Nikola_Tesla"},
    "jsquad-v1.3-valid": {"梅雨", "ヨハネス・グーテンベルク"},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, embedder, sparse: SparseEncoder):
    """A few whole articles of both QA sets, ingested as `kura eval` ingests a dataset."""
    folder = tmp_path_factory.mktemp("evidence-corpus")
    (folder / "qrels").mkdir()
    lines = []
    for name, titles in ARTICLES.items():
        corpus = SHARED_EVAL / name / "corpus.jsonl"
        if not corpus.is_file():
            pytest.skip(f"{corpus} is not present (../shared must be beside the checkout)")
        lines += [line for line in corpus.open(encoding="utf-8") if json.loads(line)["title"] in titles]
    (folder / "corpus.jsonl").write_text("".join(lines), encoding="utf-8")
    first = json.loads(lines[0])["_id"]
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "unused"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text(f"query-id\tcorpus-id\tscore\nq\t{first}\t1\n")
    st, _, _, _ = ingest_corpus(load_dataset(folder), embedder, sparse, folder / "cache")
    yield st
    st.close()


def _context(store, embedder, sparse: SparseEncoder, question: str, without: str | None = None) -> list[Passage]:
    """What the ask path hands the answer: top 8 (a passage left out, as if never written), the
    relevance floor, then adjacent chunks merged into at most 5 context passages."""
    found = search_passages(store, embedder, question, [EVAL_GROUP], 16, sparse=sparse)
    found = [p for p in found if p.doc_id != without]
    kept = above_floor(question, found[:8], RelevanceFloor(), sparse)
    return [c.passage for c in assemble_context(kept, 3000, 5)]


def test_fact_question_is_quoted_verbatim_from_the_passage_that_answers_it(store, embedder, sparse) -> None:
    passages = _context(store, embedder, sparse, "When did Tesla enroll in Austrian Polytechnic?")
    evidence = find_evidence("When did Tesla enroll in Austrian Polytechnic?", passages, sparse)
    assert not evidence.abstained
    assert "1875" in evidence.text
    assert 1 <= len(evidence.quotes) <= 2
    assert len(evidence.text.split()) <= MAX_WORDS
    for quote in evidence.quotes:
        assert quote.passage.text[quote.start : quote.end] == quote.text  # verbatim, with its offsets
        assert quote.passage is passages[quote.rank]  # tied to the passage it cites
    assert any(q.passage.doc_id == "pa61cfdb455d1" and "In 1875, Tesla enrolled" in q.text for q in evidence.quotes)


def test_who_question_quotes_the_person(store, embedder, sparse) -> None:
    question = "Who suffered a broken arm in the NFC Championship Game?"
    evidence = find_evidence(question, _context(store, embedder, sparse, question), sparse)
    assert "Thomas Davis" in evidence.text


def test_question_whose_answer_was_never_written_abstains_and_lists_related_passages(store, embedder, sparse) -> None:
    question = "When did Tesla enroll in Austrian Polytechnic?"
    passages = _context(store, embedder, sparse, question, without="pa61cfdb455d1")
    assert passages, "the other Tesla passages are still found: the abstention is the finder's"
    evidence = find_evidence(question, passages, sparse)
    assert evidence.abstained and evidence.text == ""
    assert evidence.related == tuple(passages[:3])
    assert evidence.score < 0.5


def test_japanese_question_gets_a_japanese_quote(store, embedder, sparse) -> None:
    question = "梅雨末期の雨を荒梅雨（あらづゆ）あるいは何と呼ぶか"
    evidence = find_evidence(question, _context(store, embedder, sparse, question), sparse)
    assert evidence.language == "ja"
    assert "暴れ梅雨" in evidence.text
    assert sum(1 for c in evidence.text if not c.isspace()) <= MAX_JA_CHARS


def test_japanese_how_long_question_quotes_the_duration(store, embedder, sparse) -> None:
    question = "朝鮮半島では梅雨時期の長雨はどれくらい続く？"
    evidence = find_evidence(question, _context(store, embedder, sparse, question), sparse)
    assert "1か月ほど続く" in evidence.text


def test_japanese_question_the_documents_do_not_answer_abstains(store, embedder, sparse) -> None:
    question = "朝鮮半島では梅雨時期の長雨はどれくらい続く？"
    passages = _context(store, embedder, sparse, question, without="pbd95b34edda3")
    evidence = find_evidence(question, passages, sparse)
    assert evidence.abstained or "朝鮮半島" not in evidence.text  # never the wrong region's duration as Korea's


def test_sentence_longer_than_the_budget_is_cut_to_a_verbatim_clause_window(store, embedder, sparse) -> None:
    question = "1568年に出たオランダのハールレムの医師の著作は何という。"
    passages = _context(store, embedder, sparse, question)
    evidence = find_evidence(question, passages, sparse, min_score=0.0)
    (quote,) = evidence.quotes  # the answering sentence alone is over 150 characters
    assert quote.text in quote.passage.text
    assert sum(1 for c in quote.text if not c.isspace()) <= MAX_JA_CHARS
    assert "オランダ年代記" in quote.text


def test_nothing_to_search_abstains() -> None:
    evidence = find_evidence("When was the treaty signed?", [], SparseEncoder())
    assert evidence.abstained and evidence.related == () and evidence.score == 0.0


def test_min_score_must_be_a_chance() -> None:
    with pytest.raises(ValueError, match="min_score"):
        find_evidence("When was the treaty signed?", [], SparseEncoder(), min_score=1.5)


def _passage_text(name: str, doc_id: str) -> str:
    for line in (SHARED_EVAL / name / "corpus.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        if row["_id"] == doc_id:
            return row["text"]
    raise AssertionError(f"{doc_id} is not in {name}")


def test_sentences_do_not_end_at_initials(store) -> None:
    text = _passage_text("squad-v1.1-dev", "p36735d9fc363")
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert len(sentences) == 5
    assert sentences[1] == (
        "A pair of carries by C. J. Anderson moved the ball up 20 yards to the Panthers 14-yard line, "
        "but Carolina's defense dug in over the next three plays."
    )


def test_japanese_sentences_end_at_the_full_stop(store) -> None:
    text = _passage_text("jsquad-v1.3-valid", "pbd95b34edda3")
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "朝鮮半島では6月下旬ごろから7月下旬ごろに長雨の時期となり、1か月ほど続く。",
        "北にいくほど長雨ははっきりしないものになる。",
    ]
