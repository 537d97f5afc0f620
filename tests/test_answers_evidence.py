"""Answers an employee can trust, through the service on the real store, the real parser and the
real packaged model: the fact quoted verbatim with its citation first, abstention when no passage
answers, a generated answer shown only when its passages support every sentence of it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from app.identity.users import local_operator
from app.service import KuraService
from app.service.answer import ABSTAINED, ANSWERED
from base.cjk import is_japanese
from tests.conftest import shared_doc

pytestmark = pytest.mark.slow
QUESTION = "By what date must the FAA receive comments on the proposed AD?"


class ScriptedLLM:
    """Stands in for the model where what the model writes is the input under test: the
    support check and what the reader is shown. It writes `reply` and records each prompt."""

    name = "scripted"

    def __init__(self, reply: str, inner) -> None:  # noqa: ANN001
        self.reply, self.runtime = reply, inner.runtime
        self.prompts: list[str] = []

    def stream(self, messages: Sequence[dict[str, str]], max_tokens: int, timeout_s: float = 120.0) -> Iterator[str]:
        self.prompts.append("\n".join(m["content"] for m in messages))
        yield from self.reply.split(" ")[:1]
        for word in self.reply.split(" ")[1:]:
            yield " " + word


@pytest.fixture(scope="module")
def register(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real pages of a Federal Register notice, as a folder to ingest."""
    folder = tmp_path_factory.mktemp("fr") / "docs"
    folder.mkdir()
    source = shared_doc("en/federal_register_2020-17221.pdf")
    subprocess.run(["qpdf", str(source), "--pages", str(source), "1-3", "--", str(folder / "fr.pdf")], check=True)
    return folder


def _service(tmp_path: Path, folder: Path, embedder, llm, **settings) -> KuraService:  # noqa: ANN001
    from app.platform.settings import KuraSettings

    service = KuraService(KuraSettings(data_dir=tmp_path / "data", **settings), embedder=embedder, llm=llm)
    assert not service.ingest(local_operator(), folder, ["everyone"]).failures
    return service


def test_a_fact_question_gets_the_fact_quoted_verbatim_with_its_citation(tmp_path, register, embedder, llm) -> None:
    service = _service(tmp_path, register, embedder, llm, llm_max_answer_tokens=48)
    try:
        answer = service.ask(local_operator(), QUESTION)
        assert answer.verdict == ANSWERED and answer.supported
        lines = answer.quote_lines()
        assert any("September 21, 2020" in text for text, _ in lines), lines
        by_number = {c.number: c for c in answer.context}
        for text, number in lines:  # verbatim: an exact piece of the passage it cites
            assert text in by_number[number].passage.text
        cited = by_number[lines[0][1]].passage
        assert cited.location.startswith("fr.pdf p.")  # the display name, never the server path
        assert {c.number for c in answer.sources()} == {number for _, number in lines}
        answer.finish()  # the real model then writes; what it says is shown only if supported
        assert bool(answer.generated) == bool(answer.support and answer.support.supported)
        assert "September 21, 2020" in answer.shown_text and str(register) not in answer.shown_text
        entry = [e for e in service.audit.entries() if e["action"] == "answer"][-1]
        assert entry["verdict"] == ANSWERED and entry["answer"] == answer.shown_text
    finally:
        service.close()


def test_a_generated_answer_that_contradicts_its_passage_is_withheld_and_never_labelled_supported(
    tmp_path, register, embedder, llm
) -> None:
    wrong = ScriptedLLM("The FAA must receive comments on the proposed AD by October 5, 2021 [1].", llm)
    service = _service(tmp_path, register, embedder, wrong)
    try:
        answer = service.ask(local_operator(), QUESTION)
        answer.finish()
        assert wrong.prompts and "fr.pdf" in wrong.prompts[0] and str(register) not in wrong.prompts[0]
        assert answer.support is not None and not answer.support.supported
        assert answer.generated == "" and "October" not in answer.shown_text
        assert answer.withheld_reason and "2021" in answer.withheld_reason
        wrong.reply = "The FAA must receive comments on this proposed AD by September 21, 2020 [1]."
        right = service.ask(local_operator(), QUESTION)
        right.finish()
        assert right.support is not None and right.support.supported
        assert right.generated.startswith("The FAA must receive comments") and right.withheld_reason is None
    finally:
        service.close()


def test_an_unanswerable_question_abstains_plainly_lists_related_passages_and_calls_no_model(
    tmp_path, register, embedder, llm
) -> None:
    recorder = ScriptedLLM("Boeing delivered the first 737 MAX in 2017 [1].", llm)
    # Operating points set so that no quote can qualify: the mechanics of abstaining, not the
    # extractor's scores (those are measured by `kura eval answers`).
    service = _service(tmp_path, register, embedder, recorder, evidence_min_score=1.0, evidence_hedge_score=1.0)
    try:
        answer = service.ask(local_operator(), "When was the 737 MAX first delivered to an airline?")
        assert answer.context, "the closest passages were found"
        assert answer.verdict == ABSTAINED and not answer.supported and not answer.quote_lines()
        assert answer.statement.startswith("None of the documents you may read answers this question")
        assert answer.sources() == [] and answer.also_retrieved() == answer.context  # related reading
        assert answer.finish() == "" and recorder.prompts == []  # nothing was invented
        assert "2017" not in answer.shown_text
    finally:
        service.close()


def test_evidence_only_answers_never_call_the_model(tmp_path, register, embedder, llm) -> None:
    recorder = ScriptedLLM("unused", llm)
    service = _service(tmp_path, register, embedder, recorder, answer_generation=False)
    try:
        answer = service.ask(local_operator(), QUESTION)
        answer.finish()
        assert recorder.prompts == [] and service.llm_queue.waiting() == 0
        assert answer.verdict == ANSWERED and "September 21, 2020" in answer.shown_text
    finally:
        service.close()


def test_a_japanese_question_gets_a_japanese_evidence_quote(tmp_path, embedder, llm, copy_docs) -> None:
    folder = copy_docs("ja/mhlw_model_shugyo_kisoku_p1-40.DERIVED.html")
    service = _service(tmp_path, folder, embedder, llm, answer_generation=False)
    try:
        answer = service.ask(local_operator(), "所定労働時間は1日何時間ですか")
        assert answer.verdict == ANSWERED, answer.shown_text
        assert answer.statement == "文書の記述:"
        text = "".join(t for t, _ in answer.quote_lines())
        assert is_japanese(text) and "所定労働時間" in text and "時間とする" in text, text
    finally:
        service.close()
