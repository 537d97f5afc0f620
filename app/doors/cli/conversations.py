"""`kura conversations list|show|search|rename|delete|export|import`: the saved conversations of
the person at the server's shell.

At the shell kura acts as the local operator, and the operator is a person too: `kura ask` keeps
the operator's questions as conversations (`kura ask --conversation ID` continues one), and
`kura conversations` reaches those, the operator's own, and nobody else's. Although the operator
is an admin and an auditor, another person's conversation id is answered like one that does not
exist (and the attempt is audited): there is no `--user`. Everyone else reaches theirs in the
browser or with their own key on `/api/v1/conversations`.

Like every command that needs the store, it goes through a running `kura serve` on the same
data directory (its API, with the operator token), else through this process's service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import app.doors.cli.remote.commands as cli_remote
from app.doors.cli.remote.client import ServerClient, ServerError
from app.identity.users import local_operator
from app.platform.settings import KuraSettings

conversations_app = typer.Typer(help="Your own saved conversations (the local operator's).", no_args_is_help=True)
console = Console()
_API = "/api/v1/conversations"


class _Remote:
    """The running server's conversations API, as the local operator."""

    def __init__(self, client: ServerClient) -> None:
        self.client = client

    def recent(self, limit: int) -> list[dict[str, Any]]:
        return self.client.get(_API, limit=limit)

    def show(self, conversation_id: str) -> dict[str, Any]:
        return self.client.get(f"{_API}/{conversation_id}")

    def search(self, query: str, limit: int) -> list[dict[str, Any]]:
        return self.client.get(f"{_API}/search", q=query, limit=limit)

    def rename(self, conversation_id: str, title: str) -> dict[str, Any]:
        return self.client.put(f"{_API}/{conversation_id}", {"title": title})

    def delete(self, conversation_id: str | None) -> int:
        path = f"{_API}/{conversation_id}" if conversation_id else f"{_API}?all=true"
        return int(self.client.delete(path)["deleted"])

    def export(self, fmt: str) -> str:
        return self.client.download(f"{_API}/export", format=fmt).text

    def import_(self, text: str) -> list[str]:
        return list(self.client.post_body(f"{_API}/import", text.encode("utf-8"))["imported"])

    def close(self) -> None:
        self.client.close()


class _Local:
    """This process's service, answering in the API's shapes (no server runs)."""

    def __init__(self) -> None:
        from app.service import KuraService

        self.service, self.me = KuraService(KuraSettings()), local_operator()

    def recent(self, limit: int) -> list[dict[str, Any]]:
        from app.doors.http.api.conversations import summary_out  # the API's shapes (fastapi: only when needed)

        return [summary_out(s).model_dump() for s in self.service.list_conversations(self.me, limit)]

    def show(self, conversation_id: str) -> dict[str, Any]:
        from app.doors.http.api.conversations import detail_out

        return detail_out(self.service.conversation(self.me, conversation_id)).model_dump()

    def search(self, query: str, limit: int) -> list[dict[str, Any]]:
        from app.doors.http.api.conversations import summary_out

        matches = self.service.search_conversations(self.me, query, limit)
        return [{"conversation": summary_out(m.summary).model_dump(), "field": m.field, "snippet": m.snippet}
                for m in matches]

    def rename(self, conversation_id: str, title: str) -> dict[str, Any]:
        from app.doors.http.api.conversations import summary_out

        return summary_out(self.service.rename_conversation(self.me, conversation_id, title)).model_dump()

    def delete(self, conversation_id: str | None) -> int:
        if conversation_id is None:
            return self.service.delete_all_conversations(self.me)
        self.service.delete_conversation(self.me, conversation_id)
        return 1

    def export(self, fmt: str) -> str:
        return self.service.export_conversations(self.me, fmt)

    def import_(self, text: str) -> list[str]:
        return self.service.import_conversations(self.me, text)

    def close(self) -> None:
        self.service.close()


@contextmanager
def _conversations() -> Iterator[Any]:
    """The server's conversations or this process's; a server's refusal is one red line, exit 2
    (a local one is printed the same way by `kura`'s main)."""
    client = cli_remote.server()
    case: Any = _Remote(client) if client else _Local()
    try:
        yield case
    except ServerError as exc:
        Console(stderr=True).print(f"kura: {exc.reason}", style="red", markup=False, highlight=False)
        raise typer.Exit(2) from None
    finally:
        case.close()


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def _say(text: str, style: str = "") -> None:
    """A line of text from a conversation: printed as typed (no Rich markup, no highlighting)."""
    console.print(text, style=style or None, markup=False, highlight=False, soft_wrap=True)


@conversations_app.command("list")
def list_conversations(limit: Annotated[int, typer.Option(help="how many, newest first")] = 50) -> None:
    """Your conversations, the most recently continued first."""
    with _conversations() as case:
        rows = case.recent(limit)
    if not rows:
        _say("no saved conversations (`kura ask` saves one)")
        return
    table = Table()
    for column in ("id", "last turn", "turns", "title"):
        table.add_column(column, no_wrap=column == "id")
    for c in rows:
        table.add_row(c["id"], _when(c["updated"]), str(c["turns"]), c["title"])
    console.print(table, markup=False, highlight=False)


@conversations_app.command("show")
def show(conversation_id: Annotated[str, typer.Argument(help="an id from `kura conversations list`")]) -> None:
    """One conversation, each answer as you may read it now (a source gone: its answer is not shown)."""
    with _conversations() as case:
        c = case.show(conversation_id)
    _say(c["title"], "bold")
    for turn in c["conversation_turns"]:
        _say(f"\n[{_when(turn['at'])}] {turn['question']}", "bold")
        _say(turn["answer"])
        for cite in turn["citations"]:
            _say(f"  [{cite['number']}] {cite['path']}" + (f" p.{cite['page']}" if cite["page"] else ""), "dim")


@conversations_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="words in a title, a question or an answer (English or Japanese)")],
    limit: Annotated[int, typer.Option(help="how many conversations")] = 20,
) -> None:
    """Find your conversations by what was asked or answered."""
    with _conversations() as case:
        matches = case.search(query, limit)
    if not matches:
        _say("no conversation of yours matches")
    for m in matches:
        _say(f"{m['conversation']['id']}  {m['conversation']['title']}", "bold")
        _say(f"  {m['field']}: {m['snippet']}")


@conversations_app.command("rename")
def rename(conversation_id: Annotated[str, typer.Argument()], title: Annotated[str, typer.Argument()]) -> None:
    """Give a conversation a title of your own."""
    with _conversations() as case:
        c = case.rename(conversation_id, title)
    _say(f"renamed {c['id']}: {c['title']}")


@conversations_app.command("delete")
def delete(
    conversation_id: Annotated[str | None, typer.Argument(help="the conversation to delete")] = None,
    every: Annotated[bool, typer.Option("--all", help="delete every conversation of yours")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Delete one conversation, or all of yours with --all (audited; the audit log keeps the questions)."""
    if bool(conversation_id) == every:
        raise typer.BadParameter("name one conversation id, or --all")
    if every and not yes:
        typer.confirm("delete every conversation of yours?", abort=True)
    with _conversations() as case:
        count = case.delete(None if every else conversation_id)
    _say(f"deleted {count} conversation{'s' if count != 1 else ''}")


@conversations_app.command("export")
def export(
    dest: Annotated[Path, typer.Argument(help="the file to write")],
    fmt: Annotated[str, typer.Option("--format", help="json (kura imports it again) or markdown")] = "json",
) -> None:
    """Write your whole history to a file (audited)."""
    with _conversations() as case:
        text = case.export(fmt)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    _say(f"wrote {dest}")


@conversations_app.command("import")
def import_(source: Annotated[Path, typer.Argument(help="a JSON file from `kura conversations export`")]) -> None:
    """Add the conversations of a JSON export to yours (new ids)."""
    with _conversations() as case:
        ids = case.import_(source.read_text(encoding="utf-8"))
    _say(f"imported {len(ids)} conversations")
