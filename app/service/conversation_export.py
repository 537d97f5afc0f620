"""A person's conversations as a file: JSON that kura reads back (`parse_export`, so an export
round-trips: export, import elsewhere, export again gives the same conversations) and Markdown
to read. Each turn is written as it is reopened now (app/service/conversations.py): an answer
built on a passage its owner may no longer read is not in the file.

Markdown escapes every ASCII punctuation character of what it quotes, so a hostile title,
question or answer stays text in any viewer (no link, no image fetched, no HTML).

Usage:
    text = to_json("alice", conversations)
    for title, turns in parse_export(text): ...
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from app.service.conversation_store import Conversation, ReopenedTurn, SavedCitation, SavedTurn, title_of
from app.service.rules import QUESTION_CHARS, TURN_CHARS, check_size

FORMAT, VERSION = "kura-conversations", 1
MAX_CITATIONS = 64
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _turn_json(turn: ReopenedTurn) -> dict[str, Any]:
    return {
        "question": turn.question,
        "at": turn.at,
        "verdict": turn.verdict,
        "supported": turn.supported,
        "statement": turn.statement,
        "quotes": [{"text": text, "citation": n} for text, n in turn.quotes],
        "generated": turn.generated or None,
        "withheld": turn.withheld_reason,
        "answer": turn.shown_text,
        "citations": [
            {"number": c.number, "location": c.passage.location, "page": c.passage.page, "doc_id": c.passage.doc_id,
             "chunk_ids": list(c.chunk_ids), "cited": c.number in turn.cited}
            for c in turn.context
        ],
    }


def to_json(owner: str, conversations: Sequence[Conversation]) -> str:
    data = {
        "format": FORMAT,
        "version": VERSION,
        "owner": owner,
        "exported": time.time(),
        "conversations": [
            {"id": c.id, "title": c.title, "created": c.summary.created, "updated": c.summary.updated,
             "turns": [_turn_json(t) for t in c.turns]}
            for c in conversations
        ],
    }
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def _md(text: object) -> str:
    """Markdown that shows `text` as written."""
    return _PUNCTUATION.sub(r"\\\1", str(text))


def to_markdown(owner: str, conversations: Sequence[Conversation]) -> str:
    lines = [f"# Conversations of {_md(owner)}", "", f"Exported from kura on {_iso(time.time())}.", ""]
    for c in conversations:
        lines += [f"## {_md(c.title)}", "", f"*{_iso(c.summary.created)} to {_iso(c.summary.updated)}*", ""]
        for turn in c.turns:
            lines += [f"**Question** ({_iso(turn.at)}): {_md(turn.question)}", ""]
            lines += [_md(line) + "  " for line in turn.shown_text.splitlines()] + [""]
            for label, passages in (("Sources", turn.sources()), ("Related reading", turn.also_retrieved())):
                if passages:
                    lines += [f"{label}: " + "; ".join(f"\\[{p.number}\\] {_md(p.passage.location)}" for p in passages),
                              ""]
        lines += ["---", ""]
    return "\n".join(lines)


def parse_export(text: str) -> list[tuple[str, list[SavedTurn]]]:
    """The conversations of a JSON export as (title, turns); ValueError says what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"this is not a kura conversations export (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError(f"this is not a kura conversations export: expected format {FORMAT!r} version {VERSION}")
    out = []
    for number, conversation in enumerate(_list(data, "conversations"), start=1):
        where = f"conversation {number}"
        title = title_of(_text(conversation, "title", where, QUESTION_CHARS))
        turns = [_saved_turn(t, f"{where} turn {i}") for i, t in enumerate(_list(conversation, "turns"), start=1)]
        if turns and title:
            out.append((title, turns))
    return out


def _saved_turn(t: Any, where: str) -> SavedTurn:
    if not isinstance(t, dict):
        raise ValueError(f"{where} is not an object")
    quotes = tuple(
        (_text(q, "text", where, TURN_CHARS), _number(q, "citation", where)) for q in _list(t, "quotes", where)
    )
    citations = _list(t, "citations", where)
    if len(citations) > MAX_CITATIONS:
        raise ValueError(f"{where} has {len(citations)} citations; at most {MAX_CITATIONS}")
    return SavedTurn(
        question=check_size("question", _text(t, "question", where, QUESTION_CHARS), QUESTION_CHARS),
        shown_text=_text(t, "answer", where, TURN_CHARS),
        verdict=_text(t, "verdict", where, 20),
        supported=bool(t.get("supported")),
        statement=_text(t, "statement", where, TURN_CHARS),
        quotes=quotes,
        generated=_text(t, "generated", where, TURN_CHARS) or None,
        withheld=_text(t, "withheld", where, TURN_CHARS) or None,
        citations=tuple(_citation(c, where) for c in citations),
        scope="reader",  # an import never claims an admin's reach
        at=float(t.get("at") or time.time()),
    )


def _citation(c: Any, where: str) -> SavedCitation:
    chunk_ids = tuple(str(i)[:100] for i in _list(c, "chunk_ids", where))[:16]
    page = c.get("page") if isinstance(c.get("page"), int) else None
    return SavedCitation(
        _number(c, "number", where), chunk_ids, _text(c, "doc_id", where, 200), _text(c, "location", where, 2000),
        page, bool(c.get("cited")),
    )


def _list(data: Any, key: str, where: str = "the export") -> list[Any]:
    value = data.get(key, []) if isinstance(data, dict) else None
    if not isinstance(value, list):
        raise ValueError(f"{where}: {key!r} must be a list")
    return value


def _text(data: Any, key: str, where: str, limit: int) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key!r} must be text")
    return check_size(f"{key} of {where}", value, limit)


def _number(data: Any, key: str, where: str) -> int:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, int) or not 0 < value < 1000:
        raise ValueError(f"{where}: {key!r} must be a number from 1 to 999")
    return value
