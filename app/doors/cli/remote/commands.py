"""The `kura` commands that need the store, when a `kura serve` on the same data directory
already owns it: the same output, produced through the server's API (app/doors/cli/remote/client.py)
as the local operator. The server's service checks the role and writes the audit entry."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from app.doors.cli.answer_print import print_citations, print_conversation, print_evidence, print_generated
from app.doors.cli.remote.client import ServerClient, ServerError, running_server
from app.platform.settings import KuraSettings

console = Console()


def server() -> ServerClient | None:
    """The running server of this data directory, if any (then the store is its to open)."""
    return running_server(KuraSettings())


@contextmanager
def use_case(remote: Callable[[ServerClient], Any]) -> Iterator[Any]:
    """A use case as the local operator calls it: the running server's, over its API
    (`remote(client)`, e.g. app/doors/cli/remote/usecases.RemotePeople), or this process's service, which
    opens no store for accounts and the audit log. Both have the same methods."""
    if client := server():
        case: Any = remote(client)
    else:
        from app.service import KuraService

        case = KuraService(KuraSettings())
    try:
        yield case
    finally:
        case.close()


def friendly(command: Callable[..., None]) -> Callable[..., None]:
    """A server's refusal is one red line and exit code 2, like the local commands' errors."""

    @functools.wraps(command)
    def run(*args: Any) -> None:
        try:
            command(*args)
        except ServerError as exc:
            Console(stderr=True).print(f"[red]kura: {exc}[/red]", highlight=False)
            raise typer.Exit(2) from None

    return run


@friendly
def search(client: ServerClient, query: str, limit: int) -> None:
    passages = client.post("/api/v1/search", {"query": query, "limit": limit, "as_admin": True})["passages"]
    if not passages:
        console.print("no matching passages")
    for p in passages:
        where = p["path"] + (f" p.{p['page']}" if p["page"] is not None else "")
        console.print(f"[bold]{p['number']}.[/bold] {where}  [dim]score {p['score']:.3f}[/dim]", highlight=False)
        console.print(f"   {p['snippet']}", markup=False, highlight=False)


@friendly
def ask(client: ServerClient, question: str, conversation_id: str | None = None) -> None:
    """The server's answer, printed as `kura ask` prints its own (app/doors/cli/answer_print.py)."""
    for event, data in client.ask_events(question, conversation_id=conversation_id):
        if event == "evidence":
            print_evidence(data["statement"], [(q["text"], q["citation"]) for q in data["quotes"]])
        elif event == "answer":
            print_generated(data["generated"], data["withheld"])
        elif event == "citations":
            where = [(c["number"], c["path"] + (f" p.{c['page']}" if c["page"] is not None else "")) for c in
                     data["citations"]]
            related = [(c["number"], c["path"] + (f" p.{c['page']}" if c["page"] is not None else "")) for c in
                       data.get("related", [])]
            print_citations(where, related)
        elif event == "done" and data.get("conversation_id"):
            print_conversation(data["conversation_id"])


@friendly
def docs(client: ServerClient) -> None:
    table = Table()
    for column in ("doc id", "title", "type", "pages", "chunks", "paths"):
        table.add_column(column)
    for d in client.get("/api/v1/documents"):
        paths = "\n".join(d["paths"])
        table.add_row(d["doc_id"][:12], d["title"], d["file_type"], str(d["pages"]), str(d["chunks"]), paths)
    console.print(table)


@friendly
def backup(client: ServerClient, dest: Path, audit_key: bool = True) -> None:
    s = client.post("/api/v1/backup", {"dest": str(dest.resolve()), "audit_key": audit_key})
    console.print(
        f"backup in {dest}: {s['files']} files, {s['chunks']} chunks, {s['bytes'] / 1e6:.1f} MB (by the server)"
        + ("" if s["audit_key"] else "; audit.key left out: keep it elsewhere")
    )
