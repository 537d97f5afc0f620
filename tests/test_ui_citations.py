"""Sources are the passages an answer cites; the rest are "also retrieved"; an answer that
cites nothing that supports it is unsupported (the UI and `kura ask` warn)."""

from __future__ import annotations

from app.service import Answer
from retrieval.context import ContextPassage
from retrieval.passage import Passage


def _context(*texts: str) -> list[ContextPassage]:
    passages = [
        Passage(f"c{n}", f"d{n}", text, f"doc{n}", f"/srv/d{n}.txt", None, None, (), 0, 1.0)
        for n, text in enumerate(texts, start=1)
    ]
    return [ContextPassage(n, p, (p.chunk_id,)) for n, p in enumerate(passages, start=1)]


def _answered(text: str, context: list[ContextPassage]) -> Answer:
    answer = Answer("How many days of leave?", context, iter([text]))
    assert "".join(answer.tokens()) == text
    return answer


def test_sources_are_the_cited_passages_and_the_rest_are_also_retrieved():
    context = _context("Annual leave is 20 days.", "Parking is free for staff.", "The canteen opens at noon.")
    answer = _answered("Staff get 20 days of annual leave [1]. Parking is free [2]. [9]", context)
    assert [c.number for c in answer.sources()] == [1, 2]
    assert [c.number for c in answer.also_retrieved()] == [3]
    assert not answer.unsupported


def test_an_answer_citing_nothing_that_supports_it_is_unsupported():
    context = _context("Annual leave is 20 days.")
    for text in ("Staff get 20 days of leave.", "Bonuses are paid in March [1].", "See [7]."):
        answer = _answered(text, context)
        assert answer.unsupported, text
    assert _answered("Staff get 20 days of leave.", context).sources() == []


def test_finding_nothing_is_not_called_unsupported():
    answer = Answer("What is the parking policy?", [], None)
    "".join(answer.tokens())
    assert answer.found_nothing and not answer.unsupported and answer.sources() == []


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
