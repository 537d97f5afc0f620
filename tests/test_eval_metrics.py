"""The evaluation harness: metrics on hand-checkable rankings, and a tiny BEIR folder run end to
end through the real chunker, embedder, store and search."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from app.service.evaluation import (
    DatasetError,
    answer_in,
    evaluate,
    load_dataset,
    mrr_at,
    ndcg_at,
    recall_at,
)
from retrieval.sparse import SparseEncoder


def test_metrics_on_a_single_relevant_document_at_rank_two() -> None:
    ranked, relevant = ["a", "b", "c"], {"b": 1}
    assert recall_at(ranked, relevant, 5) == 1.0
    assert mrr_at(ranked, relevant) == 0.5
    assert ndcg_at(ranked, relevant) == pytest.approx(1 / math.log2(3))


def test_graded_ndcg_rewards_the_better_document_first() -> None:
    relevant = {"a": 2, "b": 1}
    assert ndcg_at(["a", "b"], relevant) == pytest.approx(1.0)
    # x, a: DCG = 2/log2(3); ideal = 2/1 + 1/log2(3)
    assert ndcg_at(["x", "a"], relevant) == pytest.approx(
        (2 / math.log2(3)) / (2 + 1 / math.log2(3))
    )
    assert recall_at(["x", "a"], relevant, 5) == 0.5


def test_nothing_relevant_in_the_cutoff_scores_zero() -> None:
    ranked = [f"d{i}" for i in range(20)]
    assert mrr_at(ranked, {"d10": 1}) == 0.0 and ndcg_at(ranked, {"d10": 1}) == 0.0
    assert recall_at(ranked, {"d4": 1}, 5) == 1.0 and recall_at(ranked, {"d5": 1}, 5) == 0.0


def test_answer_match_ignores_case_and_spacing_and_stops_at_k() -> None:
    passages = ["nothing here", "The  Denver Broncos won", "x", "y", "z", "Carolina"]
    assert answer_in(passages, ["denver broncos"], 5)
    assert not answer_in(passages, ["Carolina"], 5)


CORPUS = [
    {
        "_id": "p1",
        "title": "Leave",
        "text": "Employees receive ten days of annual paid leave after six months.",
    },
    {"_id": "p2", "title": "Parking", "text": "The car park gate opens at seven in the morning."},
    {
        "_id": "p3",
        "title": "休暇",
        "text": "年次有給休暇は、六か月間継続勤務した労働者に十日を付与する。",
    },
    {
        "_id": "p4",
        "title": "Salary",
        "text": "Salaries are paid on the 25th of each month by bank transfer.",
    },
]
QUERIES = [
    {"_id": "q1", "text": "How many days of paid leave?"},
    {"_id": "q2", "text": "When does the car park gate open?"},
    {"_id": "q3", "text": "年次有給休暇は何日付与されますか"},
    {"_id": "q4", "text": "On which day are salaries paid?"},
]


def _write_dataset(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in CORPUS)
    )
    (folder / "queries.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in QUERIES)
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\tp1\t1\nq2\tp2\t1\nq3\tp3\t1\nq4\tp4\t1\n"
    )
    answers = [
        {"_id": "q1", "answers": ["ten days"]},
        {"_id": "q2", "answers": ["seven"]},
        {"_id": "q3", "answers": ["十日"]},
        {"_id": "q4", "answers": ["the 25th"]},
    ]
    (folder / "answers.jsonl").write_text(
        "\n".join(json.dumps(a, ensure_ascii=False) for a in answers)
    )
    return folder


def test_eval_runs_every_stage_on_a_tiny_dataset_and_reuses_its_store(
    tmp_path: Path, embedder
) -> None:
    dataset = load_dataset(_write_dataset(tmp_path / "tiny"))
    cache = tmp_path / "cache"
    first = evaluate(
        dataset, embedder, SparseEncoder(), cache, stages=("sparse", "dense", "hybrid")
    )
    assert (first.passages, first.queries, first.cached) == (4, 4, False)
    by_stage = {s.stage: s for s in first.stages}
    # Every question shares its key words with exactly one passage: BM25 and hybrid are perfect.
    for stage in ("sparse", "hybrid"):
        assert (
            by_stage[stage].ndcg_10 == 1.0
            and by_stage[stage].mrr_10 == 1.0
            and by_stage[stage].answer_5 == 1.0
        )
    # The English-only embedder finds the English passages (3 of 4 queries); the Japanese
    # passage gets no dense vector (ingest/pipeline.py embed_covered), so only BM25 finds it.
    assert by_stage["dense"].recall_5 == 0.75 and by_stage["dense"].mrr_10 == 0.75
    again = evaluate(dataset, embedder, SparseEncoder(), cache, limit=2, stages=("sparse",))
    assert again.cached and again.queries == 2


def test_a_folder_that_is_not_beir_layout_names_the_missing_file(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text("{}")
    with pytest.raises(DatasetError, match="queries.jsonl is missing"):
        load_dataset(tmp_path)
