"""Saved conversations on the Ask page, driven in-process by AppTest against a real data
directory (real accounts, audit log, store, embedder and Sudachi analyzers): the sidebar lists a
person's conversations, a new session (a reload) reopens one and continues it, nobody else's page
ever shows it, and the person's language choice follows them to their next session."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.doors.http import runtime
from app.identity.users import ADMIN, EMPLOYEE, local_operator
from app.platform.settings import KuraSettings
from app.service import KuraService

REPO = Path(__file__).resolve().parent.parent
HOME = str(REPO / "app" / "doors" / "ui" / "Home.py")
PASSWORD = "Tulip-garden-42"
QUESTION = "When does the staff cafeteria open?"
HANDBOOK = "# Facilities\n\n## Cafeteria\nThe staff cafeteria opens at 11:30 and closes at 14:00 on weekdays.\n"


@pytest.fixture
def service(data_dir: Path, embedder, monkeypatch: pytest.MonkeyPatch) -> Iterator[KuraService]:  # noqa: ANN001
    monkeypatch.setenv("KURA_ANSWER_GENERATION", "false")  # evidence-only answers: the page, not the model
    docs = data_dir.parent / "docs"
    docs.mkdir()
    (docs / "facilities.md").write_text(HANDBOOK)
    svc = KuraService(KuraSettings(), embedder=embedder)
    assert not svc.ingest(local_operator(), docs, ["everyone"]).failures
    svc.accounts.add("ann", PASSWORD, [EMPLOYEE], [])
    svc.accounts.add("otto", PASSWORD, [EMPLOYEE], [])
    svc.accounts.add("boss", PASSWORD, [EMPLOYEE, ADMIN], [])
    runtime.install(svc)
    yield svc
    runtime.uninstall()
    svc.close()


def signed_in(name: str, conversation: str | None = None) -> AppTest:
    """A fresh browser session (as after a reload, or another browser), signed in as `name`."""
    at = AppTest.from_file(HOME, default_timeout=120)
    if conversation:
        at.query_params["c"] = conversation
    at.run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def conversation_buttons(at: AppTest) -> list[str]:
    """The sidebar's conversation buttons, by key (`conv_<id>`, or `conv_found_<id>` for a search)."""
    return [b.key for b in at.sidebar.button if b.key and re.fullmatch(r"conv_(found_)?[0-9a-f]{32}", b.key)]


def chat_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(i.value for i in at.info)


def test_a_question_is_in_the_sidebar_and_a_new_session_reopens_and_continues_it(service: KuraService) -> None:
    at = signed_in("ann")
    at.chat_input(key="ask_input").set_value(QUESTION).run()
    assert not at.exception and "11:30" in chat_text(at)
    [summary] = service.list_conversations(service.accounts.get("ann"))
    assert conversation_buttons(at) == [f"conv_{summary.id}"]  # listed at once, in the same run
    assert at.query_params["c"] in (summary.id, [summary.id])  # a reload of this URL reopens it

    again = signed_in("ann")  # a reload: new session state, nothing of the old tab's
    assert conversation_buttons(again) == [f"conv_{summary.id}"] and "11:30" not in chat_text(again)
    again.sidebar.button(key=f"conv_{summary.id}").click().run()
    assert [m.value for m in again.chat_message[0].markdown][:1] == ["When does the staff cafeteria open\\?"]
    assert "11:30" in chat_text(again)
    again.chat_input(key="ask_input").set_value("And when does it close?").run()
    assert not again.exception and "14:00" in chat_text(again)
    [turns] = [len(service.conversation(service.accounts.get("ann"), summary.id).turns)]
    assert turns == 2 and conversation_buttons(again) == [f"conv_{summary.id}"]

    by_link = signed_in("ann", conversation=summary.id)  # the URL alone reopens it
    assert "14:00" in chat_text(by_link) and "11:30" in chat_text(by_link)


def test_another_persons_page_never_shows_it_even_with_its_link(service: KuraService) -> None:
    at = signed_in("ann")
    at.chat_input(key="ask_input").set_value(QUESTION).run()
    [summary] = service.list_conversations(service.accounts.get("ann"))

    otto = signed_in("otto", conversation=summary.id)
    assert conversation_buttons(otto) == []
    assert any("not among yours" in w.value for w in otto.warning)
    assert "11:30" not in chat_text(otto) and QUESTION.rstrip("?") not in chat_text(otto)
    otto.sidebar.text_input(key="conv_search").input("cafeteria").run()
    assert conversation_buttons(otto) == []
    denial = [e for e in service.audit.entries() if e["action"] == "denied" and e.get("conversation") == summary.id]
    assert [(e["user"], e["owner"]) for e in denial] == [("otto", "ann")]


def test_renaming_deleting_and_searching_from_the_page(service: KuraService) -> None:
    at = signed_in("ann")
    at.chat_input(key="ask_input").set_value(QUESTION).run()
    at.run()  # the next run shows the open conversation with its tools
    [summary] = service.list_conversations(service.accounts.get("ann"))
    at.text_input(key=f"conv_title_{summary.id}").input("Lunch :red[hours] ![x](http://evil.example/x.png)").run()
    at.button(key="conv_rename").click().run()
    label = at.sidebar.button(key=f"conv_{summary.id}").label
    assert label.startswith("Lunch \\:red\\[hours\\] \\!\\[x\\]")  # shown as typed, never as Markdown
    at.sidebar.text_input(key="conv_search").input("11:30 weekdays").run()
    assert conversation_buttons(at) == [f"conv_found_{summary.id}"]
    at.sidebar.text_input(key="conv_search").input("").run()
    at.checkbox(key="conv_delete_sure").check().run()
    at.button(key="conv_delete").click().run()
    assert not at.exception and conversation_buttons(at) == []
    assert service.list_conversations(service.accounts.get("ann")) == []


def test_the_language_chosen_is_kept_with_the_account(service: KuraService) -> None:
    at = signed_in("ann")
    at.sidebar.selectbox(key="kura_lang").select("ja").run()
    assert [t.value for t in at.title] == ["文書に質問する"]
    assert service.own_language(service.accounts.get("ann")) == "ja"
    assert [t.value for t in signed_in("ann").title] == ["文書に質問する"]  # another session: still Japanese
    assert [t.value for t in signed_in("otto").title] == ["Ask your documents"]  # otto never chose


def test_an_admin_deleting_an_account_on_the_users_page_deletes_its_conversations(service: KuraService) -> None:
    at = signed_in("ann")
    at.chat_input(key="ask_input").set_value(QUESTION).run()
    [summary] = service.list_conversations(service.accounts.get("ann"))
    boss = signed_in("boss")
    boss.switch_page(str(REPO / "app" / "doors" / "ui" / "views" / "users.py")).run()
    boss.selectbox(key="edit_user").select("ann").run()
    boss.checkbox(key="delete_sure_ann").check().run()
    boss.button(key="delete_user").click().run()
    assert not boss.exception and not boss.error
    assert service.conversation_store.owner_of(summary.id) is None
    assert "ann" not in [u.name for u in service.accounts.list()]
