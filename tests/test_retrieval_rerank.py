"""The cross-encoder stage, on a tiny BERT built here with random weights: no reranker weights
exist on any registry kura can reach, so these tests prove the code path (ordering, top-N,
batching, truncation, errors), not ranking quality."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.passage import Passage
from retrieval.rerank import Reranker, RerankerMissing

WORDS = (
    "leave salary days annual paid employee parking gate holiday bank transfer"
    " month review the of a is"
).split()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-reranker")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"), model_max_length=512)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=512,
        num_labels=1,
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # BERT's init (std 0.02) gives near-equal scores; spread them out
        for param in model.parameters():
            param.normal_(0.0, 0.5)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _passage(i: int, text: str) -> Passage:
    return Passage(f"c{i}", f"d{i}", text, "t", "/docs/x.txt", 1, 1, (), 0, score=1.0 / (i + 1))


def _reference_scores(folder: Path, query: str, texts: list[str], max_length: int) -> list[float]:
    """The model's own logits through transformers directly, one pair at a time."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    out = []
    with torch.no_grad():
        for text in texts:
            enc = tok(query, text, truncation=True, max_length=max_length, return_tensors="pt")
            out.append(float(model(**enc).logits[0, 0]))
    return out


TEXTS = [
    "annual paid leave days",
    "parking gate",
    "salary review month",
    "bank transfer",
    "holiday leave employee",
]


def test_reranker_orders_candidates_by_the_cross_encoder_score(tiny_model: Path) -> None:
    reranker = Reranker(tiny_model)
    passages = [_passage(i, t) for i, t in enumerate(TEXTS)]
    ranked = reranker.rerank("annual leave", passages, top_n=5)
    reference = _reference_scores(tiny_model, "annual leave", TEXTS, 512)
    expected = [t for _, t in sorted(zip(reference, TEXTS, strict=True), reverse=True)]
    # sentence-transformers applies a sigmoid to one-label models: monotone, so the order
    # is the logits' order
    assert [p.text for p in ranked] == expected
    assert [p.rerank_score for p in ranked] == sorted(
        (p.rerank_score for p in ranked), reverse=True
    )


def test_only_the_top_n_candidates_are_reranked(tiny_model: Path) -> None:
    passages = [_passage(i, t) for i, t in enumerate(TEXTS)]
    ranked = Reranker(tiny_model).rerank("salary", passages, top_n=2)
    assert {p.chunk_id for p in ranked[:2]} == {"c0", "c1"}
    assert [p.chunk_id for p in ranked[2:]] == ["c2", "c3", "c4"]
    assert all(p.rerank_score is None for p in ranked[2:])


def test_batching_does_not_change_scores(tiny_model: Path) -> None:
    one = Reranker(tiny_model, batch_size=1).score("paid holiday", TEXTS)
    many = Reranker(tiny_model, batch_size=4).score("paid holiday", TEXTS)
    assert one == pytest.approx(many, abs=1e-5)


def test_long_passages_are_truncated_to_max_length(tiny_model: Path) -> None:
    reranker = Reranker(tiny_model, max_length=12)
    head = "annual paid leave days of the employee is a month"
    a, b = reranker.score("leave", [head + " salary" * 600, head + " parking" * 900])
    assert a == pytest.approx(
        b, abs=1e-5
    )  # only the first 12 tokens (CLS leave SEP + 8 of head + SEP) were read
    assert a != pytest.approx(reranker.score("leave", ["parking gate bank transfer"])[0], abs=1e-3)


def test_a_folder_without_a_model_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(RerankerMissing, match="KURA_RERANKER_PATH"):
        Reranker(tmp_path)


def test_search_reranks_the_fused_candidates_and_keeps_the_acl_filter(
    tiny_model: Path, tmp_path: Path, embedder
) -> None:
    import uuid

    from retrieval.search import search_passages
    from retrieval.sparse import SparseEncoder
    from retrieval.store import EdgeStore, StoredChunk

    sparse = SparseEncoder()
    rows = [(t, ["hr"] if i == 0 else ["everyone"]) for i, t in enumerate(TEXTS)]
    store = EdgeStore(tmp_path / "store", embedder.dim)
    try:
        store.upsert(
            [
                StoredChunk(
                    str(uuid.uuid5(uuid.NAMESPACE_URL, t)),
                    v,
                    sparse.encode_document(t),
                    {"doc_id": t, "chunk_index": 0, "text": t, "acl_groups": g, "staged": False},
                )
                for (t, g), v in zip(rows, embedder.embed_documents(TEXTS), strict=True)
            ]
        )
        reranker = Reranker(tiny_model)
        found = search_passages(
            store,
            embedder,
            "annual paid leave",
            ["everyone"],
            2,
            sparse=sparse,
            reranker=reranker,
            rerank_top_n=4,
        )
        assert len(found) == 2 and all(p.rerank_score is not None for p in found)
        assert found[0].rerank_score >= found[1].rerank_score
        assert TEXTS[0] not in [p.text for p in found]  # the hr-only passage is never a candidate
    finally:
        store.close()
