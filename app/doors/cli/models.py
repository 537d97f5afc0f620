"""`kura models list/add/verify/use` and `kura doctor`: which models kura uses, and whether this
machine can run kura at all, each line with the fix."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.platform.settings import KuraSettings
from base import offline  # noqa: F401

models_app = typer.Typer(
    help="The models kura uses: list, add, verify, switch.", no_args_is_help=True
)
console = Console()


def _registry():
    from models.registry import ModelRegistry

    return ModelRegistry(KuraSettings().models_manifest_path)


def _fail(exc: Exception) -> None:
    console.print(f"[red]{type(exc).__name__}[/red]: {exc}", highlight=False)
    raise typer.Exit(1)


@models_app.command("list")
def list_models() -> None:
    """Every model kura knows: packaged defaults and those added, the active ones marked *."""
    registry = _registry()
    active = {role: (registry.active(role) or None) for role in ("llm", "embedder", "reranker")}
    table = Table()
    for column in (
        "",
        "name",
        "role",
        "size",
        "context",
        "chat template",
        "licence",
        "source",
        "path",
    ):
        table.add_column(column)
    for e in registry.entries():
        mark = "*" if active.get(e.role) and active[e.role].name == e.name else ""  # type: ignore[union-attr]
        size = f"{e.size / 2**20:.0f} MiB" if e.size else "?"
        template = {True: "yes", False: "NO", None: "-"}[e.chat_template]
        table.add_row(
            mark,
            e.name,
            e.role,
            size,
            str(e.context_length or "-"),
            template,
            e.licence or "?",
            e.source,
            e.path,
        )
    console.print(table)


@models_app.command("add")
def add(
    path: Annotated[
        Path, typer.Argument(help="a .gguf file (llm) or a model folder (embedder, reranker)")
    ],
    name: Annotated[
        str | None, typer.Option(help="name in the manifest (default: the file name)")
    ] = None,
    role: Annotated[str, typer.Option(help="llm | embedder | reranker")] = "llm",
    licence: Annotated[str | None, typer.Option(help="licence, if the file does not say")] = None,
) -> None:
    """Record a local model with its sha256, size, context length and chat template."""
    from models.errors import ModelError

    try:
        entry = _registry().add(path, name, role, licence)
    except (ModelError, ValueError) as exc:
        _fail(exc)
    console.print(f"added {entry.name} ({entry.role}) sha256 {entry.sha256}")
    if entry.role == "llm" and not entry.chat_template:
        console.print("[yellow]WARN[/yellow] it has no chat template: kura cannot use it to answer")


@models_app.command("verify")
def verify(
    name: Annotated[str | None, typer.Argument(help="one model (default: all)")] = None,
) -> None:
    """Check each model's file is present, complete and has its recorded sha256."""
    from models.errors import ModelError

    registry = _registry()
    names = [name] if name else [e.name for e in registry.entries()]
    failed = False
    for model in names:
        try:
            registry.verify(model)
            console.print(f"[green]OK[/green]   {model}")
        except ModelError as exc:
            failed = True
            console.print(f"[red]FAIL[/red] {model}: {exc}", highlight=False)
    if failed:
        raise typer.Exit(1)


@models_app.command("use")
def use(name: Annotated[str, typer.Argument(help="a model from `kura models list`")]) -> None:
    """Make NAME the active model for its role (a running UI switches at its next answer via
    the admin page; the CLI reads it at start)."""
    from models.errors import ModelError

    try:
        entry = _registry().use(name)
    except ModelError as exc:
        _fail(exc)
    console.print(f"{entry.role} is now {entry.name}")


# --- kura doctor -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    status: str  # OK | WARN | FAIL
    what: str
    detail: str
    fix: str = ""


def run_checks(settings: KuraSettings) -> list[Check]:
    """Every check `kura doctor` prints, in order; none loads a model or needs the network."""
    checks = [_python()]
    checks += _llama_cpp(settings)
    checks += _models(settings)
    checks.append(_store(settings))
    checks.append(_disk(settings))
    checks += _tesseract(settings)
    checks += _ldap_directory(settings) + _oidc_provider(settings)
    checks.append(_network(settings))
    checks.append(_data_dir_private(settings))
    checks.append(_audit_key(settings))
    checks.append(_siem_queue(settings))
    return checks


def _python() -> Check:
    ok = sys.version_info[:2] == (3, 11)
    return Check(
        "OK" if ok else "WARN",
        "python",
        f"{platform.python_version()} at {sys.executable}",
        "" if ok else "kura is tested on Python 3.11: scripts/setup.sh with KURA_PYTHON=python3.11",
    )


def _llama_cpp(settings: KuraSettings) -> list[Check]:
    try:
        import llama_cpp
    except ImportError as exc:
        return [
            Check(
                "FAIL",
                "llama.cpp",
                f"llama-cpp-python does not import: {exc}",
                "run scripts/setup.sh",
            )
        ]
    from models.llm import build_supports_gpu, visible_gpus

    info = llama_cpp.llama_print_system_info().decode(errors="replace").strip().rstrip("|").strip()
    checks = [Check("OK", "llama.cpp", f"llama-cpp-python {llama_cpp.__version__}: {info}")]
    gpus = visible_gpus()
    gpu_text = ", ".join(f"{g.name} ({g.vram_mib} MiB)" for g in gpus) or "none visible"
    if build_supports_gpu():
        status = "OK" if gpus or settings.llm_gpu_layers == 0 else "WARN"
        checks.append(
            Check(
                status,
                "GPU",
                f"CUDA build; GPUs: {gpu_text}",
                "" if status == "OK" else "check the NVIDIA driver and CUDA_VISIBLE_DEVICES",
            )
        )
    elif gpus:
        checks.append(
            Check(
                "WARN",
                "GPU",
                f"GPUs {gpu_text} but llama.cpp is a CPU build",
                "rebuild: CMAKE_ARGS=-DGGML_CUDA=on pip install --no-cache-dir "
                "llama-cpp-python==0.3.36 (docs/llm.md)",
            )
        )
    else:
        from models.llm import cpu_threads

        threads, batch = cpu_threads(settings.llm_threads)
        checks.append(
            Check(
                "OK",
                "GPU",
                f"none; the LLM runs on the CPU with {threads} thread(s), {batch} for prompts",
            )
        )
    return checks


def _models(settings: KuraSettings) -> list[Check]:
    from models.errors import ModelError
    from models.registry import ModelRegistry, check_llm_file, resolve_llm_path

    registry = ModelRegistry(settings.models_manifest_path)
    checks = []
    try:
        entries = registry.entries()
    except ModelError as exc:
        return [Check("FAIL", "model manifest", str(exc), "fix or delete the manifest")]
    active_llm = registry.active("llm")
    for entry in entries:
        try:
            registry.verify(entry.name)
            checks.append(
                Check("OK", f"model {entry.name}", f"{entry.role}, sha256 matches, {entry.path}")
            )
        except ModelError as exc:
            failing = active_llm is not None and entry.name == active_llm.name
            checks.append(
                Check(
                    "FAIL" if failing else "WARN",
                    f"model {entry.name}",
                    str(exc),
                    "restore the file or `kura models add` it again",
                )
            )
    if settings.llm_url:
        checks.append(
            Check("OK", "LLM", f"OpenAI-compatible server at {settings.llm_url} (KURA_LLM_URL)")
        )
        return checks
    try:
        path = resolve_llm_path(settings.llm_path, registry)
        check_llm_file(path)
        checks.append(Check("OK", "LLM", f"answers with {path.name}"))
    except ModelError as exc:
        checks.append(Check("FAIL", "LLM", str(exc), "kura models use NAME, or set KURA_LLM_PATH"))
    return checks


def _store(settings: KuraSettings) -> Check:
    if settings.qdrant_url:
        return Check(
            "OK", "store", f"Qdrant server at {settings.qdrant_url} (not opened by doctor)"
        )
    if not settings.store_dir.exists() or not any(settings.store_dir.iterdir()):
        return Check(
            "OK", "store", f"empty ({settings.store_dir}); ingest documents with `kura ingest`"
        )
    from app.doors.cli.remote.client import running_server

    if client := running_server(settings, wait_s=2):  # a running server owns the store: ask it
        h = client.get("/api/v1/health/details")
        return Check("OK", "store", f"{h['chunks']} chunks from {h['documents']} documents (served by {client.url})")
    try:
        from ingest.manifest import Manifest

        manifest = Manifest(settings.manifest_path)
        try:
            documents = len(manifest.documents())
        finally:
            manifest.close()
        from retrieval.store import EdgeStore

        store = EdgeStore(settings.store_dir, _embedder_dim(settings))
        try:
            count = store.count()
        finally:
            store.close()
        return Check(
            "OK", "store", f"{count} chunks from {documents} documents in {settings.store_dir}"
        )
    except Exception as exc:  # noqa: BLE001 - doctor reports whatever the store says
        return Check(
            "FAIL",
            "store",
            f"{type(exc).__name__}: {exc}",
            "stop other kura processes (one process owns the store), or restore the data dir from backup",
        )


def _embedder_dim(settings: KuraSettings) -> int:
    """The dense vector size from the embedder's config.json, without loading the model."""
    import json

    from models.registry import resolve_embedder_path

    config = json.loads((resolve_embedder_path(settings.embedder_path) / "config.json").read_text())
    return int(config.get("hidden_size") or config.get("d_model") or 384)


def _disk(settings: KuraSettings) -> Check:
    target = settings.data_dir if settings.data_dir.exists() else settings.data_dir.parent
    while not target.exists():
        target = target.parent
    free = shutil.disk_usage(target).free
    text = f"{free / 2**30:.1f} GiB free at {target}"
    if free < 1 * 2**30:
        return Check(
            "FAIL", "disk", text, "free space: ingestion and the audit log need room to write"
        )
    if free < 5 * 2**30:
        return Check(
            "WARN", "disk", text, "less than 5 GiB free: plan more space before large ingests"
        )
    return Check("OK", "disk", text)


def _data_dir_private(settings: KuraSettings) -> Check:
    from app.platform.privacy import exposed

    loose = exposed(settings.data_dir)
    if loose:
        shown = ", ".join(str(p) for p in loose[:5]) + (f" and {len(loose) - 5} more" if len(loose) > 5 else "")
        return Check(
            "FAIL",
            "data privacy",
            f"{len(loose)} paths other accounts can read or write: {shown}",
            f"chmod -R go-rwx {settings.data_dir} (kura does it at start when it owns the files)",
        )
    return Check("OK", "data privacy", f"{settings.data_dir} is readable by its owner only")


def _audit_key(settings: KuraSettings) -> Check:
    from app.audit.log import AuditLog

    audit = AuditLog(settings.audit_path)
    if audit.key_path.exists():
        return Check("OK", "audit key", f"{audit.key_path} present; `kura audit checkpoint` anchors it")
    if audit.has_history():
        return Check(
            "FAIL",
            "audit key",
            f"{audit.key_path} is missing but the audit log exists: kura refuses questions",
            f"restore {audit.key_path.name} from the newest backup into {settings.data_dir}",
        )
    return Check("OK", "audit key", "no audit log yet (the key is made with its first entry)")


def _siem_queue(settings: KuraSettings) -> Check:
    if not settings.audit_syslog:
        return Check(
            "OK", "SIEM", "audit entries are not forwarded (set KURA_AUDIT_SYSLOG=host:port to do so)"
        )
    from app.audit.log import AuditLog
    from app.audit.siem import queue_depth

    depth = queue_depth(AuditLog(settings.audit_path))
    text = f"{depth} audit entries wait to be acknowledged by {settings.audit_syslog}"
    if depth:
        return Check("WARN", "SIEM", text, "check that the SIEM is reachable and that `kura serve` runs")
    return Check("OK", "SIEM", text)


def _tesseract(settings: KuraSettings) -> list[Check]:
    exe = shutil.which("tesseract")
    if exe is None:
        return [
            Check(
                "WARN",
                "tesseract",
                "not installed: scanned PDFs give no text",
                "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-jpn",
            )
        ]
    try:
        out = subprocess.run(
            [exe, "--list-langs"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return [Check("WARN", "tesseract", f"does not run: {exc}", "reinstall tesseract-ocr")]
    have = {line.strip() for line in out.splitlines()[1:]}
    wanted = [lang for lang in settings.ocr_languages.split("+") if lang]
    missing = [lang for lang in wanted if lang not in have]
    if missing:
        return [
            Check(
                "WARN",
                "tesseract",
                f"languages {', '.join(sorted(have))}; missing {', '.join(missing)}",
                "apt-get install " + " ".join(f"tesseract-ocr-{m}" for m in missing),
            )
        ]
    return [Check("OK", "tesseract", f"languages {', '.join(wanted)} installed")]


def _network(settings: KuraSettings) -> Check:
    urls = {
        name: value
        for name, value in (
            ("KURA_QDRANT_URL", settings.qdrant_url),
            ("KURA_LLM_URL", settings.llm_url),
            ("KURA_LDAP_URL", settings.ldap_url),
            ("KURA_OIDC_ISSUER", settings.oidc_issuer),
        )
        if value
    }
    if not urls:
        return Check(
            "OK", "network", "no outbound connection needed (embedded store, in-process LLM)"
        )
    listed = ", ".join(f"{k}={v}" for k, v in urls.items())
    return Check("OK", "network", f"connects only to the configured servers: {listed}")


def _ldap_directory(settings: KuraSettings) -> list[Check]:
    """The directory answers over TLS and the service account can bind and search."""
    from app.identity.directory import DirectoryUnavailable, LdapDirectory

    try:
        directory = LdapDirectory.from_settings(settings)
        if directory is None:
            return []
        return [Check("OK", "LDAP directory", directory.check())]
    except (DirectoryUnavailable, ValueError) as exc:
        return [Check("FAIL", "LDAP directory", str(exc), "directory users cannot sign in until this is fixed")]


def _oidc_provider(settings: KuraSettings) -> list[Check]:
    """The identity provider's discovery document and signing keys can be read."""
    from app.identity.oidc import OidcClient, OidcError

    try:
        client = OidcClient.from_settings(settings)
        if client is None:
            return []
        return [Check("OK", "OpenID provider", client.check())]
    except (OidcError, ValueError) as exc:
        return [Check("FAIL", "OpenID provider", str(exc), "sign-in with the provider fails until this is fixed")]


def doctor() -> None:
    """Check this machine can run kura: Python, llama.cpp build and GPU, model files and
    checksums, store, disk, OCR languages, network needs. Exit 1 if anything FAILs."""
    checks = run_checks(KuraSettings())
    colours = {"OK": "green", "WARN": "yellow", "FAIL": "red"}
    for c in checks:
        console.print(
            f"[{colours[c.status]}]{c.status:<4}[/{colours[c.status]}] {c.what}: {c.detail}",
            highlight=False,
        )
        if c.fix:
            console.print(f"       → {c.fix}", highlight=False)
    if any(c.status == "FAIL" for c in checks):
        raise typer.Exit(1)
