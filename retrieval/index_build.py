"""The embedded store's HNSW index, built in another process beside the live shard and swapped in.

qdrant-edge builds Qdrant's index (HNSW graph, int8 copies of the vectors, the sparse inverted
index) only inside `EdgeShard.optimize()`, and that call holds Python's GIL until it returns:
every search of the process waited for it (105 s at 100k chunks). So kura never optimizes
the shard it serves from. A build, started when enough chunks are not indexed yet:

1. copies the live shard's files to `gen-N/` while writes wait (reads go on);
2. runs `python -m retrieval.index_build` on the copy at idle CPU priority, on `IndexPlan.threads` cores,
   while the live shard keeps serving every search and write; each write is also kept in a
   log in memory, and a commit syncs only the live shard's WAL (EdgeStore._persist);
3. opens the built copy, replays the log on it, flushes it, names it in `ACTIVE.json` and swaps
   it in for readers; the old shard is closed and removed.

New chunks are searchable at once throughout (they are written to the live shard), and a
crash at any point leaves the shard `ACTIVE.json` names (or the flat layout) complete: a
build folder is removed on the next open. The builder dies with the process that started it.

Usage:
    store = EdgeStore(path, 384, IndexPlan(min_new_chunks=20_000))   # builds by itself
    store.build_index(); store.index_status()                        # or on request
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ACTIVE_FILE = "ACTIVE.json"
GENERATION_PREFIX = "gen-"
FLAT = "."  # ACTIVE.json's name for a shard kept in the store folder itself (stores before builds)
WAL_FOLDER = "wal"  # qdrant-edge's write-ahead log, inside a shard's folder


@dataclass(frozen=True)
class IndexPlan:
    """How the dense index is built and searched (settings `KURA_INDEX_*`, README "Search at scale").

    `min_new_chunks`: a build starts once this many chunks are outside the index and the
    writer has been quiet for `quiet_s` (or once 4x as many wait, quiet or not); 0 builds only
    on request. Below it an exact scan is as fast as the graph (20k chunks: ~3 ms).
    `quantization`: "int8" keeps an int8 copy of each dense vector in RAM for the graph and
    reads the float originals from disk only to rescore the best `oversampling` x candidates.
    """

    min_new_chunks: int = 20_000
    quiet_s: float = 10.0
    threads: int = 1
    nice: int = 10
    quantization: str = "int8"
    m: int = 16
    ef_construct: int = 100
    search_ef: int = 256
    oversampling: float = 2.0
    # A filter matching fewer vectors than this (KB of float originals: ~100k 384-d vectors) is
    # scanned exactly on the int8 copies, through the payload index: a reader of a few groups.
    # Qdrant's default (10 MB) sent a reader of 3 groups whose union passed it, but no single
    # group did, into a graph with no links among their chunks (recall@10 0.07 at 200k chunks).
    full_scan_kb: int = 150_000
    # A filter matching less than this share of the chunks, but too many to scan, walks the graph
    # with ACORN (neighbours' neighbours too), so the chunks it lets through stay connected.
    acorn_below: float = 0.4
    acl_index: bool = True  # the payload index on the groups field (False only to compare)
    max_pending_chunks: int = 200_000  # a build whose write log grows past this starts over later

    def __post_init__(self) -> None:
        if self.quantization not in ("int8", "none"):
            raise ValueError(f"index quantization must be 'int8' or 'none', not {self.quantization!r}")
        if self.min_new_chunks < 0 or self.threads < 1 or self.m < 4 or self.search_ef < 1 or self.oversampling < 1:
            raise ValueError(f"index plan out of range: {self}")


def edge_config(qe: Any, dense_size: int, plan: IndexPlan, sparse: dict[str, Any]) -> Any:
    """The shard's configuration: float originals on disk, int8 copies in RAM, the HNSW
    parameters the builder uses (on `plan.threads` cores), and no automatic deferral of writes."""
    quantization = None
    if plan.quantization == "int8":
        quantization = qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Cached)
    dense = qe.EdgeVectorParams(
        size=dense_size,
        distance=qe.Distance.Cosine,
        memory=qe.Memory.Cold if quantization is not None else None,
        quantization_config=quantization,
    )
    return qe.EdgeConfig(
        vectors={"dense": dense},
        sparse_vectors=sparse,
        hnsw_config=qe.HnswIndexConfig(
            m=plan.m,
            ef_construct=plan.ef_construct,
            full_scan_threshold=plan.full_scan_kb,
            max_indexing_threads=plan.threads,
        ),
        # The builder indexes every segment it finds (kura decides when to build); one big
        # segment plus a few small ones from later builds, merged only when many pile up.
        optimizers=qe.EdgeOptimizersConfig(
            indexing_threshold=1,
            default_segment_number=8,
            max_segment_size=64 * 2**20,
            prevent_unoptimized=False,
        ),
    )


def search_params(qe: Any, plan: IndexPlan, exact: bool = False) -> Any:
    """Dense search parameters: the graph's ef, int8 candidates rescored on the originals, or
    (`exact`) a scan of every float original the filter lets through: the reference for recall."""
    if exact:
        return qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True))
    rescore = qe.QuantizationSearchParams(rescore=True, oversampling=plan.oversampling)
    return qe.SearchParams(
        hnsw_ef=plan.search_ef,
        quantization=rescore if plan.quantization == "int8" else None,
        acorn=qe.AcornSearchParams(enable=True, max_selectivity=plan.acorn_below),
    )


# --- the store folder: which shard is live -------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """What `ACTIVE.json` says: the live shard's folder name and how many chunks its index held."""

    shard: str = FLAT
    indexed_points: int = 0
    built_at: float = 0.0
    build_s: float = 0.0


def open_layout(store_dir: Path) -> Layout:
    """The live shard of `store_dir`, after removing what a crash or an old build left beside it."""
    store_dir.mkdir(parents=True, exist_ok=True)
    active = store_dir / ACTIVE_FILE
    layout = Layout(**json.loads(active.read_text())) if active.is_file() else Layout()
    for child in store_dir.iterdir():
        if child.name == ACTIVE_FILE or child.name == layout.shard:
            continue
        generation = child.name.startswith(GENERATION_PREFIX)
        if generation or layout.shard != FLAT:  # a build, an old generation, or the flat files it replaced
            _remove(child)
    (store_dir / (ACTIVE_FILE + ".tmp")).unlink(missing_ok=True)
    return layout


def shard_path(store_dir: Path, layout: Layout) -> Path:
    return store_dir if layout.shard == FLAT else store_dir / layout.shard


def write_layout(store_dir: Path, layout: Layout) -> None:
    """Name the live shard, durably: a crash leaves either the old name or the new one."""
    tmp = store_dir / (ACTIVE_FILE + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(asdict(layout), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, store_dir / ACTIVE_FILE)
    _sync(store_dir)


def remove_shard(store_dir: Path, layout: Layout) -> None:
    """Delete a shard that is no longer live (the flat layout: everything but the generations)."""
    if layout.shard != FLAT:
        _remove(store_dir / layout.shard)
        return
    for child in store_dir.iterdir():
        if child.name != ACTIVE_FILE and not child.name.startswith(GENERATION_PREFIX):
            _remove(child)


def data_extents(fd: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each stretch of a file that is not a hole."""
    size, offset = os.fstat(fd).st_size, 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:  # ENXIO: nothing but a hole from here on
            return
        offset = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, offset


def copy_extents(src: str, dst: str) -> str:
    """Copy a file's data extents only, in the kernel: the holes of qdrant-edge's preallocated
    files (WAL, vector chunks: mostly empty) stay holes, and no byte passes through Python."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.truncate(os.fstat(fin.fileno()).st_size)
        for start, end in data_extents(fin.fileno()):
            while start < end:
                copied = os.copy_file_range(fin.fileno(), fout.fileno(), end - start, start, start)
                if copied <= 0:
                    raise OSError(f"copy_file_range copied nothing at {start} of {src}")
                start += copied
    shutil.copystat(src, dst)
    return dst


def copy_shard(src: Path, dest: Path, copy_file: Callable[[str, str], object] = copy_extents) -> None:
    """The shard's files (not the generations beside a flat shard) to `dest`."""

    def generations(folder: str, names: list[str]) -> list[str]:
        if Path(folder) != src:
            return []
        return [n for n in names if n.startswith(GENERATION_PREFIX) or n.startswith(ACTIVE_FILE)]

    shutil.copytree(src, dest, ignore=generations, copy_function=copy_file)


def warm_page_cache(folder: Path) -> None:
    """Read every file of a shard once, so that opening it finds them in the page cache.
    Opening a shard reads the parts it keeps in memory (int8 vectors, graph, indexes) inside
    one native call that holds the GIL: from a cold disk that stalled every search of the
    process for 20 s at 200k chunks. Reading them here releases the GIL between blocks."""
    block = bytearray(1 << 20)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb", buffering=0) as fh:
                for start, end in data_extents(fh.fileno()):
                    fh.seek(start)
                    while start < end and (n := fh.readinto(block)):
                        start += n


def sync_wal(shard: Path) -> None:
    """Write the shard's write-ahead log to disk (its files and its folder), from Python, so the
    GIL is released while the disk works. What a commit needs while a build runs (EdgeStore._persist)."""
    wal = shard / WAL_FOLDER
    for path in wal.iterdir():
        try:
            _sync(path, data_only=True)
        except FileNotFoundError:  # a spare log file the WAL's own thread replaced meanwhile
            continue
    _sync(wal)


def _sync(path: Path, data_only: bool = False) -> None:
    """fsync (or fdatasync) a file or a folder by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        (os.fdatasync if data_only else os.fsync)(fd)
    finally:
        os.close(fd)


def _check_room(shard: Path, store_dir: Path) -> None:
    """A build needs room for a copy of the shard and the segments the builder writes beside it."""
    used = 0
    for folder, dirs, names in os.walk(shard):
        if folder == str(shard):  # a flat shard has the generations beside its own files
            dirs[:] = [d for d in dirs if not d.startswith(GENERATION_PREFIX)]
        used += sum(os.lstat(os.path.join(folder, name)).st_blocks * 512 for name in names)
    free = shutil.disk_usage(store_dir).free
    if free < 2.2 * used:
        raise RuntimeError(
            f"not enough free disk for an index build: {free / 2**30:.1f} GiB free beside a "
            f"{used / 2**30:.1f} GiB store; it needs about twice the store's size"
        )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# --- the build -----------------------------------------------------------------------------------
@dataclass
class IndexStatus:
    """Where the index stands: `state` idle | requested | starting | copying | building | swapping;
    the chunks in and outside the index; the last build's phases in seconds and its error."""

    state: str = "idle"
    indexed_points: int = 0
    points: int = 0
    builds: int = 0
    last_copy_s: float = 0.0
    last_build_s: float = 0.0
    last_swap_s: float = 0.0
    builder_peak_anon_mb: float = 0.0  # the builder's own memory, sampled each second
    last_swap_steps: dict[str, float] = field(default_factory=dict)  # seconds per step of the swap
    builder_pid: int = 0
    error: str | None = None
    pending_ops: int = field(default=0)

    @property
    def unindexed(self) -> int:
        return max(0, self.points - self.indexed_points)


class BuildAbandoned(RuntimeError):
    """The build was stopped: the store closed, or the write log outgrew the plan."""


class IndexBuilds:
    """Runs the builds of one EdgeStore in a background thread (module doc for the steps).

    The store calls `record` for every update it applies while holding its write lock, and
    lends: `writing` (its write lock), `live()` (the shard and its folder), `points()` (how many
    chunks it holds), `open_shard(folder)` and `swap(shard)`, which makes readers use a shard.
    """

    def __init__(
        self,
        store_dir: Path,
        plan: IndexPlan,
        layout: Layout,
        writing: threading.RLock,
        live: Callable[[], tuple[Any, Path]],
        points: Callable[[], int],
        open_shard: Callable[[Path], Any],
        swap: Callable[[Any], None],
    ) -> None:
        self._dir = store_dir
        self._plan = plan
        self.layout = layout
        self._writing = writing
        self._live = live
        self._points = points
        self._open_shard = open_shard
        self._swap = swap
        self._log: list[tuple[Any, int]] | None = None  # (update, chunks) while a builder runs
        self._pending = 0
        self._status = IndexStatus(indexed_points=layout.indexed_points)
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._requested = False
        self._closing = False
        self._last_write = time.monotonic()
        self._retry_after = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    # --- called by the store --------------------------------------------------------------------
    def record(self, update: Any, chunks: int = 0) -> None:
        """An update the live shard just applied (the caller holds the write lock)."""
        self._last_write = time.monotonic()
        if self._log is None:
            return
        self._log.append((update, chunks))
        self._pending += chunks
        if self._pending > self._plan.max_pending_chunks:
            self._log = None  # the builder's copy is too far behind: start over later
            self._status.error = f"more than {self._plan.max_pending_chunks} chunks written during the build"
            proc = self._proc
            if proc is not None and proc.poll() is None:
                proc.kill()

    def logging(self) -> bool:
        """A build's builder is running: the writes are also kept in its log. Stable for a
        caller holding the write lock, which a build holds when it starts and ends the log; a
        build that fails drops its log without it, which only makes the next write flush."""
        return self._log is not None

    def written(self) -> None:
        """Wake the watcher after a write: enough new chunks may be waiting now."""
        if self._plan.min_new_chunks > 0:
            self._ensure_thread()
            self._wake.set()

    def request(self) -> None:
        """Build now (in the background), whatever the thresholds say."""
        self._requested = True
        self._ensure_thread()
        self._wake.set()

    def wait(self, timeout: float | None = None) -> IndexStatus:
        """Wait until no build is running or requested; the status then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._requested or self._status.state != "idle":
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._idle.wait(left if left is not None else 1.0)
        return self.status()

    def status(self, points: int | None = None) -> IndexStatus:
        if points is not None:
            self._status.points = points
        self._status.pending_ops = len(self._log or [])
        status = IndexStatus(**asdict(self._status))
        if self._requested and status.state == "idle":
            status.state = "requested"
        return status

    def close(self) -> None:
        """Stop a running build (its builder is killed, its folder removed on the next open)."""
        self._closing = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)

    # --- the watcher thread ----------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None and not self._closing:
            self._thread = threading.Thread(target=self._watch, name="kura-index", daemon=True)
            self._thread.start()

    def _due(self, points: int) -> bool:
        if self._requested:
            return True
        plan = self._plan
        new = points - self.layout.indexed_points
        if plan.min_new_chunks == 0 or new < plan.min_new_chunks or time.monotonic() < self._retry_after:
            return False
        quiet = time.monotonic() - self._last_write >= plan.quiet_s
        return quiet or new >= 4 * plan.min_new_chunks

    def _watch(self) -> None:
        while not self._closing:
            self._wake.wait(timeout=max(1.0, self._plan.quiet_s / 2))
            self._wake.clear()
            if self._closing:
                break
            try:
                self._status.points = self._points()
            except Exception as exc:  # the store is closing
                log.debug("index watcher: %s", exc)
                continue
            if not self._due(self._status.points):
                continue
            with self._idle:
                self._status.state, self._requested = "starting", False
            try:
                self._build()
                self._status.error = None
                self._retry_after = 0.0
            except Exception as exc:
                if not self._closing:
                    log.warning("index build failed, searches stay on the live shard: %s", exc)
                    self._status.error = str(exc)
                    self._retry_after = time.monotonic() + 600  # do not copy the store again at once
            finally:
                self._log, self._pending, self._proc = None, 0, None
                with self._idle:
                    self._status.state = "idle"
                    self._idle.notify_all()
        with self._idle:
            self._requested = False
            self._idle.notify_all()

    def _build(self) -> None:
        numbers = [int(p.name[len(GENERATION_PREFIX) :]) for p in self._dir.glob(GENERATION_PREFIX + "*")]
        # A build is written under its final name: qdrant-edge keeps the path it was opened
        # with, so the folder must not move afterwards. Until ACTIVE.json names it, the next
        # open removes it.
        building = self._dir / f"{GENERATION_PREFIX}{1 + max(numbers, default=0)}"
        status, started = self._status, time.monotonic()
        fresh = None
        named = False  # once ACTIVE.json names the build, it is the store: never removed here
        try:
            status.state = "copying"
            _check_room(self._live()[1], self._dir)
            with self._writing:  # writes wait for the copy; searches go on
                # No flush first: it holds the GIL (9 s after a million unflushed chunks). The
                # files as they stand plus the WAL are what a kill -9 leaves, which qdrant-edge
                # recovers from: the builder replays the WAL when it opens the copy.
                _, path = self._live()
                copy_shard(path, building, self._copy_unless_closing)
                self._log, self._pending = [], 0
            status.last_copy_s = round(time.monotonic() - started, 2)
            status.state, built = "building", time.monotonic()
            self._run_builder(building)
            status.last_build_s = round(time.monotonic() - built, 1)
            status.state, swapped = "swapping", time.monotonic()
            steps = status.last_swap_steps = {}
            lap = _laps(steps)
            warm_page_cache(building)
            lap("warm")
            fresh = self._open_shard(building)  # the GIL is held while it loads; writes go on into the log
            lap("open")
            # The writes logged so far are replayed while writes go on; only the ones that come
            # meanwhile are replayed with writes held.
            replayed = self._replay(fresh, 0)
            lap("replay")
            with self._writing:
                self._replay(fresh, replayed)
                fresh.flush()
                lap("flush")
                points = int(fresh.info().points_count)
                layout = Layout(building.name, points, time.time(), status.last_build_s)
                write_layout(self._dir, layout)
                named = True
                old, self.layout, self._log = self.layout, layout, None
                self._swap(fresh)
                lap("swap")
        except BaseException:
            if not named:
                if fresh is not None:
                    fresh.close()
                _remove(building)
            raise
        remove_shard(self._dir, old)
        lap("remove")
        status.last_swap_s = round(time.monotonic() - swapped, 2)
        status.indexed_points = points
        status.builds += 1
        log.info(
            "index built: %d chunks, copy %.1f s, build %.0f s, swap %.1f s (%s; total %.0f s)",
            points,
            status.last_copy_s,
            status.last_build_s,
            status.last_swap_s,
            ", ".join(f"{step} {seconds} s" for step, seconds in steps.items()),
            time.monotonic() - started,
        )

    def _replay(self, fresh: Any, start: int) -> int:
        """Apply the build's logged writes from `start` on to the built shard; how many are applied."""
        pending = self._log
        if pending is None or self._closing:
            raise BuildAbandoned(self._status.error or "the store is closing")
        end = len(pending)  # writers append meanwhile (list.append is atomic); the rest comes later
        for update, _ in pending[start:end]:
            fresh.update(update)
        return end

    def _copy_unless_closing(self, src: str, dst: str) -> str:
        if self._closing:
            raise BuildAbandoned("the store is closing")
        return copy_extents(src, dst)

    def _run_builder(self, folder: Path) -> None:
        root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        cmd = [sys.executable, "-m", "retrieval.index_build", str(folder), str(os.getpid()), str(self._plan.nice)]
        with tempfile.TemporaryFile() as err:
            self._proc = proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stderr=err)
            self._status.builder_pid = proc.pid
            if self._closing:
                proc.kill()
            peak = 0.0
            try:
                while proc.poll() is None:
                    peak = max(peak, _anonymous_mb(proc.pid))
                    try:
                        proc.wait(timeout=1.0)
                    except subprocess.TimeoutExpired:
                        pass
            finally:
                self._status.builder_pid = 0
            self._status.builder_peak_anon_mb = round(peak)
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-1:] or [""]
        if proc.returncode != 0:
            reason = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
            raise RuntimeError(f"index builder stopped ({reason}) {tail[0]}".strip())


def _laps(steps: dict[str, float]) -> Callable[[str], None]:
    """A stopwatch: each call records the seconds since the previous one under its name."""
    last = [time.monotonic()]

    def lap(name: str) -> None:
        now = time.monotonic()
        steps[name], last[0] = round(now - last[0], 2), now

    return lap


def _anonymous_mb(pid: int) -> float:
    """A process's resident anonymous memory (its own, not the file pages it maps), Linux."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# --- the builder process -----------------------------------------------------------------------
def _die_with(parent: int) -> None:
    """Exit when the process that started the build dies: optimize() holds the GIL, so no
    thread could notice; the kernel sends SIGKILL instead (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def _idle_priority() -> None:
    """Run only on CPU time nobody else wants (Linux SCHED_IDLE; its threads inherit it), so a
    search never waits for the builder on a machine with few cores. A busy machine only makes
    the build take longer."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or refused: the nice value still applies
        pass


def build(folder: Path) -> bool:
    """Build every index of the shard at `folder` (HNSW, int8 copies, sparse index), blocking."""
    import qdrant_edge as qe

    shard = qe.EdgeShard.load(str(folder))  # its own edge_config.json, copied from the live shard
    try:
        changed = bool(shard.optimize())
        shard.flush()
    finally:
        shard.close()
    return changed


def main(argv: list[str]) -> int:
    folder, parent, nice = Path(argv[0]), int(argv[1]), int(argv[2])
    _die_with(parent)
    os.nice(nice)
    _idle_priority()
    build(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
