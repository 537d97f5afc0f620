"""`kura bench api`: what the HTTP door costs, side by side with the in-process service.

Into a fresh data directory (generated files, one real passage each), with the API served by
uvicorn on a loopback port in this process (the same app `kura serve` mounts):
1. search p50/p95: `service.search` in-process vs `POST /api/v1/search` (httpx, keep-alive);
   the goal is an API overhead of at most 5 ms p50;
2. time to the model's first token in-process, and through streamed `POST /v1/chat/completions`
   the time to the first content (the evidence quote, before the model) and to the whole answer;
3. 16 concurrent askers on streamed `/api/v1/ask` while an ingest job runs: when each sees its
   evidence (goal: within 1 s p95, however long the model's line), answers/s, p50/p95 latency
   of the whole answer, errors, and whether they were answered in arrival order (all ask one
   question that retrieval answers, so each of them waits for the LLM).

    kura bench api
    kura bench api --files 40 --askers 16 --json api.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from base import offline  # noqa: F401
from benchmarks.ingest import SEARCH_QUERIES as QUERIES
from benchmarks.ingest import generate_folder
from benchmarks.ingest import percentile as _pct


def _stats(values: list[float]) -> dict:
    return {"p50": round(statistics.median(values), 2), "p95": round(_pct(values, 0.95), 2), "n": len(values)}


def _serve(app):  # noqa: ANN001, ANN202
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kura bench api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=40, help="generated files per ingest (default 40)")
    parser.add_argument("--searches", type=int, default=60, help="searches per side (default 60)")
    parser.add_argument("--asks", type=int, default=5, help="first-token measurements per side (default 5)")
    parser.add_argument("--askers", type=int, default=16, help="concurrent API askers (default 16)")
    parser.add_argument("--answer-tokens", type=int, default=48, help="answer length cap (default 48)")
    parser.add_argument(
        "--arrival-gap-ms",
        type=float,
        default=200,
        help="time between two askers' requests (default 200; closer than the server's per-request "
        "work, such as the key check, arrival order is not defined)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    import httpx

    from app.doors.http.api import standalone_app
    from app.identity.users import ADMIN, EMPLOYEE, local_operator
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    results: dict = {
        "files": args.files,
        "askers": args.askers,
        "answer_tokens": args.answer_tokens,
        "arrival_gap_ms": args.arrival_gap_ms,
    }
    with tempfile.TemporaryDirectory(prefix="kura-bench-api-") as tmp:
        work = Path(tmp)
        first, during = work / "roots" / "first", work / "roots" / "during"
        generate_folder(first, args.files)
        generate_folder(during, args.files * 2)
        for path in sorted(during.rglob("*.md"))[: args.files]:  # the second folder: other passages
            path.unlink()
        base = KuraSettings()
        settings = KuraSettings(
            data_dir=work / "data",
            ingest_roots=str(work / "roots"),
            llm_max_answer_tokens=args.answer_tokens,
        )
        # The embedder's ONNX export is reused from the normal data directory when it exists.
        from models.embedder import load_embedder
        from models.registry import resolve_embedder_path

        embedder = load_embedder(
            resolve_embedder_path(base.embedder_path), base.embedder_backend, cache_dir=base.model_cache_dir
        )
        service = KuraService(settings, embedder=embedder)
        server = None
        try:
            service.start_writer()
            service.ingest(local_operator(), first, ["everyone"])
            service.accounts.add("bencher", "Bench-marking-2026x", [EMPLOYEE, ADMIN], [])
            user = service.accounts.get("bencher")
            _, read_key = service.create_api_key(local_operator(), "read", "bench", owner="bencher")
            _, admin_key = service.create_api_key(local_operator(), "admin", "bench", owner="bencher")
            server, thread, url = _serve(standalone_app(settings, lambda: service))
            http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}, timeout=600)

            # 1. search
            for q in QUERIES:  # warm-up both paths
                service.search(user, q)
                http.post("/api/v1/search", json={"query": q})
            local, remote = [], []
            for i in range(args.searches):
                q = QUERIES[i % len(QUERIES)]
                t0 = time.perf_counter()
                service.search(user, q)
                local.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                r = http.post("/api/v1/search", json={"query": q})
                remote.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
            results["search_in_process_ms"] = _stats(local)
            results["search_api_ms"] = _stats(remote)
            results["search_api_overhead_p50_ms"] = round(
                results["search_api_ms"]["p50"] - results["search_in_process_ms"]["p50"], 2
            )

            # 2. time to first token
            question = "Who won the super bowl?"
            _ = service.llm  # load the model outside the timings
            local, remote = [], []

            def in_process() -> None:
                t0 = time.perf_counter()
                answer = service.ask(user, question)
                for _token in answer.tokens():
                    local.append((time.perf_counter() - t0) * 1000)
                    break

            whole: list[float] = []

            def through_api() -> None:
                t0 = time.perf_counter()
                body = {"model": "kura", "stream": True, "messages": [{"role": "user", "content": question}]}
                with http.stream("POST", "/v1/chat/completions", json=body) as response:
                    for line in response.iter_lines():
                        chunk = json.loads(line[6:]) if line.startswith("data: {") else {}
                        if len(remote) == len(whole) and any(
                            c["delta"].get("content") for c in chunk.get("choices", ())
                        ):
                            remote.append((time.perf_counter() - t0) * 1000)
                whole.append((time.perf_counter() - t0) * 1000)

            def idle() -> None:  # an answer left after its first token stops after the next one
                deadline = time.monotonic() + 120
                while service.llm_queue.busy and time.monotonic() < deadline:
                    time.sleep(0.01)

            in_process(), idle(), through_api()  # warm-up: the model's first prompt is slow on either side
            local.clear(), remote.clear(), whole.clear()
            for i in range(args.asks):  # alternating who goes first: the second reuses the prompt cache
                for side in (in_process, through_api) if i % 2 == 0 else (through_api, in_process):
                    idle()
                    side()
            results["first_token_all_ms"] = {"in_process": local, "openai_api_evidence": remote}
            results["first_token_in_process_ms"] = _stats(local)
            results["first_token_openai_api_ms"] = _stats(remote)  # the evidence: first content
            results["whole_answer_openai_api_ms"] = _stats(whole)

            # 3. concurrent askers while an ingest job runs
            admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60)
            job = admin.post("/api/v1/ingest/folder", json={"folder": str(during), "groups": ["everyone"]}).json()
            outcomes: list[tuple[int, float, float, int]] = []  # (arrival, start, end, status)
            evidence_ms: list[float] = []
            lock = threading.Lock()

            def asker(n: int) -> None:
                with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}, timeout=900) as c:
                    t0, status = time.perf_counter(), 0
                    body = {"question": question, "stream": True}  # one that reaches the LLM
                    with c.stream("POST", "/api/v1/ask", json=body) as r:
                        status = r.status_code
                        for line in r.iter_lines():
                            if line == "event: evidence":
                                with lock:
                                    evidence_ms.append((time.perf_counter() - t0) * 1000)
                    with lock:
                        outcomes.append((n, t0, time.perf_counter(), status))

            threads = []
            started = time.perf_counter()
            for n in range(args.askers):
                threads.append(threading.Thread(target=asker, args=(n,)))
                threads[-1].start()
                time.sleep(args.arrival_gap_ms / 1000)  # a distinct arrival order
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
            state = admin.get(f"/api/v1/jobs/{job['job_id']}").json()["state"]
            latencies = [(end - t0) * 1000 for _, t0, end, status in outcomes if status == 200]
            finished_order = [n for n, *_ in sorted(outcomes, key=lambda o: o[2])]
            results["concurrent_askers"] = {
                "evidence_ms": _stats(evidence_ms) if evidence_ms else None,
                "answers_per_s": round(len(latencies) / wall, 3),
                "latency_ms": _stats(latencies) if latencies else None,
                "errors": sum(1 for *_, status in outcomes if status != 200),
                "statuses": sorted({status for *_, status in outcomes}),
                "served_in_arrival_order": finished_order == sorted(finished_order),
                "finish_order": finished_order,
                "ingest_job_state_after": state,
                "wall_s": round(wall, 2),
            }
            http.close()
            admin.close()
        finally:
            if server is not None:
                server.should_exit = True
            service.close()

    s, a = results["search_in_process_ms"], results["search_api_ms"]
    print(f"search    in-process p50 {s['p50']} ms p95 {s['p95']} ms | API p50 {a['p50']} ms p95 {a['p95']} ms")
    print(f"   API overhead p50: {results['search_api_overhead_p50_ms']} ms (goal: at most 5 ms)")
    f, o = results["first_token_in_process_ms"], results["first_token_openai_api_ms"]
    w = results["whole_answer_openai_api_ms"]
    print(f"first tok in-process p50 {f['p50']} ms p95 {f['p95']} ms | /v1/chat/completions: evidence p50 "
          f"{o['p50']} ms, whole answer p50 {w['p50']} ms")
    c = results["concurrent_askers"]
    lat = c["latency_ms"] or {}
    ev = c["evidence_ms"] or {}
    print(f"{args.askers} askers during ingest: evidence p50 {ev.get('p50')} ms, p95 {ev.get('p95')} ms "
          "(goal: 1 s p95)")
    print(
        f"   whole answers: {c['answers_per_s']} answers/s, p50 {lat.get('p50')} ms, "
        f"p95 {lat.get('p95')} ms, errors {c['errors']}, arrival order kept: {c['served_in_arrival_order']}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
