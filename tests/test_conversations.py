"""Saved conversations through the service, on real parts: the real store (qdrant-edge), parser,
embedder and Sudachi analyzers, the real SQLite file, the packaged GGUF for follow-up rewriting
(wrapped only to record the prompts it is sent). Each person's own, nobody else's; permissions
re-checked when a conversation is reopened; Japanese search inside answers; retention; exports
that round-trip; an account's deletion takes its conversations with it at once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.identity.users import ADMIN, AUDITOR, EMPLOYEE, User, local_operator
from app.platform.settings import KuraSettings
from app.service import KuraService
from app.service.conversation_store import UNAVAILABLE, ConversationNotFound, SavedTurn
from app.service.conversations import SOURCE_GONE
from tests.test_leaks_acl import RecordingLLM

PASSWORD = "Maple-harbor-77"
SALARY = "The 2027 salary band for senior engineers tops out at 9,400,000 yen per year."
CORPUS = {
    "public/facilities.md": "# Facilities\n\n## Cafeteria\nThe staff cafeteria opens at 11:30 and closes at 14:00 "
    "on weekdays.\n\n## Parking\nVisitors park in the lot on Elm Street.\n",
    "hr/salaries.md": f"# Salary bands (HR only)\n\n## Engineering\n{SALARY}\n",
    "public/kisoku.md": "# 就業規則\n\n## 年次有給休暇\n正社員の年次有給休暇は、入社6か月後に10日付与されます。"
    "取得には上長の承認が必要です。\n",
}


def write_corpus(root: Path, corpus: dict[str, str]) -> Path:
    """The corpus as files under root/corpus (one folder per ACL group), for a real ingest."""
    for relative, text in corpus.items():
        (root / "corpus" / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / "corpus" / relative).write_text(text, encoding="utf-8")
    return root / "corpus"


class World:
    def __init__(self, service: KuraService, recorder: RecordingLLM, root: Path) -> None:
        self.service, self.recorder, self.root = service, recorder, root

    def user(self, name: str) -> User:
        return self.service.accounts.get(name)  # as stored now: roles and groups changes apply

    def audit(self, action: str | None = None) -> list[dict]:
        return [e for e in self.service.audit.entries() if action is None or e["action"] == action]


@pytest.fixture
def world(tmp_path: Path, embedder, llm) -> Iterator[World]:  # noqa: ANN001
    corpus = write_corpus(tmp_path, CORPUS)
    settings = KuraSettings(data_dir=tmp_path / "data", answer_generation=False, conversation_retention_days=30)
    recorder = RecordingLLM(llm)
    service = KuraService(settings, embedder=embedder, llm=recorder)
    for folder, groups in (("public", ("everyone",)), ("hr", ("hr",))):
        assert not service.ingest(local_operator(), corpus / folder, groups).failures
    service.accounts.add("hana", PASSWORD, [EMPLOYEE], ["hr"])
    service.accounts.add("otto", PASSWORD, [EMPLOYEE], [])
    service.accounts.add("ada", PASSWORD, [EMPLOYEE, ADMIN, AUDITOR], ["hr"])
    service.accounts.add("aud", PASSWORD, [AUDITOR], [])
    yield World(service, recorder, tmp_path)
    service.close()


def ask_kept(world: World, name: str, question: str, conversation_id: str | None = None):  # noqa: ANN201
    answer = world.service.ask(world.user(name), question, keep=True, conversation_id=conversation_id)
    answer.finish()
    return answer


def test_an_answer_is_saved_and_a_follow_up_is_rewritten_with_the_saved_turns(world: World) -> None:
    first = ask_kept(world, "hana", "When does the staff cafeteria open?")
    assert first.conversation_id and "11:30" in first.shown_text
    saved = world.service.conversation(world.user("hana"), first.conversation_id)
    assert saved.title == "When does the staff cafeteria open?"
    [turn] = saved.turns
    assert turn.shown_text == first.shown_text and turn.verdict == first.verdict and turn.supported
    assert [c.passage.location for c in turn.sources()] == [c.passage.location for c in first.sources()]

    # A new request, as after a reload: only the id comes back; the follow-up needs the first turn.
    follow_up = ask_kept(world, "hana", "And when does it close?", conversation_id=first.conversation_id)
    assert follow_up.conversation_id == first.conversation_id
    assert "cafeteria" in (follow_up.standalone_question or "").lower()
    assert "14:00" in follow_up.shown_text
    assert "When does the staff cafeteria open?" in world.recorder.prompts[-1]  # the rewrite saw the saved turn
    reopened = world.service.conversation(world.user("hana"), first.conversation_id)
    assert [t.question for t in reopened.turns] == ["When does the staff cafeteria open?", "And when does it close?"]
    assert [c.id for c in world.service.list_conversations(world.user("hana"))] == [first.conversation_id]


def test_an_ask_without_keep_is_not_saved_and_history_with_an_id_is_refused(world: World) -> None:
    world.service.ask(world.user("hana"), "When does the staff cafeteria open?").finish()
    assert world.service.list_conversations(world.user("hana")) == []
    first = ask_kept(world, "hana", "When does the staff cafeteria open?")
    with pytest.raises(ValueError, match="either the history or a conversation_id"):
        world.service.ask(world.user("hana"), "And?", conversation_id=first.conversation_id,
                          history=[{"role": "user", "content": "x"}])


def test_nobody_else_reaches_a_conversation_and_each_try_is_audited_as_a_denial(world: World) -> None:
    mine = ask_kept(world, "hana", "When does the staff cafeteria open?").conversation_id
    service = world.service
    missing = "0" * 32
    with pytest.raises(ConversationNotFound) as unknown:
        service.conversation(world.user("hana"), missing)
    tries = 0
    for other in (world.user("otto"), world.user("ada"), world.user("aud"), local_operator()):
        attempts = [
            lambda u: service.conversation(u, mine),
            lambda u: service.rename_conversation(u, mine, "mine now"),
            lambda u: service.delete_conversation(u, mine),
        ]
        if EMPLOYEE in other.roles:  # an auditor alone may not ask at all
            attempts.append(lambda u: service.ask(u, "And when does it close?", conversation_id=mine))
        for attempt in attempts:
            with pytest.raises(ConversationNotFound) as refused:
                attempt(other)
            assert str(refused.value) == str(unknown.value).replace(missing, mine)  # same words as a missing id
            tries += 1
        assert service.list_conversations(other) == []
        assert service.search_conversations(other, "cafeteria") == []
        assert service.delete_all_conversations(other) == 0
        assert json.loads(service.export_conversations(other))["conversations"] == []
    denials = [e for e in world.audit("denied") if e.get("conversation") == mine]
    assert {e["user"] for e in denials} == {"otto", "ada", "aud", "local-operator"}
    assert all(e["owner"] == "hana" for e in denials) and len(denials) == tries == 15
    assert [t.question for t in service.conversation(world.user("hana"), mine).turns] == [
        "When does the staff cafeteria open?"
    ]


def test_a_source_whose_group_the_reader_lost_is_gone_from_the_reopened_answer(world: World) -> None:
    service = world.service
    question = "What is the salary band for senior engineers?"
    answer = ask_kept(world, "hana", question)
    assert "9,400,000" in answer.shown_text and any("salaries.md" in c.passage.location for c in answer.context)
    cid = answer.conversation_id
    service.remove_user_from_group(world.user("ada"), "hana", "hr")

    [turn] = service.conversation(world.user("hana"), cid).turns
    assert turn.question == question and turn.verdict == UNAVAILABLE and not turn.available
    assert turn.shown_text == SOURCE_GONE["en"] and turn.statement == SOURCE_GONE["en"]
    assert not turn.quotes and not turn.generated and not turn.sources()
    shown = repr(turn) + service.export_conversations(world.user("hana")) + service.export_conversations(
        world.user("hana"), "markdown"
    )
    for leaked in ("9,400,000", "9\\,400\\,000", "salaries", "Salary bands", "tops out"):
        assert leaked not in shown, leaked
    # Search: the question is the reader's own words; the withheld answer's words find nothing.
    [match] = service.search_conversations(world.user("hana"), "salary band")
    assert match.field in ("title", "question") and "9,400,000" not in match.snippet
    assert service.search_conversations(world.user("hana"), "tops out yen") == []
    # Continuing: the model rewriting the follow-up is not given the withheld answer.
    world.recorder.prompts.clear()
    ask_kept(world, "hana", "And for junior engineers?", conversation_id=cid)
    assert world.recorder.prompts and not any("9,400,000" in p for p in world.recorder.prompts)

    service.add_user_to_group(world.user("ada"), "hana", "hr")  # the group back: the answer is back
    assert service.conversation(world.user("hana"), cid).turns[0].shown_text == answer.shown_text


def test_a_deleted_document_takes_its_answer_out_of_every_reopened_conversation(world: World) -> None:
    answer = ask_kept(world, "otto", "When does the staff cafeteria open?")
    [doc_id] = {c.passage.doc_id for c in answer.sources()}
    world.service.delete(local_operator(), doc_id)
    [turn] = world.service.conversation(world.user("otto"), answer.conversation_id).turns
    assert not turn.available and "11:30" not in repr(turn) and "facilities" not in repr(turn)
    opened = world.audit("conversation_open")[-1]
    assert opened["user"] == "otto" and opened["unavailable"] == 1 and opened["chunks"] == []


def test_japanese_search_finds_an_answer_by_a_word_inside_it(world: World) -> None:
    answer = ask_kept(world, "otto", "年次有給休暇は何日付与されますか")
    assert "入社6か月後" in answer.shown_text
    ask_kept(world, "otto", "When does the staff cafeteria open?")
    for word in ("入社", "正社員", "6か月後"):  # in the quoted answer, not in the question
        matches = world.service.search_conversations(world.user("otto"), word)
        assert [(m.summary.id, m.field) for m in matches][:1] == [(answer.conversation_id, "answer")], word
        assert word[:2] in matches[0].snippet
    assert world.service.search_conversations(world.user("otto"), "退職金") == []
    assert world.service.search_conversations(world.user("hana"), "入社") == []  # otto's, not hana's


def test_retention_sweep_and_a_deleted_account_remove_conversations(world: World) -> None:
    service, store = world.service, world.service.conversation_store
    now = time.time()
    old, recent = store.new_id(), store.new_id()
    for cid, days in ((old, 45), (recent, 3)):
        turn = SavedTurn(f"probe {cid} question", "shown", "nothing", False, "s", (), None, None, (), "reader",
                         now - days * 86400)
        store.add_turn(cid, "otto", turn)
    bob = ask_kept(world, "hana", "When does the staff cafeteria open? zebra-quokka-7731")
    assert service.sweep_conversations(now) == 1
    assert [c.id for c in service.list_conversations(world.user("otto"))] == [recent]
    swept = world.audit("conversation_delete")[-1]
    assert swept["user"] == "retention" and swept["expired"] == 1 and swept["retention_days"] == 30

    assert service.delete_user(world.user("ada"), "hana") == 1  # at once, not at the next sweep
    assert store.owner_of(bob.conversation_id) is None
    data = b"".join(p.read_bytes() for p in (service.settings.data_dir).glob("conversations.sqlite3*"))
    assert b"quokka" not in data and b"7731" not in data  # overwritten, not only unlinked
    assert {e.get("reason") for e in world.audit("conversation_delete")} >= {"account deleted"}


def test_an_export_round_trips_through_import(world: World) -> None:
    service, hana = world.service, world.user("hana")
    first = ask_kept(world, "hana", "When does the staff cafeteria open?")
    ask_kept(world, "hana", "And when does it close?", conversation_id=first.conversation_id)
    ask_kept(world, "hana", "年次有給休暇は何日付与されますか")
    service.rename_conversation(hana, first.conversation_id, "Lunch *hours* [link](http://x.example)")
    exported = json.loads(service.export_conversations(hana))
    markdown = service.export_conversations(hana, "markdown")
    assert "Lunch \\*hours\\* \\[link\\]\\(http\\:\\/\\/x\\.example\\)" in markdown and "](http" not in markdown

    assert service.delete_all_conversations(hana) == 2 and service.list_conversations(hana) == []
    assert len(service.import_conversations(hana, json.dumps(exported))) == 2
    again = json.loads(service.export_conversations(hana))

    def comparable(export: dict) -> list:
        return [{k: v for k, v in c.items() if k != "id"} for c in export["conversations"]]

    assert comparable(again) == comparable(exported)
    assert [e["action"] for e in world.audit() if e["action"].startswith("conversation_")][-4:] == [
        "conversation_export", "conversation_delete", "conversation_import", "conversation_export"
    ]
    with pytest.raises(ValueError, match="not a kura conversations export"):
        service.import_conversations(hana, '{"format": "something else"}')


def test_the_server_sweep_runs_at_start_then_every_interval_and_stops_with_the_service(tmp_path: Path) -> None:
    settings = KuraSettings(data_dir=tmp_path / "data", conversation_retention_days=1,
                            conversation_sweep_minutes=0.005)  # every 0.3 s
    service = KuraService(settings)  # the sweep needs accounts and conversations, no store or model
    service.accounts.add("otto", PASSWORD, [EMPLOYEE], [])
    store = service.conversation_store

    def seed(days: float) -> str:
        cid = store.new_id()
        store.add_turn(cid, "otto", SavedTurn("q", "a", "nothing", False, "s", (), None, None, (), "reader",
                                              time.time() - days * 86400))
        return cid

    def gone_soon(cid: str) -> bool:
        deadline = time.monotonic() + 30
        while store.owner_of(cid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        return store.owner_of(cid) is None

    at_start, kept = seed(2), seed(0.5)
    thread = service.start_conversation_sweep()
    try:
        assert gone_soon(at_start)
        later = seed(3)
        assert gone_soon(later) and store.owner_of(kept) == "otto"
    finally:
        service.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
