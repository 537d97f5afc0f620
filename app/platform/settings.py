"""kura's one typed settings object.

Values come, highest priority first, from: keyword arguments, `KURA_*` environment variables,
the YAML file named by `KURA_CONFIG` (see `kura.example.yaml`), then the defaults below.
Everything kura writes lives under `data_dir`, so a backup is a copy of that one folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
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
    ingest_nice: int = 10  # the ingest writer runs this much nicer than searches (0: equal share)

    # Retrieval.
    search_top_k: int = 8
    context_passages: int = 5
    min_relevance: float = 0.0  # 0 disables the relevance floor
    # Hybrid search and its relevance floor (retrieval/search.py, README "Retrieval quality").
    # Languages that get dense vectors, chunks and questions alike ("en,ja" for a multilingual
    # model); text in another language is found by BM25 alone.
    embedder_languages: Annotated[tuple[str, ...], NoDecode] = ("en",)
    sparse_japanese: str = "sudachi"  # sudachi | bigram | qdrant
    fusion: str = "dbsf"  # dbsf | rrf | rrf:DENSE_WEIGHT,SPARSE_WEIGHT (measured: README)
    rerank_top_n: int = 20
    # A passage reaches the LLM only if one raw signal clears its floor (fused scores are ranks):
    min_term_coverage: float = 0.5  # share of the question's terms found in the passage
    min_dense_score: float = 0.45  # query/passage cosine, when the embedder covers the language
    min_rerank_score: float | None = None  # with a reranker: its score, model-specific
    # Answers (app/service/answer.py): evidence first. The quote's answer chance (0..1,
    # retrieval/evidence.py) decides: at or above evidence_min_score the documents answer the
    # question; down to evidence_hedge_score the closest passage is shown, flagged; below, kura
    # abstains. Empty: the operating points measured per language (0.65 English, 0.54 Japanese).
    evidence_min_score: float | None = Field(default=None, ge=0, le=1)
    evidence_hedge_score: float = Field(default=0.2, ge=0, le=1)
    answer_generation: bool = True  # False: evidence-only answers, the LLM is never called
    public_url: str | None = None  # how readers reach this server, for citation links (default: the request's)

    # UI.
    ui_host: str = "127.0.0.1"
    ui_port: int = 8501
    ui_language: str = "en"  # en | ja
    ui_idle_minutes: int = 30  # a browser session idle this long is signed out

    # Audit forwarding to a SIEM (app/audit/siem.py): syslog RFC 5424 over TLS (RFC 5425), at least once.
    audit_syslog: str | None = None  # host:port of the SIEM's syslog-over-TLS receiver; None: off
    audit_syslog_tls: bool = True  # False only for a receiver on the same host or a trusted link
    audit_syslog_ca_file: Path | None = None  # CA of the receiver's certificate (default: system CAs)
    audit_syslog_server_name: str | None = None  # name in the receiver's certificate (default: host)
    audit_syslog_cert_file: Path | None = None  # client certificate, if the receiver asks for one
    audit_syslog_key_file: Path | None = None  # its private key
    audit_checkpoint_interval_s: float = 300.0  # a signed checkpoint goes out in the stream this often

    # Sign-in sessions (kept on the server; ui_idle_minutes above is the idle limit).
    session_absolute_minutes: int = 480  # signed out this long after signing in, active or not

    # Company sign-in (README "Company sign-in"). LDAP / Active Directory, app/identity/directory.py:
    ldap_url: str | None = None  # ldaps://dc.example.com or ldap://dc.example.com (StartTLS)
    ldap_tls: str = "starttls"  # starttls | ldaps (an ldaps:// URL) | off (loopback tests only)
    ldap_ca_file: Path | None = None  # the company CA that signed the directory's certificate
    ldap_bind_dn: str | None = None  # the service account that searches for users
    ldap_bind_password: str | None = None
    ldap_user_base: str = ""  # e.g. ou=people,dc=example,dc=com
    ldap_user_filter: str = "(uid={username})"  # AD: (sAMAccountName={username}); escaped
    ldap_name_attribute: str = "uid"  # AD: sAMAccountName; its value is the kura user name
    ldap_group_source: str = "memberof"  # memberof | search
    ldap_group_base: str = ""  # group search: where groups live
    ldap_group_filter: str = "(&(objectClass=groupOfNames)(member={user_dn}))"
    ldap_timeout_s: float = 5.0
    # OpenID Connect (Entra ID, Okta, Keycloak, HENNGE ...), app/identity/oidc.py:
    oidc_issuer: str | None = None  # the provider URL; its discovery document is read from there
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None  # none: a public client (PKCE alone)
    oidc_name: str = "OpenID Connect"  # the sign-in button reads "Sign in with <oidc_name>"
    oidc_scopes: str = "openid profile email groups"
    oidc_username_claim: str = "preferred_username"
    oidc_groups_claim: str = "groups"
    oidc_roles_claim: str | None = None  # e.g. "roles" (Entra app roles), mapped like groups
    oidc_ca_file: Path | None = None  # the company CA that signed the provider's certificate
    oidc_redirect_url: str | None = None  # https://kura.example.com/auth/oidc/callback behind a proxy
    oidc_clock_skew_s: int = 60  # tolerance for the provider's clock on exp / iat
    oidc_timeout_s: float = 10.0
    # One mapping for both: a directory group DN or CN, or a claim value -> kura group / role.
    directory_group_map: dict[str, str] = Field(default_factory=dict)
    directory_role_map: dict[str, str] = Field(default_factory=dict)
    directory_default_roles: tuple[str, ...] = ("employee",)  # for people in no role group

    # HTTP API (app/doors/http/api/): where admins may point a server-folder ingest, which browser origins
    # may call it (both comma-separated; empty: none), how many wrong keys a client may send.
    ingest_roots: str = ""
    cors_origins: str = ""
    api_bad_key_limit: int = 10
    api_bad_key_window_s: float = 300.0

    # Search at scale (retrieval/index_build.py, README "Search at scale"): the embedded store's HNSW
    # index is built by another process once this many chunks are outside it (0: never by itself),
    # on index_threads cores; int8 keeps int8 vector copies in RAM and the float originals on disk.
    index_min_new_chunks: int = Field(default=20_000, ge=0)
    index_threads: int = Field(default=1, ge=1)
    index_quantization: Literal["int8", "none"] = "int8"
    index_search_ef: int = Field(default=256, ge=1)  # graph candidates a dense search looks at

    # Saved conversations (issue 26, app/service/conversations.py): a conversation whose last turn
    # is older than this many days is deleted by the server's sweep (0: kept until the person
    # deletes it); the sweep runs when `kura serve` starts and then every conversation_sweep_minutes.
    conversation_retention_days: float = Field(default=0.0, ge=0)
    conversation_sweep_minutes: float = Field(default=60.0, gt=0)
    # The auditor's workbench (issue 27; app/audit/index.py, app/service/audit_analytics.py): the site's
    # time zone for days, hours and months (IANA name), and how often the server checks the alert rules.
    audit_timezone: str = "UTC"
    audit_alert_interval_s: float = 60.0  # 0: only when an auditor opens a view

    @field_validator("audit_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone; use an IANA name such as Asia/Tokyo or UTC") from None
        return value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        return Path(value).expanduser() if isinstance(value, str | Path) else value

    @field_validator("audit_syslog")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"audit_syslog must be host:port (e.g. siem.example:6514), not {value!r}")
        return value or None

    @field_validator("embedder_languages", mode="before")
    @classmethod
    def _language_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # KURA_EMBEDDER_LANGUAGES=en,ja
            value = tuple(part.strip().lower() for part in value.split(",") if part.strip())
        if not value:
            raise ValueError("embedder_languages needs at least one language code, e.g. en or en,ja")
        return value

    @field_validator("ui_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in ("en", "ja"):
            raise ValueError(f"ui_language must be 'en' or 'ja', not {value!r}")
        return value

    @field_validator("ldap_tls", "ldap_group_source")
    @classmethod
    def _known_choice(cls, value: str, info: Any) -> str:
        choices = {"ldap_tls": ("starttls", "ldaps", "off"), "ldap_group_source": ("memberof", "search")}
        if value not in choices[info.field_name]:
            raise ValueError(f"{info.field_name} must be one of {', '.join(choices[info.field_name])}, not {value!r}")
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
    def server_token_path(self) -> Path:
        """The local operator's token that a running `kura serve` writes (mode 0600) for the CLI."""
        return self.data_dir / "server.json"

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
        from app.platform.privacy import make_private, private_umask

        private_umask()  # every kura process passes here: the UI, the CLI, the workers
        try:
            for path in (self.data_dir, self.store_dir, self.logs_dir, self.model_cache_dir):
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
            probe = self.data_dir / ".kura-write-test"
            probe.write_bytes(b"")
            probe.unlink()
            make_private(self.data_dir)  # what an older version, a copy or a restore left open
        except OSError as exc:
            raise SettingsError(
                f"KURA_DATA_DIR={str(self.data_dir)!r} cannot be used: {exc.strerror or exc}; "
                "point KURA_DATA_DIR to a folder kura may create and write"
            ) from exc

    # Scheduled backups (README "Backups that bring everything back"; app/service/backup_schedule.py).
    backup_every: str | None = None  # e.g. 24h or 30m (s, m, h, d): the server backs up this often; unset: off
    backup_dir: Path | None = None  # where scheduled backups go (default: <data_dir>/backups); best another disk
    backup_keep: int = Field(default=7, ge=1)  # scheduled backups kept; older ones are deleted
    backup_without_audit_key: bool = False  # scheduled backups leave audit.key out (keep it elsewhere)

    @field_validator("backup_every")
    @classmethod
    def _backup_interval(cls, value: str | None) -> str | None:
        from ingest.jobs import parse_interval  # the one interval syntax (watched folders too)

        if value is not None and value.strip():
            parse_interval(value)  # its ValueError names the value and the syntax
            return value.strip()
        return None

    @property
    def backup_every_s(self) -> float | None:
        from ingest.jobs import parse_interval

        return parse_interval(self.backup_every) if self.backup_every else None

    @property
    def backup_folder(self) -> Path:
        return (self.backup_dir or self.data_dir / "backups").expanduser()  # "backups": BACKUPS_DIR


class SettingsError(ValueError):
    """A setting or the config file is wrong. The message is one line: the setting, the bad
    value and what to do (the CLI prints it as is, with no traceback)."""


def load_settings() -> KuraSettings:
    """KuraSettings from the environment and KURA_CONFIG, with every way that can fail turned
    into one SettingsError that names the setting, the value and the fix."""
    config = os.environ.get("KURA_CONFIG")
    try:
        return KuraSettings()
    except SettingsError:
        raise
    except ValidationError as exc:
        raise SettingsError("; ".join(_explain(error, config) for error in exc.errors())) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise SettingsError(
            f"KURA_CONFIG file {config} is not valid YAML{line}: {getattr(exc, 'problem', None) or exc}; "
            "fix it (see kura.example.yaml) or unset KURA_CONFIG"
        ) from None
    except (OSError, TypeError, ValueError) as exc:
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
