"""The Prometheus endpoint: scraped over HTTP after real ingestion, search and questions."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from app.identity.users import User, local_operator

HANDBOOK = """# Travel policy

Employees book flights through the travel desk at least fourteen days before departure.
Hotel costs are reimbursed up to 180 euros per night in capital cities.

# Expenses

Receipts must be submitted within thirty days of the trip.
"""


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^(kura_[a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


@pytest.mark.slow
def test_metrics_endpoint_counts_real_ingestion_searches_answers_and_refusals(
    service, tmp_path: Path
):
    from app.platform.metrics import start_metrics_server

    port = start_metrics_server(0, "127.0.0.1")
    before = scrape(port)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text(HANDBOOK, encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    service.ingest(local_operator(), docs, ["finance"])
    service.search(local_operator(), "hotel reimbursement per night", as_admin=True)
    answer = service.ask(
        local_operator(), "How much is reimbursed for a hotel night?", as_admin=True
    )
    streamed = "".join(answer.tokens())
    outsider = User("visitor", groups=("nobody-reads-this",))
    refusal = service.ask(outsider, "How much is reimbursed for a hotel night?")
    "".join(refusal.tokens())
    after = scrape(port)

    def moved(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert moved('kura_ingest_files_total{status="ingested"}') == 1
    assert moved('kura_ingest_files_total{status="failed"}') == 1
    assert moved("kura_ingest_errors_total") == 1
    assert moved("kura_ingest_chunks_total") >= 1
    assert moved('kura_queries_total{kind="search"}') == 1
    assert moved('kura_queries_total{kind="ask"}') == 2
    assert moved("kura_refusals_total") == 1
    assert moved("kura_retrieval_seconds_count") == 3
    assert streamed and moved("kura_answer_seconds_count") == 1
    assert moved("kura_answer_first_token_seconds_count") == 1
    assert moved("kura_answer_tokens_total") == answer.token_count > 0
    assert after["kura_answer_tokens_per_second"] > 0
    assert after["kura_store_chunks"] == service.store.count() >= 1
    assert after["kura_store_documents"] == 1
    assert after["kura_llm_queue_waiting"] == 0
