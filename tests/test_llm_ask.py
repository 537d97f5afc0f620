"""Grounded answering through the service: follow-ups, the busy line and a model swap without
restart, on the real store, the real parser and the real model (evidence and the support check:
test_answers_evidence.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.identity.users import local_operator
from models.queue import QueueFull
from tests.conftest import shared_doc

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ingested(embedder, llm, tmp_path_factory: pytest.TempPathFactory):
    """One service with three real PDF pages ingested, shared by this module (ingesting is slow)."""
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    root = tmp_path_factory.mktemp("ask")
    folder = root / "docs"
    folder.mkdir()
    source = shared_doc("en/federal_register_2020-17221.pdf")
    subprocess.run(
        ["qpdf", str(source), "--pages", str(source), "1-3", "--", str(folder / "fr.pdf")],
        check=True,
    )
    service = KuraService(KuraSettings(data_dir=root / "data", llm_max_answer_tokens=48), embedder=embedder, llm=llm)
    report = service.ingest(local_operator(), folder, groups=("everyone",))
    assert report.count("ingested") == 1
    yield service
    service.close()


def test_follow_up_is_condensed_with_the_earlier_topic(ingested) -> None:
    history = [
        {"role": "user", "content": "What does the master minimum equipment list (MMEL) cover?"},
        {"role": "assistant", "content": "It lists equipment that may be inoperative [1]."},
    ]
    answer = ingested.ask(
        local_operator(), "When was it published?", as_admin=True, history=history
    )
    "".join(answer.tokens())
    standalone = (answer.standalone_question or "").lower()
    assert "mmel" in standalone or "equipment" in standalone, standalone
    assert answer.context, "the standalone question finds the MMEL passages"


def test_question_beyond_the_line_limit_gets_busy_with_position(ingested) -> None:
    line = ingested.llm_queue
    line.max_waiting = 1
    holding = line.submit("someone", [{"role": "user", "content": "Count to ten."}], 32)
    next(holding)
    waiting = ingested.ask(local_operator(), "When was the MMEL published?", as_admin=True)
    with pytest.raises(QueueFull, match="number 2 in line"):
        ingested.ask(local_operator(), "Who published the MMEL?", as_admin=True)
    holding.close()
    assert "".join(waiting.tokens())
    line.max_waiting = ingested.settings.llm_queue_limit


def test_admin_switches_the_model_without_restart(ingested, tmp_path: Path) -> None:
    from models.registry import packaged_llm_path

    copy = tmp_path / "site-llm.gguf"
    shutil.copy2(packaged_llm_path(), copy)
    ingested.models.add(copy, name="site-llm")
    before = ingested.llm_queue.llm
    entry = ingested.use_model(local_operator(), "site-llm")
    assert entry.name == "site-llm"
    assert ingested.llm is not before and ingested.llm_queue.llm is ingested.llm
    assert ingested.llm.path == copy.resolve()
    answer = ingested.ask(local_operator(), "When was the MMEL published?", as_admin=True)
    assert "".join(answer.tokens())
    assert any(e.get("action") == "use_model" for e in ingested.audit.entries())
