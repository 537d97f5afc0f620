"""`kura eval answers DATASET [--models extractive,a.gguf,http://host:8080/v1] [--limit N] [--json F]`:
what readers are shown, per model (app/service/answer_eval.py), printed as a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.platform.settings import KuraSettings
from base import offline  # noqa: F401

console = Console()


def progress(stage: str, done: int, total: int) -> None:
    console.print(f"[dim]{stage}: {done}/{total}[/dim]", end="\r")


def dataset_or_exit(dataset_dir: Path):  # noqa: ANN201  (app.service.evaluation.Dataset, imported lazily)
    """The BEIR folder loaded, or its one-line error and exit status 2."""
    from app.service.evaluation import DatasetError, load_dataset

    try:
        return load_dataset(dataset_dir)
    except DatasetError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


COLUMNS = (
    ("model", "model"),
    ("answerable: gold answer shown", "gold_in_shown"),
    ("answerable: EM", "exact_match"),
    ("answerable: F1", "f1"),
    ("answerable: labelled supported", "supported"),
    ("support label precision", "support_precision"),
    ("unanswerable: abstained", "abstained"),
    ("unanswerable: not presented as the answer", "not_presented"),
    ("unanswerable: invented answer", "invented"),
    ("generated answers shown (passed the check)", "generated_shown"),
    ("first token p50 s", "first_token_p50_s"),
    ("first token p95 s", "first_token_p95_s"),
    ("tokens/s", "tokens_per_s"),
    ("peak RSS MB (the whole process)", "peak_rss_mb"),
    ("RSS the model added MB", "model_rss_mb"),
    ("VRAM MB", "vram_mb"),
)


def answers_command(
    dataset_dir: Annotated[Path, typer.Argument(help="BEIR folder with answers.jsonl (a QA set)")],
    models: Annotated[
        str, typer.Option(help="comma-separated: extractive, a GGUF path (path#gemma for a prompt format), a URL")
    ] = "extractive",
    limit: Annotated[int | None, typer.Option(help="a seeded sample of N questions (default: all)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the sample")] = 13,
    cache_dir: Annotated[Path | None, typer.Option(help="where the eval store and retrieval are cached")] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="also write the report as JSON here")] = None,
) -> None:
    """Score what each model shows readers: gold answer shown, EM/F1, support label precision,
    abstention on unanswerable questions, first token, tokens/s, peak memory."""
    from app.service.answer_eval import evaluate_answers

    settings = KuraSettings()
    dataset = dataset_or_exit(dataset_dir)
    if not dataset.answers:
        console.print(f"[red]{dataset_dir} has no answers.jsonl: kura eval answers needs a QA set[/red]")
        raise typer.Exit(2)
    chosen = [m.strip() for m in models.split(",") if m.strip()]
    report = evaluate_answers(
        dataset, chosen, settings, cache_dir or settings.data_dir / "eval-cache", limit, seed,
        progress,
    )
    table = Table(title=f"{report.dataset}: {report.questions} questions (each also unanswerable), "
                        f"retrieval nDCG@10 {report.ndcg10:.4f}")
    # One column per model (a site compares a handful), one row per figure.
    table.add_column("")
    for m in report.models:
        table.add_column(Path(m.model.partition("#")[0]).name if "/" in m.model else m.model, justify="right")
    for label, key in COLUMNS[1:]:
        table.add_row(label, *("-" if getattr(m, key) is None else str(getattr(m, key)) for m in report.models))
    console.print(table)
    if json_file:
        json_file.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
