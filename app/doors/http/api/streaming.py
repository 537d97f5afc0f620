"""Streaming an answer over HTTP without holding the model for a client that left.

Starlette iterates a plain (blocking) iterator in worker threads and, when the client
disconnects, simply stops asking for the next item: the iterator is never closed, so the
answer's place in the LLM queue (models/queue.py) stays taken until garbage collection, and
every later asker waits (measured: `kura bench api` hung behind an abandoned stream). Here one
worker thread owns the iterator from start to end: when the client leaves it stops after the
current token and closes the iterator itself, in its own thread, which hands the model on.

A non-streamed answer (`collect`) watches the connection while it waits: a client that leaves
before its turn gives up its place in the line, one that leaves while its answer is generated
stops it after the current token.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from app.service.answer import Answer

_END = object()


async def pump(lines: Iterator[str]) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the server's loop is gone (shutdown): nobody is listening
            pass

    def work() -> None:
        try:
            for line in lines:
                if stop.is_set():
                    break
                put(line)
        except BaseException as exc:  # noqa: BLE001 - handed to the response task to raise there
            put(exc)
        finally:
            close = getattr(lines, "close", None)
            if close:
                close()  # in this thread, the one that iterated it
            put(_END)

    # The audit fields of this call (app/audit/log.py CALL_FIELDS) go with the work.
    loop.run_in_executor(None, contextvars.copy_context().run, work)
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()


async def collect(answer: Answer, request: Request, poll_s: float = 0.25) -> str | None:
    """The whole text of a non-streamed answer, or None when the client left first."""
    parts: list[str] = []

    async def read() -> None:
        async for token in pump(answer.tokens()):
            parts.append(token)

    reader = asyncio.ensure_future(read())
    try:
        while True:
            done, _ = await asyncio.wait({reader}, timeout=poll_s)
            if done:
                reader.result()  # raises what the answer raised
                return "".join(parts)
            if await request.is_disconnected():
                answer.abandon()  # still waiting for its turn: leave the line now
                return None
    finally:
        if not reader.done():
            reader.cancel()  # pump's worker stops after the current token and closes the answer
