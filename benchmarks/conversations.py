"""Saved conversations at scale: `kura bench conversations [--conversations N] [--turns T]`.

Builds a fresh data directory with a small real corpus (ingested by the real pipeline), then
saves N conversations of T turns for one person (and `--others` conversations of other people,
so the index holds more than one owner) through the real store (conversations.sqlite3, FTS5 over
Sudachi / English-stem tokens); a quarter of the turns are Japanese. Each turn cites real chunks.
Then times the use cases every door calls, through the service (owner check, citation re-check
with the person's groups inside the Qdrant query, audit entry): list (first page and a deep
page), search (English and Japanese words, common and rare), open one conversation, delete one,
and one export of everything. Prints p50/p95 in milliseconds and the load average.

    kura bench conversations --conversations 10000 --json conversations.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORDS = (
    "leave policy annual salary band engineer cafeteria parking contract invoice travel expense "
    "security badge laptop warranty pension insurance holiday overtime training budget quarterly "
    "report audit compliance supplier shipment warehouse customer refund privacy retention backup"
).split()
JA_NOUNS = "年次有給休暇 就業規則 出張旅費 給与明細 通勤手当 健康診断 情報セキュリティ 育児休業 退職金 経費精算".split()
DOCS = {
    "handbook.md": "# Handbook\n\n"
    + "\n\n".join(f"## {w.title()}\nThe {w} rules apply to every {WORDS[(i * 7) % len(WORDS)]} and "
                  f"{WORDS[(i * 11) % len(WORDS)]} in the company." for i, w in enumerate(WORDS)),
    "kisoku.md": "# 就業規則\n\n" + "\n\n".join(f"## {n}\n{n}の手続きは所属長の承認を得て行います。" for n in JA_NOUNS),
}
QUERIES = {
    "en common word": "policy",
    "en two words": "salary band",
    "en rare word": "warranty refund",
    "ja word": "出張旅費",
    "ja inside a word": "旅費",
    "no match": "zeppelin",
}


def _pcts(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": round(p95 * 1000, 2), "n": len(ordered)}


def _timed(fn: Callable[[], Any], rounds: int) -> dict[str, float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return _pcts(samples)


def _turn(rng: random.Random, citations: list[Any], at: float) -> Any:
    from app.service.conversation_store import SavedCitation, SavedTurn

    if rng.random() < 0.25:
        noun = rng.choice(JA_NOUNS)
        question = f"{noun}の手続きはどうなりますか"
        quote = f"{noun}の手続きは所属長の承認を得て行います。"
    else:
        picked = rng.sample(WORDS, 6)
        question = f"What are the {picked[0]} rules for {picked[1]}?"
        quote = " ".join(["The", *picked, "rules", "apply", "to", *rng.sample(WORDS, 10)]) + "."
    cited = rng.sample(citations, 2)
    saved = tuple(
        SavedCitation(i + 1, (c.chunk_id,), c.doc_id, c.location, c.page, i == 0) for i, c in enumerate(cited)
    )
    return SavedTurn(question, f"Your documents say:\n“{quote}” [1]", "answered", True, "Your documents say:",
                     ((quote, 1),), None, None, saved, "reader", at)


def _build(service: Any, owner: str, others: int, conversations: int, turns: int, seed: int) -> dict[str, Any]:
    from app.identity.users import local_operator

    rng = random.Random(seed)
    citations = service.search(local_operator(), "rules company 手続き", limit=20, as_admin=True)
    store = service.conversation_store
    now = time.time()
    saves: list[float] = []
    people = [(owner, conversations)] + [(f"other{i}", 1) for i in range(others)]
    for name, count in people:
        for n in range(count):
            cid = store.new_id()
            for t in range(turns):
                turn = _turn(rng, citations, now - (count - n) * 600 + t)
                started = time.perf_counter()
                store.add_turn(cid, name, turn)
                saves.append(time.perf_counter() - started)
    return {"save_turn": _pcts(saves), "turns_saved": len(saves)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kura bench conversations")
    parser.add_argument("--conversations", type=int, default=10_000, help="saved conversations of the one person")
    parser.add_argument("--turns", type=int, default=3, help="turns per conversation")
    parser.add_argument("--others", type=int, default=2_000, help="one-turn conversations of other people")
    parser.add_argument("--rounds", type=int, default=40, help="timed calls per measurement")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    from app.identity.users import EMPLOYEE, local_operator
    from app.platform.settings import KuraSettings
    from app.service import KuraService
    from base import offline  # noqa: F401

    summary: dict[str, Any] = {"conversations": args.conversations, "turns": args.turns, "others": args.others,
                               "load_before": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="kura-bench-conv-") as tmp:
        root = Path(tmp)
        (root / "docs").mkdir()
        for name, text in DOCS.items():
            (root / "docs" / name).write_text(text, encoding="utf-8")
        service = KuraService(KuraSettings(data_dir=root / "data", answer_generation=False))
        try:
            assert not service.ingest(local_operator(), root / "docs", ["everyone"]).failures
            service.accounts.add("bench", "Quiet-harbor-2024x", [EMPLOYEE], [])
            user = service.accounts.get("bench")
            started = time.monotonic()
            summary["build"] = _build(service, "bench", args.others, args.conversations, args.turns, args.seed)
            summary["build"]["seconds"] = round(time.monotonic() - started, 1)
            print(f"saved {summary['build']['turns_saved']:,} turns in {summary['build']['seconds']} s "
                  f"(save p50 {summary['build']['save_turn']['p50_ms']} ms)")
            summary["timings"] = _measure(service, user, args.rounds)
        finally:
            service.close()
        summary["db_mb"] = round(sum(p.stat().st_size for p in (root / "data").glob("conversations.sqlite3*")) / 1e6, 1)
    summary["load_after"] = [round(x, 2) for x in os.getloadavg()]
    for name, t in summary["timings"].items():
        print(f"{name:32s} p50 {t['p50_ms']:8.2f} ms   p95 {t['p95_ms']:8.2f} ms   (n={t['n']})")
    print(f"conversations.sqlite3 {summary['db_mb']} MB; load {summary['load_before']} -> {summary['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


def _measure(service: Any, user: Any, rounds: int) -> dict[str, dict[str, float]]:
    ids = [c.id for c in service.list_conversations(user, 1000)]
    timings = {
        "list first 50": _timed(lambda: service.list_conversations(user, 50), rounds),
        "list 50 at offset 5000": _timed(lambda: service.list_conversations(user, 50, 5000), rounds),
    }
    for label, query in QUERIES.items():
        found = len(service.search_conversations(user, query))
        timings[f"search {label} ({found} found)"] = _timed(lambda q=query: service.search_conversations(user, q),
                                                            rounds)
    rng = random.Random(1)
    timings["open one conversation"] = _timed(lambda: service.conversation(user, rng.choice(ids)), rounds)
    doomed = iter(ids[-max(5, rounds // 4):])
    timings["delete one conversation"] = _timed(lambda: service.delete_conversation(user, next(doomed)),
                                                max(5, rounds // 4))
    timings["export everything (json)"] = _timed(lambda: service.export_conversations(user), 1)
    return timings
