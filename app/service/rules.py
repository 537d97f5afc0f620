"""The rules every door shares about what a request may carry: how big each field may be, and
that documents are only ingested once someone has chosen who may read them. The use cases call
these; a door only translates the error (HTTP 413 / 400, a page message, an exit code).

Usage:
    question = check_size("question", text, QUESTION_CHARS)   # raises TooLarge(field, limit)
    groups = readers(["hr", "managers"])                        # raises ReadersRequired when empty
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from app.identity.users import check_group_name

# A question or a search query. A longer text is almost always a pasted document, and it would
# crowd the passages out of the model's context.
QUESTION_CHARS = 4000
# One earlier turn of a conversation (a question or an answer) and how many of them are read.
TURN_CHARS = 20000
HISTORY_TURNS = 40
# A conversations export read back by `import_conversations` (issue 26): ~ thousands of turns.
IMPORT_CHARS = 64_000_000


class TooLarge(ValueError):
    """A field is over its limit; every door answers it the same way (HTTP 413)."""

    def __init__(self, field: str, size: int, limit: int, unit: str = "characters") -> None:
        self.field, self.size, self.limit = field, size, limit
        super().__init__(f"the {field} is {size:,} {unit}; the limit is {limit:,} {unit}: shorten it")


class ReadersRequired(ValueError):
    """An ingest that names no readers: kura never publishes to everyone by default."""

    def __init__(self) -> None:
        super().__init__(
            "choose who may read these documents: name one or more groups (e.g. hr), "
            "or the group everyone to publish them to every employee"
        )


def check_size(field: str, text: str, limit: int) -> str:
    """`text` unchanged, or TooLarge naming the field and its limit."""
    if len(text) > limit:
        raise TooLarge(field, len(text), limit)
    return text


def check_question(text: str, field: str = "question") -> str:
    """A question or a query: not blank, at most QUESTION_CHARS."""
    if not text or not text.strip():
        raise ValueError(f"the {field} is empty; type what you are looking for")
    return check_size(field, text, QUESTION_CHARS)


def check_history(history: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """The conversation the use case reads: its last HISTORY_TURNS turns, each within TURN_CHARS
    (a chat front end sends every earlier turn; only the recent ones matter to a follow-up)."""
    recent = list(history)[-HISTORY_TURNS:]
    for turn in recent:
        check_size("conversation turn", turn.get("content", ""), TURN_CHARS)
        if turn.get("role") not in ("user", "assistant"):
            raise ValueError(f"a conversation turn's role is user or assistant, not {turn.get('role')!r}")
    return recent


def readers(groups: Iterable[str]) -> tuple[str, ...]:
    """The ACL groups an ingest publishes to: checked names, sorted, at least one."""
    names = sorted({check_group_name(g.strip()) for g in groups if g and g.strip()})
    if not names:
        raise ReadersRequired()
    return tuple(names)
