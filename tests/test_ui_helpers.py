"""The UI's pure parts: highlighting, saving uploads, exporting and linking the audit log,
the UI texts in two languages."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest

from app.doors.ui.audit_view import entry_link, recent_months, to_csv
from app.doors.ui.highlight import highlight_html, match_spans, query_terms
from app.doors.ui.i18n import keys, t
from app.service.uploads import BadUpload, save_uploads, without_top_folder


def test_query_words_are_marked_in_the_passage_and_html_is_escaped():
    html = highlight_html(
        "Employees get <b>20</b> days of leave; cleave is unrelated.", "How many leave days?"
    )
    assert "<mark>leave</mark>" in html and "<mark>days</mark>" in html
    assert "c<mark>leave</mark>" not in html  # whole-word starts only
    assert "&lt;b&gt;20&lt;/b&gt;" in html  # the passage can never inject markup


def test_japanese_query_is_matched_by_bigrams_without_spaces():
    assert "休暇" in query_terms("年次有給休暇は何日ですか")
    text = "労働者は年次有給休暇を取得できる。"
    marked = "".join(text[s:e] for s, e in match_spans(text, "有給休暇の日数"))
    assert "有給休暇" in marked


def test_upload_saves_a_folder_tree_under_the_chosen_folder(tmp_path: Path):
    folder = save_uploads(
        tmp_path, "policies", [("hr/leave.pdf", b"%PDF-1"), ("intro.html", b"<p>x</p>")]
    )
    assert folder == tmp_path / "policies"
    assert (folder / "hr" / "leave.pdf").read_bytes() == b"%PDF-1"
    assert (folder / "intro.html").exists()


@pytest.mark.parametrize(
    "name", ["../escape.pdf", "a/../../escape.pdf", ".hidden/x.pdf", "a/..\\..\\x.pdf"]
)
def test_upload_names_that_climb_out_of_the_folder_are_refused(tmp_path: Path, name: str):
    with pytest.raises(BadUpload, match="rename the file"):
        save_uploads(tmp_path / "uploads", "policies", [(name, b"x")])
    assert not (tmp_path / "escape.pdf").exists()


@pytest.mark.parametrize("folder", ["../up", "a/b", "", ".."])
def test_upload_folder_names_with_slashes_or_dots_are_refused(tmp_path: Path, folder: str):
    with pytest.raises(BadUpload, match="folder name"):
        save_uploads(tmp_path, folder, [("x.pdf", b"x")])


ENTRIES = [
    {
        "seq": 1,
        "time": "2026-01-05T10:00:00.000Z",
        "user": "alice",
        "role": "employee",
        "action": "ask",
        "query": "How many days of leave?",
        "answer": "Twenty [1].",
        "documents": ["d1"],
        "cited": ["hr.pdf p.3"],
    },
    {
        "seq": 2,
        "time": "2026-01-06T10:00:00.000Z",
        "user": "bob",
        "role": "employee",
        "action": "search",
        "query": "expenses",
        "documents": ["d2"],
    },
    {
        "seq": 3,
        "time": "2026-01-07T10:00:00.000Z",
        "user": "alice",
        "role": "admin",
        "action": "ingest",
        "folder": "/srv/docs",
    },
]


def test_workbench_rows_link_to_the_log_page_and_months_count_back_across_a_year():
    assert entry_link(42) == "workbench?seq=42"  # the workbench shows entry 42 with its chain proof
    assert recent_months(date(2026, 2, 15), 4) == ["2026-02", "2026-01", "2025-12", "2025-11"]


def test_audit_csv_keeps_every_field():
    rows = list(csv.DictReader(io.StringIO(to_csv(ENTRIES).decode("utf-8-sig"))))
    assert [r["seq"] for r in rows] == ["1", "2", "3"]
    assert json.loads(rows[0]["cited"]) == ["hr.pdf p.3"] and rows[2]["folder"] == "/srv/docs"


def test_every_ui_text_exists_in_english_and_japanese_with_the_same_fields():
    import string

    for key in keys():
        english, japanese = t(key, "en"), t(key, "ja")
        assert english and japanese
        fields = lambda s: {f for _, f, _, _ in string.Formatter().parse(s) if f}  # noqa: E731
        assert fields(english) == fields(japanese), key


def test_a_folder_upload_drops_the_chosen_folders_own_name():
    assert without_top_folder(["hr/a.pdf", "hr/sub/b.pdf"]) == ["a.pdf", "sub/b.pdf"]
    assert without_top_folder(["a.pdf", "hr/b.pdf"]) == ["a.pdf", "hr/b.pdf"]
    assert without_top_folder(["hr/a.pdf", "it/b.pdf"]) == ["hr/a.pdf", "it/b.pdf"]
