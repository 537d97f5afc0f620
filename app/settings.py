"""kura's one typed settings object.

Values come, highest priority first, from: keyword arguments, `KURA_*` environment variables,
the YAML file named by `KURA_CONFIG` (see `kura.example.yaml`), then the defaults below.
Everything kura writes lives under `data_dir`, so a backup is a copy of that one folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "kura"


class KuraSettings(BaseSettings):
    """Every knob kura reads. Environment: `KURA_<FIELD>` (e.g. `KURA_DATA_DIR`)."""

    model_config = SettingsConfigDict(env_prefix="KURA_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)

    # Vector store: embedded qdrant-edge under data_dir unless a Qdrant server URL is given.
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    collection: str = "kura_chunks"
    qdrant_shards: int = 1  # server mode: shards of a new collection (one per node is a start)
    qdrant_replicas: int = 1  # server mode: copies of each shard (2+ survives a node loss)

    # Operations: Prometheus endpoint (None: off) and logs (JSON lines under logs_dir).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    log_json: bool = True

    # Models: empty means "the packaged default" (see models/registry.py).
    embedder_path: Path | None = None
    embedder_backend: str = "auto"  # auto | onnx | onnx-int8 | torch
    llm_path: Path | None = None
    llm_url: str | None = None  # an OpenAI-compatible server instead of in-process llama.cpp
    llm_context_tokens: int = 4096
    llm_max_answer_tokens: int = 384
    llm_timeout_s: float = 120.0
    llm_threads: int | None = None  # None: chosen from the core count (models/llm.py)
    llm_gpu_layers: int = -1  # -1: everything, when the build and the machine have a GPU
    llm_model: str | None = None  # with llm_url: the model id the server should use
    llm_api_key: str | None = None  # with llm_url: sent as a Bearer token, if the server wants one
    llm_queue_limit: int = 16  # questions that may wait for the model; more get "busy, position N"
    reranker_path: Path | None = None

    # Ingestion and chunking.
    chunk_tokens: int = 256
    chunk_overlap_tokens: int = 32
    max_file_mb: float = 200.0
    min_free_mb: float = 500.0  # ingestion refuses to start with less free space in data_dir
    ocr_languages: str = "eng+jpn"

    # Retrieval.
    search_top_k: int = 8
    context_passages: int = 5
    min_relevance: float = 0.0  # 0 disables the relevance floor
    # Hybrid search and its relevance floor (retrieval/search.py, README "Retrieval quality").
    embedder_languages: tuple[str, ...] = ("en",)  # a query in another language skips dense search
    sparse_japanese: str = "sudachi"  # sudachi | bigram | qdrant
    fusion: str = "dbsf"  # dbsf | rrf | rrf:DENSE_WEIGHT,SPARSE_WEIGHT (measured: README)
    rerank_top_n: int = 20
    # A passage reaches the LLM only if one raw signal clears its floor (fused scores are ranks):
    min_term_coverage: float = 0.5  # share of the question's terms found in the passage
    min_dense_score: float = 0.45  # query/passage cosine, when the embedder covers the language
    min_rerank_score: float | None = None  # with a reranker: its score, model-specific

    # UI.
    ui_host: str = "127.0.0.1"
    ui_port: int = 8501
    ui_language: str = "en"  # en | ja
    ui_idle_minutes: int = 30  # a browser session idle this long is signed out

    @field_validator("data_dir", mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        return Path(value).expanduser() if isinstance(value, str | Path) else value

    @field_validator("ui_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in ("en", "ja"):
            raise ValueError(f"ui_language must be 'en' or 'ja', not {value!r}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("KURA_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise SettingsError(
                    f"KURA_CONFIG={config_file!r} does not exist; "
                    "copy kura.example.yaml there or unset KURA_CONFIG"
                )
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    # Paths inside the data directory. One place decides the layout.
    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "manifest.sqlite3"

    @property
    def users_path(self) -> Path:
        return self.data_dir / "users.sqlite3"

    @property
    def audit_path(self) -> Path:
        return self.data_dir / "audit.jsonl"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def models_manifest_path(self) -> Path:
        """The models an operator added (`kura models add`) and which one is active."""
        return self.data_dir / "models.json"

    @property
    def model_cache_dir(self) -> Path:
        """Models kura derives locally (e.g. the ONNX export of the packaged embedder)."""
        return self.data_dir / "models"

    def ensure_dirs(self) -> None:
        try:
            for path in (self.data_dir, self.store_dir, self.logs_dir, self.model_cache_dir):
                path.mkdir(parents=True, exist_ok=True)
            probe = self.data_dir / ".kura-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise SettingsError(
                f"KURA_DATA_DIR={str(self.data_dir)!r} cannot be used: {exc.strerror or exc}; "
                "point KURA_DATA_DIR to a folder kura may create and write"
            ) from exc


class SettingsError(ValueError):
    """A setting or the config file is wrong. The message is one line: the setting, the bad
    value and what to do (the CLI prints it as is, with no traceback)."""


def load_settings() -> KuraSettings:
    """KuraSettings from the environment and KURA_CONFIG, with every way that can fail turned
    into one SettingsError that names the setting, the value and the fix."""
    config = os.environ.get("KURA_CONFIG")
    try:
        return KuraSettings()
    except ValidationError as exc:
        raise SettingsError("; ".join(_explain(error, config) for error in exc.errors())) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise SettingsError(
            f"KURA_CONFIG file {config} is not valid YAML{line}: {getattr(exc, 'problem', None) or exc}; "
            "fix it (see kura.example.yaml) or unset KURA_CONFIG"
        ) from None
    except (OSError, TypeError) as exc:
        raise SettingsError(
            f"KURA_CONFIG file {config} cannot be read as settings: {exc}; "
            "it must be a YAML mapping like kura.example.yaml, or unset KURA_CONFIG"
        ) from None


def _explain(error: Any, config: str | None) -> str:
    """One clause for one pydantic error: where the value came from, what it was, what to do."""
    name = str(error["loc"][0]) if error.get("loc") else "?"
    env = f"KURA_{name.upper()}"
    field = KuraSettings.model_fields.get(name)
    if env in {key.upper() for key in os.environ}:
        where = env
    elif config:
        where = f"{name} in {config}"
    else:
        where = env
    default = "" if field is None or field.default_factory else f" (default: {field.default!r})"
    reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}={error.get('input')!r} is invalid: {reason}; set a valid value or remove it{default}"
