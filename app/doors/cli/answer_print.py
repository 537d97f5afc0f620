"""How `kura ask` prints an answer, in-process or through a running server: what the documents
say first (the quote with its [n]), then the generated answer only when it passed the support
check (or why it was withheld), then the citations. Document text is printed as plain text."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console

console = Console()
_PLAIN = {"markup": False, "soft_wrap": True, "highlight": False}


def print_evidence(statement: str, quotes: Sequence[tuple[str, int]]) -> None:
    console.print(statement, **_PLAIN)
    for text, number in quotes:
        console.print(f"  “{text}” [{number}]", **_PLAIN)


def print_generated(generated: str | None, withheld: str | None) -> None:
    if generated:
        console.print("\n[bold]Generated answer[/bold] (checked against the passages)")
        console.print(generated, **_PLAIN)
    elif withheld:
        console.print(f"\n[yellow]{withheld}[/yellow]", highlight=False)


def print_citations(cited: Sequence[tuple[int, str]], related: Sequence[tuple[int, str]] = ()) -> None:
    """`cited`: (number, 'path p.N') of the passages the answer cites; `related`: the others found."""
    if cited:
        console.print("\n[bold]Citations[/bold]")
    for number, where in cited:
        console.print(f"[{number}] {where}", **_PLAIN)
    if related:
        console.print("[bold]Also retrieved[/bold] (not cited)")
    for number, where in related:
        console.print(f"[{number}] {where}", **_PLAIN)


def print_conversation(conversation_id: str) -> None:
    """Where the answer was kept (issue 26): continue with `kura ask --conversation ID`."""
    console.print(f"\nsaved in conversation {conversation_id} (continue: kura ask --conversation {conversation_id})",
                  style="dim", **_PLAIN)
