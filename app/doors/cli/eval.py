"""`kura eval [retrieval] DATASET_DIR`: retrieval quality of each search stage on a BEIR-layout
dataset; `kura eval answers DATASET_DIR`: what readers are shown, per model (eval_answers.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from app.doors.cli.eval_answers import answers_command, dataset_or_exit, progress
from app.platform.settings import KuraSettings
from base import offline  # noqa: F401

console = Console()


class _EvalGroup(TyperGroup):
    """`kura eval DATASET` keeps meaning `kura eval retrieval DATASET`."""

    def resolve_command(self, ctx, args):  # noqa: ANN001, ANN201  (click's signature)
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["retrieval", *args]
        return super().resolve_command(ctx, args)


eval_app = typer.Typer(cls=_EvalGroup, no_args_is_help=True, help="Measure retrieval and answers on a dataset.")


def eval_command(
    dataset_dir: Annotated[Path, typer.Argument(help="folder with corpus.jsonl, queries.jsonl, qrels/test.tsv")],
    limit: Annotated[int | None, typer.Option(help="evaluate a seeded sample of N queries (default: all)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the query sample")] = 13,
    stages: Annotated[str, typer.Option(help="comma-separated: sparse,dense,hybrid,rerank")] = "",
    fusion: Annotated[str, typer.Option(help="rrf | dbsf | rrf:DENSE_WEIGHT,SPARSE_WEIGHT")] = "",
    japanese: Annotated[str, typer.Option(help="Japanese analyzer: sudachi | bigram | qdrant")] = "",
    cache_dir: Annotated[Path | None, typer.Option(help="where ingested eval stores are kept")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Ingest DATASET_DIR's corpus through the real chunker, embedder and store (cached), then
    report Recall@5, MRR@10, nDCG@10 and answer@5 for sparse, dense, hybrid (+rerank)."""
    from app.service.evaluation import evaluate
    from models.embedder import load_embedder
    from models.registry import resolve_embedder_path
    from retrieval.rerank import Reranker
    from retrieval.search import parse_fusion
    from retrieval.sparse import SparseEncoder

    settings = KuraSettings()
    dataset = dataset_or_exit(dataset_dir)
    reranker = Reranker(settings.reranker_path) if settings.reranker_path else None
    chosen = [s for s in stages.split(",") if s] or ["sparse", "dense", "hybrid"] + (
        ["rerank"] if reranker else []
    )
    # With the model cache: the ONNX embedder the product runs.
    embedder = load_embedder(resolve_embedder_path(settings.embedder_path), settings.embedder_backend,
                             cache_dir=settings.model_cache_dir)
    report = evaluate(
        dataset,
        embedder,
        SparseEncoder(japanese or settings.sparse_japanese),
        cache_dir or settings.data_dir / "eval-cache",
        limit=limit,
        seed=seed,
        stages=chosen,
        fusion=parse_fusion(fusion or settings.fusion),
        dense_languages=settings.embedder_languages,
        reranker=reranker,
        rerank_top_n=settings.rerank_top_n,
        chunk_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
        on_progress=None if as_json else progress,
    )
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    else:
        _print_report(report)


def _print_report(report) -> None:  # noqa: ANN001  (app.service.evaluation.EvalReport, imported lazily)
    table = Table(
        title=f"{report.dataset}: {report.passages} passages, {report.chunks} chunks, "
        f"{report.queries} queries"
        + (" (store from cache)" if report.cached else f" (ingested in {report.ingest_s:.0f} s)")
    )
    for column in ("stage", "Recall@5", "MRR@10", "nDCG@10", "answer@5", "ms/query"):
        table.add_column(column, justify="right")
    for s in report.stages:
        table.add_row(
            s.stage,
            f"{s.recall_5:.3f}",
            f"{s.mrr_10:.3f}",
            f"{s.ndcg_10:.3f}",
            "-" if s.answer_5 is None else f"{s.answer_5:.3f}",
            f"{s.ms_per_query:.1f}",
        )
    console.print(table)
    console.print(f"[dim]{json.dumps(report.settings, ensure_ascii=False)}[/dim]")


eval_app.command("retrieval")(eval_command)
eval_app.command("answers")(answers_command)
