"""Untrusted text (file names, headings, passages, questions, model answers) made safe to show.

Streamlit renders Markdown almost everywhere a string appears: st.markdown, st.caption, st.info,
chat messages, widget and expander labels. A document or a model that writes `![](http://x/?q=…)`
would make every reader's browser fetch that address, and `:red[...]` or HTML would change what
the page shows. Two functions, used by every page:

- `text(s)`: Markdown that shows `s` exactly as written (every ASCII punctuation character
  backslash-escaped, which CommonMark defines as literal; this also stops Streamlit's
  `:colour[...]`, `:emoji:` and `$math$` syntax; a word joiner stops GFM's bare-URL links).
- `answer(s)`: a model answer in a small safe Markdown subset: paragraphs, lists, bold, italics
  and code. Links keep only their text; images, HTML and everything else show as plain text.

Places that show raw strings without Markdown (st.text, st.code, st.dataframe cells) need
neither. Usage:
    st.caption(text(passage.source_path))
    st.markdown(answer(model_output))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_BACKTICKS = re.compile(r"`+")
# Mark the end of a sentence that `answer` should tag (see app/doors/ui/citation_marks.py): a private-use
# character that no model output keeps (it is removed from the answer first).
SENTENCE_MARK = "\ue000"


# GFM turns bare URLs and e-mail addresses into links after escapes are resolved, so an escape
# cannot stop it; an invisible word joiner inside "://", "www." and "@" does.
_AUTOLINK = re.compile(r"(?i)(:)(//)|(www)(\.)|(@)")
WORD_JOINER = "\u2060"


def _no_autolink(match: re.Match[str]) -> str:
    first, second = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    if match.group(5):
        return "@" + WORD_JOINER
    return first + WORD_JOINER + second


def text(value: object) -> str:
    """`value` as Markdown that renders as exactly these characters (plus invisible word joiners
    that keep addresses from becoming links)."""
    s = str(value).replace("\r\n", "\n").replace("\r", "\n").replace(SENTENCE_MARK, "")
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(_no_autolink, s))


def _parser() -> MarkdownIt:
    md = MarkdownIt("zero", {"html": False, "linkify": False, "typographer": False})
    # Links and images are parsed only so that they can be dropped below; autolinks likewise.
    md.enable(["list", "fence", "code", "emphasis", "backticks", "newline", "escape"])
    md.enable(["link", "image", "autolink"])
    return md


_MD = _parser()


def _code_span(content: str) -> str:
    runs = [len(r) for r in _BACKTICKS.findall(content)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if content.startswith("`") or content.endswith("`") or not content.strip() else ""
    return f"{fence}{pad}{content}{pad}{fence}"


def _inline(children: Sequence[Token], mark: Callable[[], str]) -> str:
    out: list[str] = []
    in_link = 0
    for tok in children:
        kind = tok.type
        if kind == "text":
            pieces = tok.content.split(SENTENCE_MARK)
            for i, piece in enumerate(pieces):
                if i:
                    out.append(mark())
                out.append(text(piece))
        elif kind == "code_inline":
            out.append(_code_span(tok.content.replace(SENTENCE_MARK, "")))
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind in ("strong_open", "strong_close"):
            out.append("**")
        elif kind in ("em_open", "em_close"):
            out.append("*")
        elif kind == "link_open":
            in_link += 1  # keep the link's words, drop its address
        elif kind == "link_close":
            in_link -= 1
        elif kind == "image":
            continue  # an image is never shown, nor its address
        else:
            out.append(text(tok.content))
    return "".join(out)


def answer(value: str, mark: Callable[[], str] | None = None) -> str:
    """A model answer as safe Markdown (see the module docstring). Where the text holds
    SENTENCE_MARK, `mark()` supplies the Markdown to put there (a trusted badge)."""
    source = str(value).replace("\r\n", "\n").replace("\r", "\n")
    marker = mark or (lambda: "")
    tokens = _MD.parse(source)
    lines: list[str] = []
    lists: list[list[int]] = []  # per open list: [next number, or -1 for bullets]
    item_prefix: str | None = None
    indent = ""

    def emit(block: str) -> None:
        nonlocal item_prefix
        first = True
        for line in block.split("\n"):
            if first and item_prefix is not None:
                lines.append(item_prefix + line)
                item_prefix = None
            else:
                lines.append((indent if lines else "") + line)
            first = False

    for tok in tokens:
        kind = tok.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrGet("start") or 1) if kind == "ordered_list_open" else -1
            lists.append([start])
            if not lists[:-1] and lines:
                lines.append("")
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                lines.append("")
        elif kind == "list_item_open":
            depth = len(lists) - 1
            counter = lists[-1]
            marker_text = "-" if counter[0] < 0 else f"{counter[0]}."
            if counter[0] >= 0:
                counter[0] += 1
            outer = "    " * depth
            item_prefix = f"{outer}{marker_text} "
            indent = "    " * (depth + 1)
        elif kind == "list_item_close":
            indent = "    " * (len(lists) - 1) if len(lists) > 1 else ""
            item_prefix = None
        elif kind == "inline":
            emit(_inline(tok.children or [], marker))
        elif kind == "paragraph_close" and not tok.hidden:
            lines.append("")
        elif kind in ("fence", "code_block"):
            body = tok.content.replace(SENTENCE_MARK, "").rstrip("\n")
            fence = "`" * max(3, max((len(r) for r in _BACKTICKS.findall(body)), default=0) + 1)
            emit(f"{fence}\n{body}\n{fence}")
            lines.append("")
    return "\n".join(lines).strip("\n")
