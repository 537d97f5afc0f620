"""The `kura` command line. Every command goes through app/service/__init__.py, like the UI does."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import app.doors.cli.remote.commands as cli_remote
from app.doors.cli.answer_print import print_citations, print_conversation, print_evidence, print_generated
from app.identity.users import local_operator, parse_groups
from app.platform.settings import KuraSettings
from base import offline  # noqa: F401

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="kura: ask your documents, on your own machine.",
)
console = Console()
err = Console(stderr=True)


def _service():
    from app.service import KuraService

    return KuraService(KuraSettings())


@app.command()
def setup(
    spacy_wheel: Annotated[Path | None, typer.Option(help="official en_core_web_sm-3.8.0 wheel to install")] = None,
) -> None:
    """Prepare offline data once: the NLP pipeline unstructured needs, model checks."""
    from ingest.nlp_offline import install_for_unstructured, install_official_wheel
    from models.registry import packaged_embedder_path, packaged_llm_path

    if spacy_wheel:
        install_official_wheel(spacy_wheel)
    console.print(f"sentence splitting for unstructured: {install_for_unstructured()}")
    console.print(f"LLM: {packaged_llm_path()}")
    console.print(f"embedder: {packaged_embedder_path()}")
    settings = KuraSettings()
    if settings.embedder_backend != "torch":
        from models.onnx_export import ensure_onnx_export
        from models.registry import resolve_embedder_path

        source = resolve_embedder_path(settings.embedder_path)
        if not (source / "model.onnx").is_file():
            console.print(f"embedder ONNX export: {ensure_onnx_export(source, settings.model_cache_dir)}")
            if settings.embedder_backend in ("auto", "onnx-int8"):
                from models.onnx_quantize import ensure_int8

                int8 = ensure_int8(ensure_onnx_export(source, settings.model_cache_dir))
                console.print(f"embedder int8 copy (sha256-verified): {int8}")


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="folder or file to ingest (again: only changes are processed)")],
    groups: Annotated[str, typer.Option(help="comma-separated ACL groups that may read these documents")] = "",
    report_json: Annotated[Path | None, typer.Option(help="also write the ingestion report as JSON here")] = None,
) -> None:
    """Ingest a folder: parse, chunk, embed and index every supported file."""
    if not path.exists():
        err.print(f"[red]{path} does not exist[/red]")
        raise typer.Exit(2)
    service = _service()
    try:  # refused (no readers, no room) before any progress is drawn
        job = service.submit_ingest(local_operator(), path, parse_groups(groups))
    except BaseException:
        service.close()
        raise
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[chunks]} chunks"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}"),
    )
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("loading models", total=None, chunks=0, rate="", eta="")

            def on_progress(event) -> None:
                eta = f"ETA {event.eta_s:.0f} s" if event.eta_s is not None else ""
                progress.update(
                    task,
                    total=event.files_total,
                    completed=event.files_done,
                    chunks=f"{event.chunks} ({event.pages} pages)",
                    rate=f"{event.rate_files_per_s:.1f} files/s {event.rate_chunks_per_s:.0f} chunks/s",
                    eta=eta,
                    description=Path(event.current).name[:40],
                )

            report = service.follow_ingest(local_operator(), job.id, on_progress)
    finally:
        service.close()
    _print_report(report)
    if report_json:
        report_json.write_text(json.dumps([r.__dict__ for r in report.results], ensure_ascii=False, indent=1))
    if report.nothing_ingested:
        raise typer.Exit(1)


def _print_report(report) -> None:  # noqa: ANN001  (ingest.pipeline.IngestReport)
    table = Table(title=f"ingestion report: {report.root}")
    for column in ("status", "files"):
        table.add_column(column)
    for status in ("ingested", "linked", "unchanged", "removed", "failed"):
        table.add_row(status, str(report.count(status)))
    console.print(table)
    console.print(f"{report.chunks} chunks, {report.pages} pages in {report.seconds:.1f} s")
    busy = sum(report.stage_s.values())
    if busy > 0:
        console.print(
            "time per stage: " + ", ".join(f"{k} {v:.1f} s ({v / busy:.0%})" for k, v in report.stage_s.items())
        )
    for failure in report.failures:
        console.print(f"[yellow]FAILED[/yellow] {failure.path}: {failure.reason}\n    → {failure.hint}")


@app.command()
def search(
    query: Annotated[str, typer.Argument()],
    limit: Annotated[int, typer.Option(help="how many passages")] = 8,
) -> None:
    """List the passages that best match QUERY (no LLM)."""
    if remote := cli_remote.server():  # a running server owns the store: ask it
        return cli_remote.search(remote, query, limit)
    service = _service()
    try:
        passages = service.search(local_operator(), query, limit, as_admin=True)
    finally:
        service.close()
    if not passages:
        console.print("no matching passages")
    for rank, p in enumerate(passages, start=1):
        console.print(f"[bold]{rank}.[/bold] {p.location}  [dim]score {p.score:.3f}[/dim]")
        console.print(f"   {p.text[:300]}")


@app.command()
def ask(
    question: Annotated[str, typer.Argument()],
    conversation: Annotated[str | None, typer.Option(help="continue this saved conversation of yours")] = None,
) -> None:
    """Answer QUESTION from the documents: what they say first, a checked generated answer, citations `path p.N`.
    The question and its answer are kept as your conversation (`kura conversations`)."""
    if remote := cli_remote.server():
        return cli_remote.ask(remote, question, conversation)
    service = _service()
    try:
        answer = service.ask(local_operator(), question, as_admin=True, keep=True, conversation_id=conversation)
        print_evidence(answer.statement, answer.quote_lines())
        with console.status("writing an answer and checking it against the passages", spinner="dots"):
            answer.finish()
        print_generated(answer.generated, answer.withheld_reason)
        print_citations(
            [(c.number, c.passage.location) for c in answer.citations()] if answer.context else [],
            [(c.number, c.passage.location) for c in answer.also_retrieved()] if answer.sources() else [],
        )
        print_conversation(answer.conversation_id or "")
        if answer.first_token_s is not None and answer.total_s:
            generating = answer.total_s - answer.first_token_s
            rate = f", {answer.token_count / generating:.0f} tokens/s" if generating > 0 else ""
            console.print(
                f"[dim]first token {answer.first_token_s:.2f} s, total {answer.total_s:.2f} s, "
                f"{answer.token_count} tokens{rate}[/dim]"
            )
    finally:
        service.close()


@app.command()
def docs() -> None:
    """List ingested documents."""
    if remote := cli_remote.server():
        return cli_remote.docs(remote)
    service = _service()
    try:
        records = service.documents(local_operator())
        table = Table()
        for column in ("doc id", "title", "type", "pages", "chunks", "paths"):
            table.add_column(column)
        for d in records:
            paths = [f.path for f in service.manifest.files_of(d.doc_id)]
            table.add_row(d.doc_id[:12], d.title, d.file_type, str(d.page_count), str(d.chunk_count), "\n".join(paths))
        console.print(table)
    finally:
        service.close()


from app.doors.cli.bench import bench as _bench  # noqa: E402

app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(_bench)

from app.doors.cli.eval import eval_app  # noqa: E402

app.add_typer(eval_app, name="eval")

# Sub-apps from other modules register here, one line each.

from app.doors.cli import audit_workbench  # noqa: E402,F401  (issue 27: kura audit who-saw|alerts|report...)
from app.doors.cli.audit import audit_app  # noqa: E402
from app.doors.cli.users import acl_app, users_app  # noqa: E402

app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(acl_app, name="acl")

from app.doors.cli.models import doctor as _doctor  # noqa: E402
from app.doors.cli.models import models_app  # noqa: E402

app.add_typer(models_app, name="models")
app.command("doctor")(_doctor)

from app.doors.cli.keys import keys_app  # noqa: E402

app.add_typer(keys_app, name="keys")

from app.doors.cli.ops import register as _register_ops  # noqa: E402

_register_ops(app)  # migrate, backup, restore, metrics

from app.doors.cli.jobs import folders_app, jobs_app  # noqa: E402

app.add_typer(jobs_app, name="jobs")
app.add_typer(folders_app, name="folders")

from app.doors.cli.conversations import conversations_app  # noqa: E402

app.add_typer(conversations_app, name="conversations")


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="port for the UI")] = None,
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
) -> None:
    """Start the kura server: the browser UI, holding the store for the life of the process."""
    from app.doors.http.server import serve as run_server

    settings = KuraSettings()
    port = port or settings.ui_port
    host = host or settings.ui_host
    console.print(f"kura UI on [bold]http://{host}:{port}[/bold]  (data: {settings.data_dir})")
    sys.stdout.flush()
    # The server runs in this process (no child): signals from a terminal, systemd or a
    # container runtime reach it directly, and stopping `kura serve` leaves nothing behind.
    run_server(settings, host, port)


def main() -> None:
    from app.audit.log import AuditKeyMissing
    from app.identity.users import AccessDenied
    from app.platform.logs import configure_logging
    from app.platform.privacy import private_umask
    from app.platform.settings import SettingsError, load_settings
    from app.service.jobs import JobCancelled, JobFailed
    from ingest.errors import DiskFull
    from models.errors import ModelError
    from retrieval.server_store import ServerStoreError
    from retrieval.store import StoreBusy

    private_umask()  # before anything is written: files 0600, folders 0700 (app/platform/privacy.py)
    try:
        # Settings first, outside any command: a bad value or config file is one line, exit 2.
        settings = load_settings()
        settings.ensure_dirs()
    except SettingsError as exc:
        err.print(f"kura: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    configure_logging(settings)
    try:
        app()
    except (
        StoreBusy,
        DiskFull,
        ServerStoreError,
        ModelError,
        AccessDenied,
        FileNotFoundError,
        ValueError,
        LookupError,
        AuditKeyMissing,
        JobCancelled,
        JobFailed,
    ) as exc:
        # Errors a user can meet: say what to do, no traceback.
        err.print(f"[red]kura: {exc}[/red]", highlight=False, soft_wrap=True)  # one line, any width
        sys.exit(2)


if __name__ == "__main__":
    main()
