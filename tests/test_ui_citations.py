"""Sources are the passages the shown answer cites (the evidence quote's, and those a checked
generated answer cites); the rest are related reading. A generated answer is shown only when the
real support check passes; otherwise it is withheld, and its [n] marks point nowhere."""

from __future__ import annotations

from app.service import Answer
from app.service.answer import ANSWERED, NOTHING
from retrieval.context import ContextPassage
from retrieval.evidence import find_evidence
from retrieval.passage import Passage
from retrieval.support import check_support


def _context(*texts: str) -> list[ContextPassage]:
    passages = [
        Passage(f"c{n}", f"d{n}", text, f"doc{n}", f"/srv/d{n}.txt", None, None, (), 0, 1.0)
        for n, text in enumerate(texts, start=1)
    ]
    return [ContextPassage(n, p, (p.chunk_id,)) for n, p in enumerate(passages, start=1)]


def _answered(question: str, generated: str, context: list[ContextPassage], sparse) -> Answer:  # noqa: ANN001
    evidence = find_evidence(question, [c.passage for c in context], sparse, min_score=0.0)
    texts = [c.passage.text for c in context]
    answer = Answer(
        question, context, iter([generated]), evidence=evidence, verdict=ANSWERED,
        _check=lambda text: check_support(text, texts, sparse),
    )
    answer.finish()
    return answer


def test_sources_are_the_quoted_and_the_cited_passages_and_the_rest_are_related(sparse):
    context = _context("The canteen opens at noon.", "Annual leave is 20 days a year.", "Parking is free for staff.")
    generated = "Annual leave is 20 days a year [2]. Parking is free for staff [3]."
    answer = _answered("How many days of annual leave?", generated, context, sparse)
    assert [n for _, n in answer.quote_lines()] == [2] and "20 days" in answer.quote_lines()[0][0]
    assert answer.generated and [c.number for c in answer.sources()] == [2, 3]
    assert [c.number for c in answer.also_retrieved()] == [1]
    assert answer.supported and not answer.unsupported


def test_a_generated_answer_its_passages_do_not_support_is_withheld_and_cites_nothing(sparse):
    context = _context("Annual leave is 20 days a year.", "Parking is free for staff.")
    for text in ("Staff get 25 days of leave [1].", "Bonuses are paid in March [2].", "See [7]."):
        answer = _answered("How many days of annual leave?", text, context, sparse)
        assert answer.generated == "" and answer.withheld_reason, text
        assert [c.number for c in answer.sources()] == [1], text  # the quote's passage only
        assert text not in answer.shown_text


def test_finding_nothing_is_said_plainly_and_is_not_called_supported():
    answer = Answer("What is the parking policy?", [], None, verdict=NOTHING)
    assert answer.finish() == ""
    assert answer.found_nothing and not answer.unsupported and not answer.supported and answer.sources() == []
    assert answer.shown_text.startswith("No relevant documents")


def test_a_waiting_answer_knows_its_place_in_the_real_llm_queue(llm):
    from models.queue import LLMQueue

    line = LLMQueue(llm, max_waiting=4)
    messages = [{"role": "user", "content": "Say hello."}]
    first = Answer("q1", _context("x"), line.submit("alice", messages, 8))
    second = Answer("q2", _context("x"), line.submit("bob", messages, 8))
    third = Answer("q3", _context("x"), line.submit("carol", messages, 8))
    assert (first.queue_position(), second.queue_position(), third.queue_position()) == (0, 1, 2)
    "".join(first.tokens())  # the first answer ends: everyone moves up
    assert (second.queue_position(), third.queue_position()) == (0, 1)
    "".join(second.tokens())
    "".join(third.tokens())
