"""The model manifest and the checks that stop a broken model before it reaches a user:
real copies of the packaged GGUF, truncated, altered or stripped of their chat template."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.errors import ModelInvalid, ModelMissing
from models.gguf import read_gguf
from models.registry import PACKAGED_LLM, ModelRegistry, check_llm_file, packaged_llm_path


@pytest.fixture(scope="module")
def gguf_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("models") / "smollm2-copy.gguf"
    shutil.copy2(packaged_llm_path(), target)
    return target


@pytest.fixture(scope="module")
def gguf_without_chat_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged GGUF with its `tokenizer.chat_template` key renamed (same length, so every
    offset stays valid): what a base model such as gemma3-270m looks like to llama.cpp."""
    target = tmp_path_factory.mktemp("models") / "base-model.gguf"
    data = bytearray(packaged_llm_path().read_bytes())
    key = b"tokenizer.chat_template"
    at = data.find(len(key).to_bytes(8, "little") + key)
    assert at > 0
    data[at + 8 : at + 8 + len(key)] = b"tokenizer.chat_templatX"
    target.write_bytes(data)
    return target


def test_packaged_gguf_header_gives_context_length_template_and_licence() -> None:
    info = read_gguf(packaged_llm_path())
    assert info.context_length == 8192
    assert info.has_chat_template
    assert info.licence == "apache-2.0"
    assert info.data_end == info.file_size, (
        "the tensor table accounts for every byte of a complete file"
    )


def test_truncated_gguf_is_reported_as_truncated(gguf_copy: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(gguf_copy.read_bytes()[: gguf_copy.stat().st_size // 2])
    with pytest.raises(ModelInvalid, match="truncated"):
        read_gguf(cut)
    header_only = tmp_path / "header.gguf"
    header_only.write_bytes(gguf_copy.read_bytes()[:5000])
    with pytest.raises(ModelInvalid, match="truncated"):
        read_gguf(header_only)


def test_file_that_is_not_gguf_is_named_as_such(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(ModelInvalid, match="not a GGUF"):
        read_gguf(bogus)


def test_model_without_chat_template_is_refused_with_the_fix(
    gguf_without_chat_template: Path,
) -> None:
    assert not read_gguf(gguf_without_chat_template).has_chat_template
    with pytest.raises(ModelInvalid, match="no chat template.*instruct"):
        check_llm_file(gguf_without_chat_template)


def test_llm_loader_refuses_a_model_without_chat_template(gguf_without_chat_template: Path) -> None:
    from models.llm import LlamaCppLLM

    with pytest.raises(ModelInvalid, match="chat template"):
        LlamaCppLLM(gguf_without_chat_template)


def test_model_larger_than_memory_is_refused_before_loading(
    gguf_copy: Path, tmp_path: Path
) -> None:
    from models.registry import available_memory_bytes

    available = available_memory_bytes()
    if available is None:
        pytest.skip("no /proc/meminfo")
    huge = tmp_path / "huge.gguf"
    shutil.copy2(gguf_copy, huge)
    with huge.open("r+b") as handle:  # sparse: costs no disk
        handle.truncate(available + 2**30)
    with pytest.raises(ModelInvalid, match="memory"):
        check_llm_file(huge)


def test_added_model_verifies_until_its_bytes_change(
    settings, gguf_copy: Path, tmp_path: Path
) -> None:
    local = tmp_path / "site-model.gguf"
    shutil.copy2(gguf_copy, local)
    registry = ModelRegistry(settings.models_manifest_path)
    entry = registry.add(local, name="site-llm")
    assert entry.context_length == 8192 and entry.chat_template and entry.sha256
    assert registry.verify("site-llm").sha256 == entry.sha256

    with local.open("r+b") as handle:  # flip one byte in the tensor data, same size
        handle.seek(local.stat().st_size - 10)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelInvalid, match="sha256 .* does not match"):
        registry.verify("site-llm")

    local.unlink()
    with pytest.raises(ModelMissing, match="is gone"):
        registry.verify("site-llm")


def test_use_switches_the_active_llm_and_survives_a_reload(settings, gguf_copy: Path) -> None:
    registry = ModelRegistry(settings.models_manifest_path)
    assert registry.active("llm").name == PACKAGED_LLM
    registry.add(gguf_copy, name="copy")
    registry.use("copy")
    assert ModelRegistry(settings.models_manifest_path).active("llm").name == "copy"
    with pytest.raises(ModelMissing, match="no model named 'nope'"):
        registry.use("nope")


def test_use_refuses_a_model_without_chat_template(
    settings, gguf_without_chat_template: Path
) -> None:
    registry = ModelRegistry(settings.models_manifest_path)
    entry = registry.add(gguf_without_chat_template, name="base")
    assert entry.chat_template is False
    with pytest.raises(ModelInvalid, match="chat template"):
        registry.use("base")
    assert registry.active("llm").name == PACKAGED_LLM


def test_packaged_models_match_the_checksums_pip_recorded(settings) -> None:
    registry = ModelRegistry(settings.models_manifest_path)
    names = {e.name for e in registry.entries() if e.source == "packaged"}
    assert names == {PACKAGED_LLM, "all-minilm-l6-v2"}
    for name in names:
        assert len(registry.verify(name).sha256 or "") == 64
