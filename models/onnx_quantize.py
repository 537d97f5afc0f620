"""An int8 copy of an exported ONNX embedder: ~2x the fp32 throughput on CPUs with int8 dot products.

Dynamic quantization with one scale per output channel (per_channel) of each MatMul weight;
activations are quantized per batch at run time. Per-tensor quantization (the default of
`quantize_dynamic`) moved MiniLM's vectors to a mean cosine of 0.95 against fp32 and cost
nDCG; per-channel keeps them at ~0.994 (min ~0.97 on 400 real passages). The copy sits beside
the fp32 export, with the tokenizer and pooling files, and is made once (~5 s).

Usage:
    int8_folder = ensure_int8(ensure_onnx_export(source, cache_dir))
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

_DONE = "quantized.json"


def int8_dir_for(fp32_folder: Path) -> Path:
    return fp32_folder.with_name(fp32_folder.name + "-int8")


def ensure_int8(fp32_folder: Path) -> Path:
    """Return the int8 copy of `fp32_folder` (an ONNX folder), making it first if needed.
    Written into a temporary folder and renamed into place, as the fp32 export is."""
    target = int8_dir_for(fp32_folder)
    if (target / _DONE).is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    staging = Path(tempfile.mkdtemp(prefix=".onnx-int8-", dir=fp32_folder.parent))
    try:
        for item in fp32_folder.iterdir():
            if item.name == "model.onnx" or item.name.startswith("export"):
                continue
            copy = shutil.copytree if item.is_dir() else shutil.copy2
            copy(item, staging / item.name)
        quantize_dynamic(
            str(fp32_folder / "model.onnx"),
            str(staging / "model.onnx"),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
        )
        (staging / _DONE).write_text(json.dumps({"source": str(fp32_folder), "weights": "int8 per-channel"}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
