"""Operator commands: `kura migrate`, `kura backup`, `kura restore`, `kura metrics`.

Usage:
    kura migrate --to-server http://qdrant:6333     # embedded store -> server collection
    kura migrate --to-edge                           # KURA_QDRANT_URL's collection -> embedded
    kura backup /backups/kura-2026-11-21             # live, consistent copy of the data directory
    kura restore /backups/kura-2026-11-21            # into an empty KURA_DATA_DIR
    kura restore /backups/kura-2026-11-21 --map-root /srv/docs=/data/docs --audit-key /safe/audit.key
    kura metrics --port 9464                         # serve the Prometheus endpoint on its own
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from app.platform.settings import KuraSettings
from base import offline  # noqa: F401
from retrieval.store import ChunkStore

console = Console()
err = Console(stderr=True)


class MigrationMismatch(RuntimeError):
    """The target store does not hold what was copied; the source is untouched, copy again."""


def copy_points(source: ChunkStore, target: ChunkStore, batch: int = 256) -> int:
    """Copy every chunk (staged ones too) with its vectors and payload: no re-embedding.
    Returns the number copied; raises MigrationMismatch if the target's counts differ."""
    copied = 0
    for page in source.export_points(batch):
        if page:
            target.upsert(page)
            copied += len(page)
    want = (source.count(), source.count(staged=True))
    got = (target.count(), target.count(staged=True))
    if want != got:
        raise MigrationMismatch(
            f"after copying {copied} chunks the target holds {got[0]} visible + {got[1]} staged, "
            f"the source {want[0]} + {want[1]}; was the target collection not empty? "
            "Use an empty target (KURA_COLLECTION=<new name> or an empty KURA_DATA_DIR) "
            "and run again"
        )
    return copied


def _embedder_dim(settings: KuraSettings) -> int:
    from models.embedder import load_embedder
    from models.registry import resolve_embedder_path

    return len(
        load_embedder(
            resolve_embedder_path(settings.embedder_path), settings.embedder_backend
        ).embed_query("x")
    )


def register(app: typer.Typer) -> None:
    """Add the operator commands to the `kura` app (one call in app/doors/cli/main.py)."""
    app.command("migrate")(migrate)
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("metrics")(metrics)


def migrate(
    to_server: Annotated[str | None, typer.Option(help="Qdrant server URL to copy the embedded store into")] = None,
    to_edge: Annotated[
        bool, typer.Option(help="copy the server collection (KURA_QDRANT_URL) into the embedded store")
    ] = False,
    api_key: Annotated[str | None, typer.Option(envvar="KURA_QDRANT_API_KEY", help="server API key")] = None,
) -> None:
    """Move the chunk store between embedded (qdrant-edge) and a Qdrant server; no re-embedding."""
    from retrieval.server_store import ServerStore
    from retrieval.store import EdgeStore

    settings = KuraSettings()
    url = _migration_target(settings, to_server, to_edge)
    dim = _embedder_dim(settings)
    edge = EdgeStore(settings.store_dir, dim)
    server = ServerStore(
        url,
        api_key or settings.qdrant_api_key,
        settings.collection,
        dim,
        shards=settings.qdrant_shards,
        replicas=settings.qdrant_replicas,
    )
    source, target = (edge, server) if to_server else (server, edge)
    started = time.monotonic()
    try:
        if to_server and target.count() + target.count(staged=True):
            err.print(f"collection {settings.collection!r} on {url} is not empty; set KURA_COLLECTION to a new name")
            raise typer.Exit(2)
        copied = copy_points(source, target)
    except MigrationMismatch as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        edge.close()
        server.close()
    console.print(f"copied {copied} chunks in {time.monotonic() - started:.1f} s; counts verified")
    if to_server:
        console.print(
            f"now set KURA_QDRANT_URL={url} (and KURA_COLLECTION={settings.collection}) for every kura process"
        )


def _migration_target(settings: KuraSettings, to_server: str | None, to_edge: bool) -> str:
    """The server URL a migration copies to or from, after refusing a request that cannot work."""
    if bool(to_server) == bool(to_edge):
        err.print("give exactly one of --to-server URL or --to-edge")
        raise typer.Exit(2)
    url = to_server or settings.qdrant_url
    if not url:
        err.print("--to-edge copies from KURA_QDRANT_URL, which is not set")
        raise typer.Exit(2)
    if to_edge and settings.store_dir.exists() and any(settings.store_dir.iterdir()):
        err.print(f"the embedded store {settings.store_dir} is not empty; point KURA_DATA_DIR at a new directory")
        raise typer.Exit(2)
    return url


def backup(
    dest: Annotated[Path, typer.Argument(help="new, empty folder for the backup")],
    without_audit_key: Annotated[
        bool, typer.Option(help="leave audit.key out (keep it elsewhere; restore then asks for it)")
    ] = False,
) -> None:
    """Back up everything the data directory holds, with a checksum list, while kura runs."""
    from app.doors.cli.remote import commands as cli_remote
    from app.identity.users import local_operator
    from app.service import KuraService
    from app.service.backup import BackupError

    if remote := cli_remote.server():  # the server owns the store: it writes the backup
        return cli_remote.backup(remote, dest, not without_audit_key)
    service = KuraService(KuraSettings())
    try:
        summary = service.backup(local_operator(), dest, audit_key=not without_audit_key)  # audited
    except BackupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        service.close()
    console.print(
        f"backup in {dest}: {summary.files} files, {summary.chunks} chunks, "
        f"{summary.bytes / 1e6:.1f} MB" + ("" if summary.audit_key else "; audit.key left out: keep it elsewhere"),
        soft_wrap=True,
    )


def restore(
    src: Annotated[Path, typer.Argument(help="a folder written by `kura backup`")],
    map_root: Annotated[
        list[str] | None,
        typer.Option(help="OLD=NEW: documents that were under OLD are under NEW on this machine (repeatable)"),
    ] = None,
    audit_key: Annotated[
        Path | None, typer.Option(help="the audit.key of a backup taken --without-audit-key")
    ] = None,
) -> None:
    """Restore a backup into an empty KURA_DATA_DIR after checking every checksum."""
    import sys

    from app.service.backup import AuditKeyNeeded, BackupError, parse_root_move, restore_backup

    settings = KuraSettings()
    try:
        moves = [parse_root_move(text) for text in map_root or []]
        try:
            summary = restore_backup(src, settings, map_roots=moves, audit_key=audit_key)
        except AuditKeyNeeded as exc:
            if not sys.stdin.isatty():
                raise
            err.print(str(exc).replace("; nothing was restored", ""), highlight=False, markup=False)
            typed = typer.prompt("path of the audit.key file")
            summary = restore_backup(src, settings, map_roots=moves, audit_key=Path(typed).expanduser())
    except BackupError as exc:  # a path may hold [brackets]: printed as typed
        err.print(f"kura: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    for old, new in summary.moves:
        note = "" if Path(new).exists() else " (not there yet: copy the documents before the next sync)"
        console.print(f"paths under {old} now under {new}{note}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"restored {summary.files} files into {settings.data_dir}; {summary.moved} recorded paths moved; "
        "check with `kura audit verify`",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def metrics(
    port: Annotated[
        int | None, typer.Option(help="port (default KURA_METRICS_PORT or 9464)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="address (default KURA_METRICS_HOST)")] = None,
) -> None:
    """Serve the Prometheus endpoint alone (e.g. beside a worker); `kura serve` starts it too."""
    from app.platform.metrics import start_metrics_server

    settings = KuraSettings()
    bound = start_metrics_server(
        port or settings.metrics_port or 9464, host or settings.metrics_host
    )
    console.print(
        f"metrics on http://{host or settings.metrics_host}:{bound}/metrics (Ctrl-C to stop)"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
