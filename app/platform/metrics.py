"""kura's Prometheus metrics: what a site watches on a RAG appliance.

The use cases (app/service/) record them; `start_metrics_server` exposes them on
`KURA_METRICS_PORT` (started by `kura serve`, the UI process and `kura metrics`).
deploy/grafana/kura-dashboard.json charts every one of them.

Usage:
    from app.platform import metrics
    metrics.QUERIES.labels(kind="ask").inc()
    port = metrics.start_metrics_server(9464, "127.0.0.1")
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from ingest.pipeline import IngestReport


class _RefreshOnScrape:
    """A collector that yields nothing but refreshes the read gauges. Registered before every
    kura metric because a scrape collects in registration order."""

    def collect(self):  # noqa: ANN201 (prometheus_client's collector protocol)
        if "refresh" in globals():  # register() also collects once, before refresh is defined
            refresh()
        return []


REGISTRY.register(_RefreshOnScrape())


_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160)

QUERIES = Counter("kura_queries", "Searches and questions served", ["kind"])  # kind: search | ask
REFUSALS = Counter(
    "kura_refusals", "Questions answered 'no relevant documents' (nothing readable matched)"
)
ANSWER_FIRST_TOKEN = Histogram(
    "kura_answer_first_token_seconds",
    "Time from question to the first streamed token",
    buckets=_LATENCY_BUCKETS,
)
ANSWER_TOTAL = Histogram(
    "kura_answer_seconds", "Time to stream a whole answer", buckets=_LATENCY_BUCKETS
)
RETRIEVAL = Histogram(
    "kura_retrieval_seconds",
    "Query embedding + hybrid store query (+ rerank) per search",
    buckets=_LATENCY_BUCKETS,
)
EVIDENCE = Histogram(
    "kura_evidence_seconds",
    "Choosing the evidence quote from the passages, per question",
    buckets=_LATENCY_BUCKETS,
)
RERANK = Histogram(
    "kura_rerank_seconds",
    "Reranking time per search (when a reranker is set)",
    buckets=_LATENCY_BUCKETS,
)
ANSWER_TOKENS = Counter("kura_answer_tokens", "Tokens streamed in answers")
TOKENS_PER_SECOND = Gauge("kura_answer_tokens_per_second", "Generation speed of the last answer")
IN_FLIGHT = Gauge("kura_ingestions_in_flight", "Ingestions running now")
QUEUE_WAITING = Gauge("kura_llm_queue_waiting", "Questions waiting for the model (queue depth)")
INGEST_FILES = Counter("kura_ingest_files", "Files seen by ingestion, by outcome", ["status"])
INGEST_CHUNKS = Counter("kura_ingest_chunks", "Chunks written by ingestion")
INGEST_ERRORS = Counter("kura_ingest_errors", "Files that failed to ingest")
STORE_CHUNKS = Gauge("kura_store_chunks", "Chunks in the store (visible to searches)")
STORE_DOCUMENTS = Gauge("kura_store_documents", "Documents in the manifest")
GPU_MEMORY_USED = Gauge(
    "kura_gpu_memory_used_bytes", "GPU memory in use (nvidia-smi), per GPU", ["gpu"]
)
GPU_MEMORY_TOTAL = Gauge(
    "kura_gpu_memory_total_bytes", "GPU memory size (nvidia-smi), per GPU", ["gpu"]
)
AUDIT_SIEM_QUEUE = Gauge(
    "kura_audit_siem_queue", "Audit entries written but not yet acknowledged by the SIEM"
)
# Backups (app/service/backup_schedule.py): alert when the age passes twice KURA_BACKUP_EVERY.
BACKUP_AGE = Gauge(
    "kura_backup_age_seconds", "Seconds since the newest good backup (+Inf: none known to this server)"
)
BACKUP_FAILURES = Counter("kura_backup_failures", "Scheduled backups that failed (each one an audit alert)")

log = logging.getLogger(__name__)
_readers: list[Callable[[], None]] = []
_gpu_checked_at = 0.0
_lock = threading.Lock()
_servers: dict[tuple[str, int], int] = {}


def add_reader(read: Callable[[], None]) -> None:
    """Call `read` at every scrape to set the gauges that are read rather than counted; a reader
    that raises (its service closed or dropped) is removed. The service adds one (app/service/parts.py)."""
    _readers.append(read)


def record_ingest(report: IngestReport) -> None:
    for result in report.results:
        INGEST_FILES.labels(status=result.status).inc()
    INGEST_CHUNKS.inc(report.chunks)
    INGEST_ERRORS.inc(len(report.failures))


def record_answer(first_token_s: float | None, total_s: float | None, tokens: int) -> None:
    """One generated answer's timings (an answer that found nothing is not recorded)."""
    if first_token_s is not None:
        ANSWER_FIRST_TOKEN.observe(first_token_s)
    if total_s is not None:
        ANSWER_TOTAL.observe(total_s)
    ANSWER_TOKENS.inc(tokens)
    generating = (total_s or 0) - (first_token_s or 0)
    if tokens > 1 and generating > 0:
        TOKENS_PER_SECOND.set((tokens - 1) / generating)


class TimedReranker:
    """Wraps a reranker so every `rerank` call is timed into kura_rerank_seconds."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def rerank(self, *args: Any, **kwargs: Any) -> Any:
        with RERANK.time():
            return self._inner.rerank(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def refresh() -> None:
    """Update the gauges that are read rather than counted (store size, queue, GPU memory)."""
    global _gpu_checked_at
    for read in list(_readers):
        try:
            read()
        except Exception as exc:  # a closed or dropped service must not fail the whole scrape
            log.debug("metrics reader dropped: %s", exc)
            _readers.remove(read)
    now = time.monotonic()
    if now - _gpu_checked_at > 10 and shutil.which("nvidia-smi"):
        _gpu_checked_at = now
        _read_gpu_memory()


def _read_gpu_memory() -> None:
    from models.llm import query_gpus

    for index, used, total in query_gpus("index,memory.used,memory.total"):
        GPU_MEMORY_USED.labels(gpu=index).set(float(used) * 2**20)
        GPU_MEMORY_TOTAL.labels(gpu=index).set(float(total) * 2**20)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> int:
    """Serve /metrics on host:port (port 0: any free port); returns the port. Once per process:
    Streamlit re-runs scripts, so a second call for the same address returns the first port."""
    with _lock:
        if (host, port) in _servers:
            return _servers[(host, port)]
        try:
            server, _thread = start_http_server(port, addr=host)
        except OSError as exc:
            raise OSError(
                f"cannot serve metrics on {host}:{port}: {exc}; "
                "set KURA_METRICS_PORT to a free port"
            ) from exc
        bound = int(server.server_port)
        _servers[(host, port)] = bound
        return bound
