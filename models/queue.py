"""One LLM, many askers: a bounded, fair line in front of the model.

A llama.cpp context generates one answer at a time. The line serves users round-robin in the
order they first queued (user A's third question waits behind user B's first), refuses to grow
beyond `max_waiting` with a typed QueueFull that says the position, and frees the model the
moment an asker stops reading (closing the stream stops generation).

Usage:
    line = LLMQueue(llm, max_waiting=16)
    stream = line.submit("alice", messages, max_tokens=256)   # may raise QueueFull
    for token in stream: print(token, end="")                 # waits for its turn, then streams
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from models.llm import LLM


class QueueFull(RuntimeError):
    """Too many questions are waiting for the model; the asker should retry shortly."""

    def __init__(self, position: int, limit: int) -> None:
        self.position, self.limit = position, limit
        super().__init__(
            f"kura is busy answering other questions: you would be number {position} in line, "
            f"and the line holds {limit}. Try again in a minute"
        )


@dataclass(eq=False)
class _Ticket:
    id: int
    user: str
    cancelled: bool = False
    granted: threading.Event = field(default_factory=threading.Event)


class QueuedStream(Iterator[str]):
    """An asker's place in line and, once its turn comes, its token stream."""

    def __init__(
        self,
        line: LLMQueue,
        ticket: _Ticket,
        messages: Sequence[dict[str, str]] | None,
        max_tokens: int,
        timeout_s: float,
    ) -> None:
        self._line, self._ticket = line, ticket
        self._args: tuple[list[dict[str, str]], int, float] | None = None
        if messages is not None:
            self.start(messages, max_tokens, timeout_s)
        self._inner: Iterator[str] | None = None
        self._done = False

    @property
    def user(self) -> str:
        return self._ticket.user

    def start(self, messages: Sequence[dict[str, str]], max_tokens: int, timeout_s: float) -> QueuedStream:
        """Say what to generate for a place reserved before the prompt was known (`reserve`)."""
        self._args = (list(messages), max_tokens, timeout_s)
        return self

    def position(self) -> int:
        """0 while generating, else how many answers are served before this one (1 = next)."""
        return self._line.position(self._ticket)

    def __next__(self) -> str:
        if self._done:
            raise StopIteration
        if self._inner is None:
            self._ticket.granted.wait()
            if self._ticket.cancelled:
                raise StopIteration
            if self._args is None:
                raise RuntimeError("a reserved place was read before start() gave it a prompt")
            self._inner = self._line.llm.stream(*self._args)
        try:
            return next(self._inner)
        except BaseException:
            self.close()
            raise

    def leave(self) -> None:
        """Leave the line if still waiting; callable from any thread (an answer that is already
        generating is stopped by its reader, which closes it)."""
        self._line.leave_waiting(self._ticket)

    def close(self) -> None:
        """Leave the line, or stop generating and hand the model to the next asker."""
        if self._done:
            return
        self._done = True
        if self._inner is not None:
            close = getattr(self._inner, "close", None)
            if close:
                close()
        self._line.release(self._ticket)

    def __del__(self) -> None:  # an asker that vanished without closing must not hold the model
        self.close()


class LLMQueue:
    """`llm` is the model, or `load` returns it when the first answer in line needs it (so the
    line takes places before the model is loaded, and a search never loads it)."""

    def __init__(self, llm: LLM | None = None, max_waiting: int = 16, load: Callable[[], LLM] | None = None) -> None:
        if max_waiting < 1:
            raise ValueError(f"max_waiting must be at least 1, not {max_waiting}")
        if llm is None and load is None:
            raise ValueError("an LLMQueue needs a model or a function that loads one")
        self._llm, self._load = llm, load
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._by_user: dict[str, deque[_Ticket]] = {}
        self._rotation: deque[str] = deque()  # users with waiting tickets, in serving order
        self._running: _Ticket | None = None
        self._paused = False
        self._ids = itertools.count(1)
        self.served: deque[tuple[int, str]] = deque(
            maxlen=1000
        )  # (ticket id, user) in the order served

    @property
    def llm(self) -> LLM:
        """The model that answers (loaded now by `load` if this is its first use)."""
        if self._llm is None:
            assert self._load is not None
            self._llm = self._load()
        return self._llm

    def submit(
        self,
        user: str,
        messages: Sequence[dict[str, str]],
        max_tokens: int,
        timeout_s: float = 120.0,
    ) -> QueuedStream:
        return self.reserve(user).start(messages, max_tokens, timeout_s)

    def reserve(self, user: str) -> QueuedStream:
        """A place in line taken now, its prompt given later with `start()`: an asker queues on
        arrival, so retrieval that runs longer for one asker than for the next cannot reorder
        them. Close it if there is nothing to generate."""
        with self._cond:
            waiting = self.waiting()
            if waiting >= self.max_waiting:
                raise QueueFull(waiting + 1, self.max_waiting)
            ticket = _Ticket(next(self._ids), user)
            self._by_user.setdefault(user, deque()).append(ticket)
            if user not in self._rotation:
                self._rotation.append(user)
            self._grant()
        return QueuedStream(self, ticket, None, 0, 0.0)

    def waiting(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._by_user.values())

    @property
    def busy(self) -> bool:
        return self._running is not None

    def position(self, ticket: _Ticket) -> int:
        with self._cond:
            if ticket is self._running or ticket.granted.is_set():
                return 0
            for place, waiting in enumerate(self._serving_order(), start=1):
                if waiting is ticket:
                    return place
            return 0

    def _serving_order(self) -> list[_Ticket]:
        queues = {u: list(q) for u, q in self._by_user.items()}
        order, rotation = [], deque(self._rotation)
        while rotation:
            user = rotation.popleft()
            order.append(queues[user].pop(0))
            if queues[user]:
                rotation.append(user)
        return order

    def _grant(self) -> None:
        """Give the model to the next asker in round-robin order, if it is free. Holds _cond."""
        if self._running is not None or self._paused or not self._rotation:
            return
        user = self._rotation.popleft()
        ticket = self._by_user[user].popleft()
        if self._by_user[user]:
            self._rotation.append(user)
        else:
            del self._by_user[user]
        self._running = ticket
        self.served.append((ticket.id, user))
        ticket.granted.set()

    def leave_waiting(self, ticket: _Ticket) -> None:
        with self._cond:
            if ticket is not self._running and not ticket.granted.is_set():
                self.release(ticket)  # re-entrant: _cond is an RLock-backed Condition

    def release(self, ticket: _Ticket) -> None:
        with self._cond:
            if ticket is self._running:
                self._running = None
            else:  # left while waiting
                ticket.cancelled = True
                queue = self._by_user.get(ticket.user)
                if queue and ticket in queue:
                    queue.remove(ticket)
                    if not queue:
                        del self._by_user[ticket.user]
                        self._rotation.remove(ticket.user)
                ticket.granted.set()
            self._grant()
            self._cond.notify_all()

    def swap(self, llm: LLM, timeout_s: float = 300.0) -> LLM:
        """Replace the model between answers (hot swap); returns the old one to close.
        Waiting askers keep their places and are served by the new model."""
        with self._cond:
            self._paused = True
            try:
                if not self._cond.wait_for(lambda: self._running is None, timeout=timeout_s):
                    raise TimeoutError(
                        f"an answer was still running after {timeout_s:.0f} s; try the swap again"
                    )
                old, self._llm = self._llm, llm
            finally:
                self._paused = False
                self._grant()
        return old
