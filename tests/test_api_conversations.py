"""Saved conversations over HTTP: the real API (app/doors/http/api) on uvicorn on a loopback port
over a real KuraService (qdrant-edge, parser, embedder, Sudachi, the packaged GGUF for follow-up
rewriting), real httpx clients with personal keys, and `kura conversations` / `kura ask` as a
separate process going through the server with the operator token a `kura serve` writes.

Another person's conversation id is 404 exactly like a missing one, for an employee's, an
admin's and an auditor's key and the operator's token, each try audited; a lost group takes a
citation out of the reopened answer; search, export and import, delete, delete all; deleting an
account deletes its conversations at once; the OpenAI endpoint stays stateless."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.doors.http.api import standalone_app
from app.identity import operator_token as server_token
from app.identity.users import ADMIN, AUDITOR, EMPLOYEE, local_operator
from app.platform.settings import KuraSettings
from app.service import KuraService
from tests.api_server import LoopbackServer
from tests.conftest import REPO
from tests.test_conversations import write_corpus

PASSWORD = "Quiet-harbor-2024x"
SALARY = "The 2027 salary band for senior engineers tops out at 9,400,000 yen per year."
CORPUS = {
    "public/facilities.md": "# Facilities\n\n## Cafeteria\nThe staff cafeteria opens at 11:30 and closes at 14:00 "
    "on weekdays.\n",
    "public/kisoku.md": "# 就業規則\n\n## 年次有給休暇\n正社員の年次有給休暇は、入社6か月後に10日付与されます。\n",
    "hr/salaries.md": f"# Salary bands (HR only)\n\n## Engineering\n{SALARY}\n",
}


@dataclass
class Office:
    data: Path
    service: KuraService
    url: str
    keys: dict[str, str]

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.keys[who]}"}, timeout=120)

    def ask(self, who: str, question: str, **body: object) -> dict:
        with self.client(who) as http:
            response = http.post("/api/v1/ask", json={"question": question, **body})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory, embedder, llm) -> Iterator[Office]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("conversations-api")
    corpus = write_corpus(root, CORPUS)
    settings = KuraSettings(data_dir=root / "data", answer_generation=False)
    service = KuraService(settings, embedder=embedder, llm=llm)
    for folder, groups in (("public", ("everyone",)), ("hr", ("hr",))):
        assert not service.ingest(local_operator(), corpus / folder, groups).failures
    people = {"hana": ([EMPLOYEE], ["hr"], "read"), "otto": ([EMPLOYEE], [], "read"),
              "ada": ([EMPLOYEE, ADMIN], ["hr"], "admin"), "aud": ([AUDITOR], [], "audit")}
    for name, (roles, groups, _) in people.items():
        service.accounts.add(name, PASSWORD, roles, groups)
    keys = {n: service.create_api_key(local_operator(), scope, "test", owner=n)[1] for n, (_, _, scope) in
            people.items()}
    with LoopbackServer(standalone_app(settings, lambda: service)) as server:
        keys["operator"] = server_token.write(settings, server.url)  # what `kura serve` does once it listens
        try:
            yield Office(root / "data", service, server.url, keys)
        finally:
            server_token.remove(settings)
            service.close()


def kura(office: Office, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `kura` command in its own process, on the office's data directory."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KURA_")}, **(env or {})}
    env.update(KURA_DATA_DIR=str(office.data), COLUMNS="200", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "app.doors.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_an_ask_starts_a_conversation_and_its_id_continues_it(office: Office) -> None:
    first = office.ask("otto", "When does the staff cafeteria open?")
    cid = first["conversation_id"]
    assert cid and "11:30" in first["answer"]
    follow = office.ask("otto", "And when does it close?", conversation_id=cid)
    assert follow["conversation_id"] == cid and "14:00" in follow["answer"]
    with office.client("otto") as http:
        listed = http.get("/api/v1/conversations").json()
        assert [(c["id"], c["turns"]) for c in listed] == [(cid, 2)]
        assert listed[0]["title"] == "When does the staff cafeteria open?"
        detail = http.get(f"/api/v1/conversations/{cid}").json()
        assert [t["question"] for t in detail["conversation_turns"]] == [
            "When does the staff cafeteria open?", "And when does it close?"]
        assert detail["conversation_turns"][0]["citations"][0]["file"] == "facilities.md"
        with http.stream("POST", "/api/v1/ask", json={"question": "Where is the cafeteria?", "stream": True,
                                                       "conversation_id": cid}) as streamed:
            done = [line for line in streamed.iter_lines() if line.startswith("data: ")][-1]
        assert json.loads(done[6:])["conversation_id"] == cid
        unsaved = http.post("/api/v1/ask", json={"question": "When does it open?", "save": False}).json()
        assert unsaved["conversation_id"] is None
        openai = http.post("/v1/chat/completions", json={"model": "kura", "messages": [
            {"role": "user", "content": "When does the staff cafeteria open?"}]})
        assert openai.status_code == 200
        assert [c["id"] for c in http.get("/api/v1/conversations").json()] == [cid]  # neither was kept


def test_another_persons_id_is_404_like_a_missing_one_for_every_key_and_audited(office: Office) -> None:
    cid = office.ask("hana", "When does the staff cafeteria open?")["conversation_id"]
    missing = "0123456789abcdef" * 2

    def tries(http: httpx.Client, target: str) -> list[httpx.Response]:
        return [
            http.get(f"/api/v1/conversations/{target}"),
            http.put(f"/api/v1/conversations/{target}", json={"title": "taken"}),
            http.delete(f"/api/v1/conversations/{target}"),
        ]

    for who in ("otto", "ada", "aud", "operator"):
        with office.client(who) as http:
            for theirs, none in zip(tries(http, cid), tries(http, missing), strict=True):
                assert (theirs.status_code, none.status_code) == (404, 404)
                assert theirs.json() == json.loads(none.text.replace(missing, cid))  # the same answer, word for word
            if who in ("otto", "ada", "operator"):  # those who may ask cannot continue it either
                asked = http.post("/api/v1/ask", json={"question": "And when does it close?", "conversation_id": cid})
                assert asked.status_code == 404
            assert cid not in http.get("/api/v1/conversations").text
            assert cid not in http.get("/api/v1/conversations/search", params={"q": "cafeteria"}).text
    denials = [e for e in office.service.audit.entries() if e["action"] == "denied" and e.get("conversation") == cid]
    assert {e["user"] for e in denials} == {"otto", "ada", "aud", "local-operator"}
    assert len(denials) == 3 * 4 + 3 and all(e["owner"] == "hana" and e["via"] == "api" for e in denials)
    with office.client("hana") as http:
        assert http.get(f"/api/v1/conversations/{cid}").json()["title"] == "When does the staff cafeteria open?"


def test_a_lost_group_takes_the_citation_out_of_the_reopened_answer(office: Office) -> None:
    asked = office.ask("hana", "What is the salary band for senior engineers?")
    assert "9,400,000" in asked["answer"] and asked["citations"][0]["file"] == "salaries.md"
    office.service.remove_user_from_group(local_operator(), "hana", "hr")
    try:
        with office.client("hana") as http:
            reopened = http.get(f"/api/v1/conversations/{asked['conversation_id']}")
            exported = http.get("/api/v1/conversations/export", params={"format": "markdown"})
        [turn] = reopened.json()["conversation_turns"]
        assert turn["verdict"] == "unavailable" and turn["available"] is False and turn["unavailable_sources"] == 1
        assert turn["citations"] == [] and turn["quotes"] == [] and turn["generated"] is None
        for leaked in ("9,400,000", "salaries", "Salary bands", "tops out", asked["citations"][0]["chunk_id"]):
            assert leaked not in reopened.text and leaked not in exported.text
    finally:
        office.service.add_user_to_group(local_operator(), "hana", "hr")


def test_search_export_import_and_deletes_over_http(office: Office) -> None:
    ja = office.ask("ada", "年次有給休暇は何日付与されますか")
    with office.client("ada") as http:
        found = http.get("/api/v1/conversations/search", params={"q": "入社"}).json()
        assert [(m["conversation"]["id"], m["field"]) for m in found] == [(ja["conversation_id"], "answer")]
        exported = http.get("/api/v1/conversations/export")
        assert exported.headers["content-disposition"] == 'attachment; filename="kura-conversations.json"'
        assert http.delete("/api/v1/conversations").status_code == 400  # no stray DELETE empties everything
        assert http.delete("/api/v1/conversations", params={"all": "true"}).json() == {"deleted": 1}
        imported = http.post("/api/v1/conversations/import", content=exported.content)
        assert imported.status_code == 201 and len(imported.json()["imported"]) == 1
        again = http.get("/api/v1/conversations/export").json()
        assert [c["turns"] for c in again["conversations"]] == [c["turns"] for c in exported.json()["conversations"]]
        bad = http.post("/api/v1/conversations/import", content=b'{"format": "chat"}')
        assert bad.status_code == 400 and "not a kura conversations export" in bad.json()["error"]["message"]
    gone = office.ask("otto", "Where do visitors park? quokka")["conversation_id"]
    with office.client("ada") as http:
        deleted = http.delete("/api/v1/users/otto").json()
    assert deleted["conversations_deleted"] >= 1 and office.service.conversation_store.owner_of(gone) is None


def test_kura_conversations_is_the_local_operators_own_through_the_server(office: Office) -> None:
    asked = kura(office, "ask", "When does the staff cafeteria open?")
    assert asked.returncode == 0 and "saved in conversation" in asked.stdout, asked.stderr
    cid = asked.stdout.split("saved in conversation ")[1].split()[0]
    listed = kura(office, "conversations", "list")
    assert cid in listed.stdout and "cafeteria" in listed.stdout
    assert "11:30" in kura(office, "conversations", "show", cid).stdout
    assert cid in kura(office, "conversations", "search", "cafeteria").stdout
    exported = office.data.parent / "mine.md"
    assert kura(office, "conversations", "export", str(exported), "--format", "markdown").returncode == 0
    assert "cafeteria" in exported.read_text()
    hana = office.ask("hana", "Where is the cafeteria?")["conversation_id"]
    refused = kura(office, "conversations", "show", hana)  # an admin and auditor, but not hana
    assert refused.returncode == 2 and f"no conversation '{hana}' among yours" in refused.stderr
    assert kura(office, "conversations", "delete", cid).returncode == 0
    assert cid not in kura(office, "conversations", "list").stdout


def test_kura_conversations_without_a_server_works_on_the_data_directory(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    service = KuraService(KuraSettings(data_dir=data), embedder=embedder)
    assert not service.ingest(local_operator(), write_corpus(tmp_path, CORPUS) / "public", ["everyone"]).failures
    service.close()
    alone = Office(data, service, "", {})
    env_off = {"KURA_ANSWER_GENERATION": "false"}
    asked = kura(alone, "ask", "When does the staff cafeteria open?", env=env_off)
    assert asked.returncode == 0 and "11:30" in asked.stdout, asked.stderr
    cid = asked.stdout.split("saved in conversation ")[1].split()[0]
    assert cid in kura(alone, "conversations", "list").stdout
    shown = kura(alone, "conversations", "show", cid)
    assert "11:30" in shown.stdout and "facilities.md" in shown.stdout, shown.stderr
    missing = kura(alone, "conversations", "show", "f" * 32)
    assert missing.returncode == 2 and f"no conversation '{'f' * 32}' among yours" in missing.stderr
