"""Shared fixtures: real settings in a temporary data directory, the real packaged models,
real files from ../shared/docs. Nothing here is a mock."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from base import offline  # noqa: F401  (before any model library is imported)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SHARED_DOCS = SHARED / "docs"
SHARED_EVAL = SHARED / "eval"


def shared_doc(relative: str) -> Path:
    path = SHARED_DOCS / relative
    if not path.is_file():
        message = f"{path} is not present (../shared must be beside the checkout)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI a missing corpus is a broken setup, not a skip
        pytest.skip(message)
    return path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh KURA_DATA_DIR for one test."""
    path = tmp_path / "kura-data"
    monkeypatch.setenv("KURA_DATA_DIR", str(path))
    for key in list(os.environ):
        if key.startswith("KURA_") and key != "KURA_DATA_DIR":
            monkeypatch.delenv(key)
    return path


@pytest.fixture
def settings(data_dir: Path):
    from app.platform.settings import KuraSettings

    return KuraSettings(data_dir=data_dir)


@pytest.fixture(scope="session")
def embedder(onnx_embedder_dir: Path):
    """The packaged all-MiniLM-L6-v2 as the product runs it (ONNX export), loaded once per session."""
    from models.embedder import load_embedder
    from models.registry import packaged_embedder_path

    return load_embedder(packaged_embedder_path(), "auto", cache_dir=onnx_embedder_dir.parent)


@pytest.fixture(scope="session")
def llm():
    """The packaged SmolLM2-135M GGUF through llama.cpp, loaded once per test session."""
    from models.llm import LlamaCppLLM
    from models.registry import packaged_llm_path

    return LlamaCppLLM(packaged_llm_path(), context_tokens=4096)


@pytest.fixture
def service(settings, embedder, llm) -> Iterator:
    """A KuraService on a fresh data directory, sharing the session's loaded models."""
    from app.service import KuraService

    svc = KuraService(settings, embedder=embedder, llm=llm)
    yield svc
    svc.close()


@pytest.fixture
def copy_docs(tmp_path: Path):
    """Copy named files from ../shared/docs into a fresh folder (ingestion may not touch shared/)."""

    def _copy(*relatives: str, folder: str = "docs") -> Path:
        target = tmp_path / folder
        target.mkdir(parents=True, exist_ok=True)
        for relative in relatives:
            shutil.copy2(shared_doc(relative), target / Path(relative).name)
        return target

    return _copy


@pytest.fixture(scope="session")
def onnx_embedder_dir(tmp_path_factory) -> Path:
    """The packaged embedder exported to ONNX (models/onnx_export.py), once per test session."""
    from models.onnx_export import ensure_onnx_export
    from models.registry import packaged_embedder_path

    return ensure_onnx_export(packaged_embedder_path(), tmp_path_factory.mktemp("model-cache"))


@pytest.fixture(scope="session")
def sparse():
    """kura's BM25 encoder (SudachiPy dictionary loaded once per session)."""
    from retrieval.sparse import SparseEncoder

    return SparseEncoder()
