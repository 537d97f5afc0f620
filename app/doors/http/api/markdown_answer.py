"""An answer as Markdown for OpenAI-speaking front ends, with OpenAI's `url_citation`
annotations: what the documents say first (the verbatim quote and its [n]), the verdict when
they may not answer, the sources; then, once checked, the generated answer or why it was withheld.

Everything from a document or the model is escaped (app/doors/safe_text.py): a front end
renders Markdown, and a document that writes `![](http://x/?q=...)` must not make a reader's
browser fetch anything.

Usage:
    content, annotations = annotated_markdown(answer, "https://kura.example/passage?chunk=")
    content += generated_markdown(answer)        # after answer.tokens() has ended
"""

from __future__ import annotations

from app.doors import safe_text
from app.service.answer import ABSTAINED, WORDS, Answer
from retrieval.context import ContextPassage


def _title(c: ContextPassage) -> str:
    return c.passage.location


def annotated_markdown(answer: Answer, link: str) -> tuple[str, list[dict]]:
    """The evidence part of the content and one url_citation annotation per cited passage
    (its span is the passage's first [n] marker in the content)."""
    content = f"**{safe_text.text(answer.statement)}**\n\n"
    for quote, number in answer.quote_lines():
        content += f"> {safe_text.text(quote)} [{number}]\n>\n"
    content = content.removesuffix(">\n") + "\n" if answer.quote_lines() else content
    shown = answer.sources() if answer.verdict != ABSTAINED else list(answer.context)
    if shown:
        label = "Related reading" if answer.verdict == ABSTAINED else "Sources"
        if answer.language == "ja":
            label = "関連資料" if answer.verdict == ABSTAINED else "出典"
        content += f"**{label}:** " + "; ".join(f"[{c.number}] {safe_text.text(_title(c))}" for c in shown) + "\n"
    annotations = []
    for c in shown:
        marker = f"[{c.number}]"
        start = content.find(marker)
        annotations.append(
            {
                "type": "url_citation",
                "url_citation": {
                    "url": link + c.passage.chunk_id,
                    "title": _title(c),
                    "start_index": start,
                    "end_index": start + len(marker),
                },
            }
        )
    return content, annotations


def generated_markdown(answer: Answer) -> str:
    """The checked generated answer, or why it was withheld ('' when there was none)."""
    words = WORDS[answer.language]
    if answer.generated:
        return f"\n**{safe_text.text(words['generated'])}**\n\n{safe_text.answer(answer.generated)}\n"
    if answer.withheld_reason:
        return f"\n*{safe_text.text(answer.withheld_reason)}.*\n"
    return ""
