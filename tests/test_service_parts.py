"""The composition root (app/service/parts.py): parts are built once, in a known order, each under
its own lock; a request and the ingest writer that need parts at the same moment never deadlock;
a test hands in the parts it built."""

from __future__ import annotations

import threading
import time

import pytest

from app.service import KuraService
from app.service.parts import Part, Parts


def test_a_part_is_built_once_however_many_threads_ask(settings) -> None:
    builds = []

    def build() -> object:
        builds.append(1)
        time.sleep(0.2)
        return object()

    part = Part("thing", build)
    got = []
    threads = [threading.Thread(target=lambda: got.append(part.get())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len({id(g) for g in got}) == 1


def test_a_failed_build_raises_to_its_caller_and_the_next_asker_tries_again() -> None:
    attempts = []

    def build() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk not mounted yet")
        return "store"

    part = Part("store", build)
    with pytest.raises(OSError, match="not mounted"):
        part.get()
    assert part.peek() is None
    assert part.get() == "store" and len(attempts) == 2


def test_a_request_and_the_ingest_writer_never_deadlock_while_the_embedder_loads(settings, embedder) -> None:
    """The writer opens the index (store -> embedder, then manifest) while a request (health
    details, the Documents page) asks for the manifest. Before the parts had one lock each, the
    writer held a service-wide lock while the embedder loaded and then waited for the manifest's
    property lock, which the request held while it waited for the service-wide lock."""
    parts = Parts(settings)
    loading, release = threading.Event(), threading.Event()

    def slow_embedder():  # noqa: ANN202
        loading.set()
        assert release.wait(30)
        return embedder

    parts.embedder = Part("embedder", slow_embedder)
    writer_got = []
    writer = threading.Thread(target=lambda: writer_got.append(parts.index.get()), daemon=True)
    writer.start()
    assert loading.wait(30), "the writer never started loading the embedder"
    started = time.monotonic()
    manifest = parts.manifest.get()  # the request: answered while the embedder still loads
    assert time.monotonic() - started < 5
    assert manifest.documents() == []
    release.set()
    writer.join(30)
    assert not writer.is_alive(), "the ingest writer deadlocked opening the index"
    assert writer_got[0].manifest is manifest  # one manifest for both, never two openers
    parts.close()


def test_a_scrape_reads_only_built_parts_and_never_loads_a_model(settings) -> None:
    from app.platform import metrics

    parts = Parts(settings)
    metrics.refresh()
    assert parts.embedder.peek() is None and parts.store.peek() is None and parts.llm.peek() is None
    parts.close()


def test_a_service_is_built_from_the_parts_a_test_hands_in(settings, embedder) -> None:
    service = KuraService(settings, embedder=embedder)
    assert service.embedder is embedder
    assert service.store.count() == 0  # the store opened with the handed-in embedder's size
    service.close()
    with pytest.raises(TypeError, match="no part named 'embeder'"):
        KuraService(settings, embeder=embedder)
