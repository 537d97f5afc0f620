"""A finished answer as safe Markdown with every sentence that no cited passage supports marked.

Usage:
    st.markdown(marked_answer(answer.text, {1: "Annual leave is 20 days."}, "no source"))
    # "Leave is 20 days \\[1\\]\\. Pay rises 9% :orange-badge[no source]"
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from app.doors import safe_text
from models.citations import sentence_support

_CLOSERS = "*_~ \t\n"  # Markdown that closes a sentence's emphasis: the mark goes inside it
_BLOCK_PREFIX = re.compile(r"(?:\s*(?:[-*+]|\d{1,9}[.)])\s+|\s*#{1,6}\s+|\s*>\s?)*")


def _mark_end(sentence: str) -> str:
    body = sentence.rstrip(_CLOSERS)
    return body + safe_text.SENTENCE_MARK + sentence[len(body) :]


def marked_answer(answer: str, passages: Mapping[int, str], badge: str) -> str:
    """`answer` through safe_text.answer, with `badge` after each unsupported sentence. Sentences
    are checked line by line, after any list or heading marker, so a mark never breaks a list."""
    clean = answer.replace(safe_text.SENTENCE_MARK, "").replace("\r\n", "\n").replace("\r", "\n")
    lines: list[str] = []
    in_fence = False
    for line in clean.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence or line.lstrip().startswith(("```", "~~~")):
            lines.append(line)
            continue
        prefix = _BLOCK_PREFIX.match(line).group(0)  # type: ignore[union-attr]
        pieces = sentence_support(line[len(prefix) :], passages)
        lines.append(prefix + "".join(p if ok else _mark_end(p) for p, ok in pieces))
    tag = f" :orange-badge[{safe_text.text(badge)}]"
    return safe_text.answer("\n".join(lines), mark=lambda: tag)


def unsupported_sentences(answer: str, passages: Mapping[int, str]) -> list[str]:
    """The sentences that carry no citation of a passage that supports them."""
    return [piece.strip() for piece, ok in sentence_support(answer, passages) if not ok]
