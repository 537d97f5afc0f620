"""An int8 copy of an exported ONNX embedder: ~1.5-2x the fp32 throughput on CPUs with int8 dot products.

Dynamic quantization with one scale per output channel (per_channel) of each MatMul weight;
activations are quantized per batch at run time. Per-tensor quantization (the default of
`quantize_dynamic`) moved MiniLM's vectors to a mean cosine of 0.95 against fp32 and cost
nDCG; per-channel keeps them at ~0.994 (min ~0.97 on 400 real passages), within 0.003 nDCG@10
of fp32 on cranfield and SQuAD.

The copy is derived locally (nothing is downloaded), once, beside the fp32 export, with the
tokenizer and pooling files. The derivation is deterministic: the same source and the same
quantizer give the same bytes. `quantized.json` records the sha256 of the source model, the
quantizer and the sha256 of the result; a copy whose source changed, whose quantizer changed,
or whose bytes no longer match is derived again, so two caches are never mixed.

Usage:
    int8_folder = ensure_int8(ensure_onnx_export(source, cache_dir))
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from base.hashing import sha256_of

log = logging.getLogger(__name__)

_DONE = "quantized.json"


def int8_dir_for(fp32_folder: Path) -> Path:
    return fp32_folder.with_name(fp32_folder.name + "-int8")


def quantizer_spec() -> str:
    """What makes the bytes: the onnxruntime version and the quantization settings."""
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__} quantize_dynamic QInt8 per-channel MatMul"



def verified_int8(fp32_folder: Path) -> Path | None:
    """The int8 copy of `fp32_folder` when it exists and its record matches: same source bytes
    (re-hashed only when the source's size or mtime changed), same quantizer, same result bytes."""
    target = int8_dir_for(fp32_folder)
    try:
        record = json.loads((target / _DONE).read_text())
        source = (fp32_folder / "model.onnx").stat()
        if record.get("quantizer") != quantizer_spec():
            return None
        if [source.st_size, source.st_mtime_ns] != record.get("source_stat"):
            if sha256_of(fp32_folder / "model.onnx") != record.get("source_sha256"):
                return None
        if sha256_of(target / "model.onnx") != record.get("sha256"):
            return None
    except (OSError, ValueError, AttributeError):
        return None
    return target


def ensure_int8(fp32_folder: Path) -> Path:
    """Return the verified int8 copy of `fp32_folder` (an ONNX folder), deriving it first if
    needed (~5-10 s, once). Written into a temporary folder and renamed into place."""
    done = verified_int8(fp32_folder)
    if done is not None:
        return done
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = int8_dir_for(fp32_folder)
    print(
        f"kura: deriving the int8 embedder from {fp32_folder.name} (once, ~10 s)...",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=".onnx-int8-", dir=fp32_folder.parent))
    try:
        for item in fp32_folder.iterdir():
            if item.name == "model.onnx" or item.name.startswith("export"):
                continue
            copy = shutil.copytree if item.is_dir() else shutil.copy2
            copy(item, staging / item.name)
        source = fp32_folder / "model.onnx"
        source_stat = source.stat()
        quantize_dynamic(
            str(source),
            str(staging / "model.onnx"),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
        )
        record = {
            "source": str(fp32_folder),
            "source_sha256": sha256_of(source),
            "source_stat": [source_stat.st_size, source_stat.st_mtime_ns],
            "quantizer": quantizer_spec(),
            "sha256": sha256_of(staging / "model.onnx"),
        }
        (staging / _DONE).write_text(json.dumps(record, indent=1))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("derived %s in %.1f s", target, time.monotonic() - started)
    return target
