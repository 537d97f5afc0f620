"""`kura eval answers` on a small real QA set cut from SQuAD: retrieval through the ask path,
each question asked answerable and with its gold passage removed, scored the way readers meet
the answer. Correctness only; the numbers are in README "Answers"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.service.answer_eval import evaluate_answers, exact_and_f1, gold_in
from app.service.evaluation import load_dataset
from tests.conftest import SHARED_EVAL


def test_gold_answers_are_matched_as_squad_and_jsquad_normalise_them() -> None:
    assert gold_in("It was founded in the 1920s by the Nordic Council.", ["Nordic council"], False)
    assert not gold_in("The council of Nordica.", ["Nordic council"], False)
    assert gold_in("党員数は３１万８千人になった", ["31万8千人"], True)  # NFKC: full-width digits
    assert exact_and_f1("the Denver Broncos", ["Denver Broncos"], False) == (1.0, 1.0)
    em, f1 = exact_and_f1("Broncos won", ["Denver Broncos"], False)
    assert em == 0.0 and f1 == pytest.approx(0.5)
    assert exact_and_f1("東京都", ["東京"], True)[1] == pytest.approx(0.8)


@pytest.fixture(scope="module")
def small_squad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve SQuAD passages, with the questions of the first four, in BEIR layout."""
    source = SHARED_EVAL / "squad-v1.1-dev"
    if not (source / "answers.jsonl").is_file():
        pytest.skip("../shared/eval is not beside the checkout")
    folder = tmp_path_factory.mktemp("qa") / "squad-small"
    (folder / "qrels").mkdir(parents=True)
    passages = [json.loads(line) for line in (source / "corpus.jsonl").open(encoding="utf-8")][:12]
    kept = {p["_id"] for p in passages[:4]}
    answers = {}
    for line in (source / "answers.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        if row.get("gold_doc") in kept and row["answers"] and len([a for a in answers.values()
                                                                 if a["gold_doc"] == row["gold_doc"]]) < 2:
            answers[row["_id"]] = row
    queries = [json.loads(line) for line in (source / "queries.jsonl").open(encoding="utf-8")]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(p) + "\n" for p in passages))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries if q["_id"] in answers))
    (folder / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers.values()))
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{a['gold_doc']}\t1\n" for q, a in answers.items())
    )
    return folder


def test_evidence_only_answers_are_scored_and_removing_the_gold_passage_costs_the_answer(
    small_squad: Path, settings, tmp_path: Path
) -> None:
    dataset = load_dataset(small_squad)
    report = evaluate_answers(dataset, ["extractive"], settings, tmp_path / "cache", limit=None)
    [extractive] = report.models
    assert report.questions == len(dataset.answers) == 8
    assert extractive.gold_in_shown >= 0.5  # the gold passage is in a 12-passage corpus
    answerable, unanswerable = extractive.verdicts["answerable"], extractive.verdicts["unanswerable"]
    assert sum(answerable.values()) == sum(unanswerable.values()) == 8
    assert unanswerable["answered"] < answerable["answered"]  # without the gold passage, fewer answers
    assert extractive.first_token_p50_s is None and extractive.generated_shown is None  # no model ran
    again = evaluate_answers(dataset, ["extractive"], settings, tmp_path / "cache", limit=None)
    assert again.models[0].gold_in_shown == extractive.gold_in_shown  # retrieval came from the cache
    assert list((tmp_path / "cache").glob("answers-squad-small-*.json"))
