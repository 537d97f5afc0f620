"""One real model, many askers: fair order, a bounded line, cancellation, nothing crossed."""

from __future__ import annotations

import threading

import pytest

from models.queue import LLMQueue, QueueFull

WORDS = [
    "kiwi",
    "mango",
    "cherry",
    "lemon",
    "apple",
    "walnut",
    "pepper",
    "carrot",
    "olive",
    "melon",
]


def code_word_messages(word: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Reply with the code word only."},
        {"role": "user", "content": f"The code word is {word}. What is the code word?"},
    ]


def test_every_concurrent_asker_gets_its_own_answer(llm) -> None:
    line = LLMQueue(llm, max_waiting=16)
    answers: dict[str, str] = {}
    errors: list[BaseException] = []

    def ask(word: str) -> None:
        try:
            answers[word] = "".join(
                line.submit(f"user-{word}", code_word_messages(word), max_tokens=12)
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(w,)) for w in WORDS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert set(answers) == set(WORDS), "no request lost"
    for word, text in answers.items():
        others = [w for w in WORDS if w != word and w in text.lower()]
        assert word in text.lower() and not others, (word, text)
    assert len(line.served) == len(WORDS) and not line.busy and line.waiting() == 0


def test_a_user_with_many_questions_does_not_starve_others(llm) -> None:
    line = LLMQueue(llm, max_waiting=16)
    first = line.submit("alice", code_word_messages("kiwi"), max_tokens=4)
    next(first)  # alice holds the model
    waiting = [
        line.submit("alice", code_word_messages(w), max_tokens=4) for w in ("mango", "lemon")
    ]
    waiting += [
        line.submit("bob", code_word_messages("olive"), max_tokens=4),
        line.submit("carol", code_word_messages("melon"), max_tokens=4),
    ]
    assert [s.position() for s in waiting] == [1, 4, 2, 3]  # alice, bob, carol, alice
    threads = [threading.Thread(target=lambda s=s: "".join(s)) for s in waiting]
    for t in threads:
        t.start()
    first.close()
    for t in threads:
        t.join(timeout=60)
    users = [user for _, user in line.served]
    assert users == ["alice", "alice", "bob", "carol", "alice"]


def test_line_beyond_its_limit_says_busy_and_the_position(llm) -> None:
    line = LLMQueue(llm, max_waiting=2)
    running = line.submit("a", code_word_messages("kiwi"), max_tokens=4)
    next(running)
    queued = [
        line.submit("b", code_word_messages("mango"), 4),
        line.submit("c", code_word_messages("lemon"), 4),
    ]
    with pytest.raises(QueueFull, match="busy.*number 3 in line") as caught:
        line.submit("d", code_word_messages("olive"), 4)
    assert caught.value.position == 3 and caught.value.limit == 2
    for stream in [running, *queued]:
        stream.close()
    assert line.waiting() == 0 and not line.busy


def test_asker_who_leaves_frees_the_model_for_the_next(llm) -> None:
    line = LLMQueue(llm, max_waiting=4)
    leaving = line.submit("a", code_word_messages("kiwi"), max_tokens=200)
    next(leaving)
    waiting = line.submit("b", code_word_messages("mango"), max_tokens=8)
    gone = line.submit("c", code_word_messages("lemon"), max_tokens=8)
    gone.close()  # left while waiting: drops out of line
    assert line.waiting() == 1
    leaving.close()  # left while generating: generation stops, the model passes on
    assert not llm._lock.locked()
    assert "mango" in "".join(waiting).lower()
    assert [user for _, user in line.served] == ["a", "b"]


def test_a_place_reserved_on_arrival_is_served_before_later_askers(llm) -> None:
    """The ask path reserves its place before retrieval: whoever arrives first is answered
    first, even if its prompt is ready after a later asker's."""
    line = LLMQueue(llm, max_waiting=16)
    busy = line.submit("carol", code_word_messages("olive"), max_tokens=4)  # holds the model
    first, second = line.reserve("alice"), line.reserve("bob")
    assert (first.position(), second.position()) == (1, 2)
    second.start(code_word_messages("melon"), max_tokens=6, timeout_s=60)  # bob's prompt is ready first
    first.start(code_word_messages("kiwi"), max_tokens=6, timeout_s=60)
    "".join(busy)
    finished: list[str] = []
    threads = [
        threading.Thread(target=lambda s=s, who=who: ("".join(s), finished.append(who)))
        for who, s in (("bob", second), ("alice", first))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert finished == ["alice", "bob"]
    assert [user for _, user in line.served] == ["carol", "alice", "bob"]


def test_a_reserved_place_that_is_closed_unused_frees_the_line(llm) -> None:
    line = LLMQueue(llm, max_waiting=1)
    place = line.reserve("alice")  # granted at once: the model is idle
    waiting = line.reserve("bob")
    with pytest.raises(QueueFull):
        line.reserve("carol")
    place.close()  # retrieval found nothing: no answer to generate
    assert waiting.position() == 0 and line.busy  # bob's turn came at once
    waiting.close()
    assert not line.busy and line.waiting() == 0
    assert "kiwi" in "".join(line.submit("dave", code_word_messages("kiwi"), max_tokens=12)).lower()
