"""`kura bench audit`: the auditor's workbench at a year of use (issue 27).

1. Writes a realistic synthetic audit log into a fresh data directory: a year of office hours
   of N people in departments asking (query + answer entries with the documents and their
   groups), searching, previewing, giving feedback, being refused; the ingest entries that gave
   the documents their groups first. Every entry is HMAC-chained with the log's own key and the
   head is signed, so `kura audit verify` accepts it (checked on the small log).
2. Builds the analytics index from scratch (audit-index.sqlite3): time, size, peak memory.
3. Times, through KuraService as the doors call it (each view audited, the index refreshed and
   the alert rules checked first): the overview of the whole year and of 30-day windows, "who
   saw" one busy document, one random document, one group, one person (p50 / p95).
4. The page's memory: a fresh process renders the workbench's overview and the audit log page
   (Streamlit AppTest, the real pages) on the small log and on the big one; its peak RSS should
   not grow with the log. For contrast, the peak RSS of holding every entry, as the old page did.

    kura bench audit --entries 1000000
    kura bench audit --entries 100000 --small 10000 --json audit.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from base import offline  # noqa: F401
from benchmarks.ingest import percentile

QUESTIONS = (
    "How many days of annual leave do I get?", "parental leave weeks", "expense report deadline",
    "travel policy hotel limit", "who approves overtime", "security badge lost", "VPN setup",
    "年次有給休暇は何日ですか", "育児休業の期間", "経費精算の締め切り", "pension contribution rate",
    "quarterly revenue forecast", "code of conduct gifts", "remote work equipment",
)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's
    RSS at fork (measured: it reported the parent's 387 MB), VmHWM belongs to the process's own image."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class _World:
    """People in departments, documents in groups and folders, and what each may read."""

    def __init__(self, rng: random.Random, people: int, documents: int) -> None:
        self.departments = [f"dept{i:02d}" for i in range(20)]
        self.groups = ["hr", "finance", "legal", *self.departments]
        self.people = [(f"user{i:04d}", self.departments[i % len(self.departments)]) for i in range(people)]
        self.documents: list[tuple[str, str, str]] = []  # doc id, groups, folder
        for i in range(documents):
            doc = hashlib.sha256(f"doc{i}".encode()).hexdigest()
            if rng.random() < 0.25:
                groups = "everyone"
            else:
                groups = ",".join(sorted(set(rng.sample(self.groups, rng.choice((1, 1, 2))))))
            self.documents.append((doc, groups, f"/srv/docs/{groups.split(',')[0]}"))
        self.readable: dict[str, list[int]] = {}
        self.held: dict[str, list[str]] = {}  # a department's read groups (dept00 is HR, dept01 finance)
        for dept in self.departments:
            extra = {"dept00": ["hr"], "dept01": ["finance"], "dept02": ["legal"]}.get(dept, [])
            self.held[dept] = sorted({"everyone", dept, *extra})
            held = set(self.held[dept])
            self.readable[dept] = [i for i, (_, g, _) in enumerate(self.documents) if held & set(g.split(","))]
        # A few documents everyone keeps reading: the "busiest documents" are not uniform.
        self.popular = {dept: docs[:15] for dept, docs in self.readable.items()}


def _event(rng: random.Random, world: _World, when: datetime) -> list[dict[str, Any]]:
    """One user action as the service audits it (one or two entries)."""
    user, dept = rng.choice(world.people)
    base = {"user": user, "role": "employee"}
    held = world.held[dept]
    roll = rng.random()
    if roll < 0.06:
        return [{**base, "action": "login", "role": "employee", "source": "local"}]
    if roll < 0.08:
        return [{**base, "action": "denied", "role": "employee", "attempted": "list all documents",
                 "reader_groups": held}]
    if roll < 0.09:
        return [{**base, "action": "query", "query": rng.choice(QUESTIONS), "outcome": "refused",
                 "reason": "busy, number 9 in line"}]
    pool = world.popular[dept] if rng.random() < 0.5 else world.readable[dept]
    docs = sorted({world.documents[i][0] for i in rng.sample(pool, min(len(pool), rng.randint(1, 5)))})
    groups = {d: g for d, g, _ in world.documents}
    shown = {"documents": docs, "chunks": [f"{d[:16]}-{k}" for d in docs for k in range(2)],
             "reader_groups": held, "doc_groups": [groups[d] for d in docs]}
    question = rng.choice(QUESTIONS)
    if roll < 0.40:
        return [{**base, "action": "search", "query": question, **shown}]
    if roll < 0.47:
        one = docs[:1]
        return [{**base, "action": "passage_view", "chunks": [f"{one[0][:16]}-0"], "documents": one,
                 "reader_groups": held, "doc_groups": [groups[one[0]]]}]
    if roll < 0.50:
        return [{**base, "action": "feedback", "query": question, "helpful": rng.random() < 0.8}]
    if rng.random() < 0.08:  # found nothing: no passage cleared the floor
        return [{**base, "action": "query", "query": question, "standalone": question, "chunks": [], "documents": [],
                 "reader_groups": held},
                {**base, "action": "answer", "query": question, "answer": "No relevant documents.", "chunks": [],
                 "documents": [], "cited": [], "supported": False}]
    answer = ("According to the policy [1], the answer is set out in section 3. " * rng.randint(2, 6)).strip()
    return [{**base, "action": "query", "query": question, "standalone": question, **shown},
            {**base, "action": "answer", "query": question, "answer": answer, "chunks": shown["chunks"],
             "documents": docs, "cited": [f"{d[:8]}.pdf p.{rng.randint(1, 40)}" for d in docs[:2]],
             "supported": rng.random() < 0.85}]


def write_log(data: Path, entries: int, people: int, documents: int, days: int, seed: int = 27) -> dict[str, Any]:
    """A chained audit log of `entries` entries over `days` days, written as AuditLog would."""
    from app.audit.log import AuditLog

    rng = random.Random(seed)
    world = _World(rng, people, documents)
    data.mkdir(parents=True, exist_ok=True)
    log = AuditLog(data / "audit.jsonl")
    log.append(user="boss", role="admin", action="login", source="local")  # makes the key, the first entry
    seq, prev = 1, json.loads(log.path.read_text(encoding="utf-8"))["hash"]
    start = datetime(2025, 12, 1, tzinfo=UTC)
    step = timedelta(days=days) * 0.55 / max(1, entries)  # ~0.55 entries a step (nights, weekends quiet): a year
    now, written = start, 1
    started = time.monotonic()
    with log.path.open("a", encoding="utf-8") as fh:
        def put(body: dict[str, Any]) -> None:
            nonlocal seq, prev, written
            seq += 1
            stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
            entry = {"seq": seq, "time": stamp, **body, "prev": prev}
            entry["hash"] = prev = log._chain_hash(prev, entry)  # the log's own chaining (HMAC with its key)
            fh.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
            written += 1

        by_groups: dict[str, list[str]] = {}
        for doc, groups, folder in world.documents:
            by_groups.setdefault(f"{folder}|{groups}", []).append(doc)
        for key, docs in by_groups.items():
            folder, groups = key.split("|")
            put({"user": "boss", "role": "admin", "action": "ingest", "outcome": "done", "folder": folder,
                 "groups": groups.split(","), "ingested": len(docs), "documents": sorted(docs)})
        while written < entries:
            now += step
            # Office hours on weekdays: at night and at weekends, almost every moment passes quietly.
            if (now.weekday() >= 5 or not 7 <= now.hour < 20) and rng.random() < 0.995:
                continue
            for body in _event(rng, world, now):
                put(body)
    log._write_json_atomic(log.head_path, log._sign({"seq": seq, "hash": prev}))  # as append() leaves it
    return {"entries": written, "seconds": round(time.monotonic() - started, 1),
            "bytes": log.path.stat().st_size, "first_doc": world.documents[world.popular["dept00"][0]][0],
            "random_doc": world.documents[rng.randrange(len(world.documents))][0]}


def _timed(call: Any, rounds: int) -> dict[str, float]:
    times = []
    for i in range(rounds):
        t0 = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 0.95), 1), "n": rounds}


def measure(data: Path, made: dict[str, Any], rounds: int) -> dict[str, Any]:
    from app.audit.index import INDEX_FILE
    from app.identity.users import AUDITOR, User
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    settings = KuraSettings(data_dir=data, audit_alert_interval_s=0)
    service = KuraService(settings)
    checker = User("checker", frozenset({AUDITOR}))
    out: dict[str, Any] = {"load_before": _load()}
    try:
        t0 = time.monotonic()
        built = service.audit_index.refresh()
        out["index_build_s"] = round(time.monotonic() - t0, 1)
        out["index_entries"] = built.indexed
        out["index_bytes"] = (data / INDEX_FILE).stat().st_size
        out["build_peak_rss_mb"] = _rss_mb()
        t0 = time.monotonic()
        out["first_alert_check_alerts"] = len(service.check_alerts())
        out["first_alert_check_s"] = round(time.monotonic() - t0, 1)
        days = sorted({e for (e,) in service.audit_index.db.execute("SELECT DISTINCT day FROM entries")})
        rng = random.Random(7)

        def window(_: int) -> None:
            first = rng.randrange(max(1, len(days) - 30))
            service.audit_overview(checker, days[first], days[min(len(days) - 1, first + 29)])

        out["overview_year"] = _timed(lambda _: service.audit_overview(checker), rounds)
        out["overview_30_days"] = _timed(window, rounds)
        out["who_saw_busy_document"] = _timed(lambda _: service.who_saw(checker, document=made["first_doc"]), rounds)
        out["who_saw_random_document"] = _timed(lambda _: service.who_saw(checker, document=made["random_doc"]),
                                                rounds)
        out["who_saw_group_hr"] = _timed(lambda _: service.who_saw(checker, group="hr"), rounds)
        out["who_saw_person"] = _timed(lambda i: service.who_saw(checker, person=f"user{i:04d}"), rounds)
        seen = service.who_saw(checker, document=made["first_doc"])
        out["busy_document_showings"] = seen.total
        out["log_page"] = _timed(lambda _: service.browse_audit(checker), max(3, rounds // 4))
        out["log_page_text_filter"] = _timed(lambda _: service.browse_audit(checker, text="leave"), max(3, rounds // 4))
        with service.audit_index.lock:
            out["actions"] = dict(service.audit_index.db.execute(
                "SELECT action, count(*) FROM entries GROUP BY action ORDER BY 2 DESC"))
            out["days"] = service.audit_index.db.execute("SELECT min(day), max(day) FROM entries").fetchone()
        out["report_hr_month"] = _timed(lambda _: service.audit_report(checker, "hr", days[len(days) // 2][:7]),
                                        max(3, rounds // 4))
    finally:
        service.close()
    out["load_after"] = _load()
    return out


def render_rss(data: Path) -> dict[str, Any]:
    """Peak RSS of a fresh process that renders the overview and the log page (AppTest)."""
    done = subprocess.run([sys.executable, "-m", "benchmarks", "audit", "--render", str(data)],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _render(data: Path) -> None:
    """(child) Render the auditor's pages on this data directory and print the peak RSS."""
    from streamlit.testing.v1 import AppTest

    from app.doors.http import runtime
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    os.environ["KURA_DATA_DIR"] = str(data)
    service = KuraService(KuraSettings(data_dir=data, audit_alert_interval_s=0))
    if not any(u.name == "checker" for u in service.accounts.list()):
        service.accounts.add("checker", "Granite-lantern-31", ["auditor"])
    service.audit_index.refresh()
    baseline = _rss_mb()
    runtime.install(service)
    views = Path(__file__).resolve().parent.parent / "app" / "doors" / "ui" / "views"
    t0 = time.monotonic()
    for page in ("workbench.py", "audit.py"):
        at = AppTest.from_file(str(views / page), default_timeout=600)
        at.session_state["kura_session_token"] = service.accounts.open_session(service.accounts.get("checker"))
        at.run()
        if at.exception:
            raise RuntimeError(str(at.exception))
    seconds = time.monotonic() - t0
    runtime.uninstall()
    service.close()
    print(json.dumps({"peak_rss_mb": _rss_mb(), "rss_before_pages_mb": baseline, "render_s": round(seconds, 1)}))


def _hold_all(data: Path) -> None:
    """(child) What the old page did: every entry in memory. Prints the peak RSS."""
    from app.audit.log import AuditLog

    held = list(AuditLog(data / "audit.jsonl").entries())
    print(json.dumps({"entries": len(held), "peak_rss_mb": _rss_mb()}))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kura bench audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries in the big log (default 1,000,000)")
    parser.add_argument("--small", type=int, default=100_000, help="entries in the small log (page memory, verify)")
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rounds", type=int, default=20, help="timed calls per view")
    parser.add_argument("--keep", type=Path, help="write the data directories here and keep them")
    parser.add_argument("--no-old", action="store_true", help="skip measuring the old page's hold-everything RSS")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--render", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--hold-all", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.render:
        _render(args.render)
        return 0
    if args.hold_all:
        _hold_all(args.hold_all)
        return 0
    with tempfile.TemporaryDirectory(prefix="kura-bench-audit-") as tmp:
        root = args.keep or Path(tmp)
        results: dict[str, Any] = {"entries": args.entries, "small": args.small, "people": args.people,
                                   "documents": args.documents, "days": args.days, "cpus": os.cpu_count()}
        for name, count in (("small", args.small), ("big", args.entries)):
            data = root / f"{name}-data"
            made = write_log(data, count, args.people, args.documents, args.days)
            print(f"[{name}] wrote {made['entries']:,} chained entries ({made['bytes'] / 1e6:.0f} MB) in "
                  f"{made['seconds']} s  [load {_load()}]", flush=True)
            if name == "small":
                from app.audit.log import AuditLog

                t0 = time.monotonic()
                problems = AuditLog(data / "audit.jsonl").verify()
                made["verify_s"] = round(time.monotonic() - t0, 1)
                made["verify_problems"] = len(problems)
                print(f"[{name}] kura's verify: {len(problems)} problems in {made['verify_s']} s", flush=True)
            found = measure(data, made, args.rounds)
            found["log"] = made
            print(f"[{name}] index built in {found['index_build_s']} s, {found['index_bytes'] / 1e6:.0f} MB, "
                  f"peak RSS {found['build_peak_rss_mb']} MB; first alert check {found['first_alert_check_s']} s "
                  f"({found['first_alert_check_alerts']} alerts)  [load {found['load_before']}]", flush=True)
            for view in ("overview_year", "overview_30_days", "who_saw_busy_document", "who_saw_random_document",
                         "who_saw_group_hr", "who_saw_person", "report_hr_month", "log_page", "log_page_text_filter"):
                r = found[view]
                print(f"[{name}] {view:24s} p50 {r['p50_ms']:8.1f} ms  p95 {r['p95_ms']:8.1f} ms  (n={r['n']})",
                      flush=True)
            found["page"] = render_rss(data)
            print(f"[{name}] auditor pages rendered: peak RSS {found['page']['peak_rss_mb']} MB "
                  f"(service alone {found['page']['rss_before_pages_mb']} MB), {found['page']['render_s']} s  "
                  f"[load {_load()}]", flush=True)
            if not args.no_old:
                old = subprocess.run([sys.executable, "-m", "benchmarks", "audit", "--hold-all", str(data)],
                                     capture_output=True, text=True, timeout=3600)
                found["old_page_hold_all"] = json.loads(old.stdout.strip().splitlines()[-1])
                print(f"[{name}] for contrast, holding every entry (the old page): peak RSS "
                      f"{found['old_page_hold_all']['peak_rss_mb']} MB", flush=True)
            results[name] = found
        results["load_end"] = _load()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0
