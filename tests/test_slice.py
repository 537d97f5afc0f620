"""The vertical slice on real parts: real files in, a streamed answer with file-and-page
citations out, through the same service facade and CLI the product uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.identity.users import local_operator
from tests.conftest import REPO, shared_doc


def _subset_pdf(source: Path, pages: str, target: Path) -> Path:
    """A real PDF cut to `pages` with qpdf; page numbers stay those of the original's first pages."""
    subprocess.run(["qpdf", str(source), "--pages", str(source), pages, "--", str(target)], check=True)
    return target


@pytest.fixture
def english_and_japanese(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    _subset_pdf(shared_doc("en/federal_register_2020-17221.pdf"), "1-6", folder / "federal_register.pdf")
    _subset_pdf(shared_doc("ja/mhlw_model_shugyo_kisoku_R4-11.pdf"), "1-14", folder / "就業規則.pdf")
    return folder


def test_settings_read_environment_and_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.platform.settings import KuraSettings

    config = tmp_path / "kura.yaml"
    config.write_text("chunk_tokens: 123\nui_language: ja\n")
    monkeypatch.setenv("KURA_CONFIG", str(config))
    monkeypatch.setenv("KURA_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("KURA_SEARCH_TOP_K", "3")
    settings = KuraSettings()
    assert settings.data_dir == tmp_path / "d"
    assert settings.chunk_tokens == 123 and settings.ui_language == "ja"
    assert settings.search_top_k == 3
    assert settings.store_dir.parent == settings.manifest_path.parent == settings.data_dir


def test_settings_reject_unknown_language_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from app.platform.settings import KuraSettings

    monkeypatch.setenv("KURA_UI_LANGUAGE", "fr")
    with pytest.raises(ValidationError, match="ui_language must be 'en' or 'ja'"):
        KuraSettings()


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.platform.settings import KuraSettings

    monkeypatch.setenv("KURA_CONFIG", str(REPO / "kura.example.yaml"))
    settings = KuraSettings()
    assert settings.chunk_tokens > 0 and settings.ui_language in ("en", "ja")


def test_english_answer_cites_the_page_that_holds_it(service, english_and_japanese: Path) -> None:
    report = service.ingest(local_operator(), english_and_japanese, groups=("everyone",))
    assert report.count("ingested") == 2, report.results

    answer = service.ask(
        local_operator(), "When was the new master minimum equipment list (MMEL) published?", as_admin=True
    )
    streamed = list(answer.tokens())
    assert len(streamed) > 1 and answer.text.strip(), "the answer must stream tokens"
    holding = [c.passage for c in answer.context if "April 10, 2020" in c.passage.text]
    # Adjacent chunks may be merged into one passage, cited as a page range ("pp.2-3").
    assert any(p.title == "federal_register.pdf" and p.page <= 3 <= (p.page_end or p.page) for p in holding), [
        c.passage.location for c in answer.context
    ]
    assert answer.citations(), "an answer lists its citations"


def test_japanese_question_finds_the_page_that_holds_the_answer(service, english_and_japanese: Path) -> None:
    service.ingest(local_operator(), english_and_japanese, groups=("everyone",))
    passages = service.search(local_operator(), "会社は入社を希望する者の中から何を行って採用しますか", as_admin=True)
    hits = [(p.title, p.page) for p in passages if "選考試験" in p.text]
    assert ("就業規則.pdf", 12) in hits, [(p.location, p.text[:40]) for p in passages]


def _kura(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.doors.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def test_cli_ingests_and_answers_with_path_and_page_citations(data_dir: Path, copy_docs) -> None:
    folder = copy_docs("en/scotus_transcript_p1.pdf")
    env = {**os.environ, "KURA_DATA_DIR": str(data_dir), "KURA_LLM_MAX_ANSWER_TOKENS": "48"}
    ingest = _kura("ingest", str(folder), "--groups", "everyone", env=env)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert "ingested" in ingest.stdout

    asked = _kura("ask", "Who is arguing the case?", env=env)
    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert "Citations" in asked.stdout
    # The reader's display path (relative to the ingested folder), never the server's absolute path.
    assert "scotus_transcript_p1.pdf p.1" in asked.stdout and str(folder) not in asked.stdout


def test_cli_ingest_exits_non_zero_only_when_nothing_could_be_ingested(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    env = {**os.environ, "KURA_DATA_DIR": str(data_dir)}
    result = _kura("ingest", str(bad), "--groups", "everyone", env=env)
    assert result.returncode == 1
    assert "empty.txt" in result.stdout
