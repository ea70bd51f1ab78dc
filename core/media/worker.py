"""The recorder's worker thread: compositing and encoding off the event loop.

One thread runs jobs in the order they were posted. Per output frame the event
loop only appends a job to a queue (no future, no executor round trip); it
waits on a future only when :data:`max_pending` jobs are queued (the encoder
is behind), when it needs a result (:meth:`EncodeWorker.call`), or at the end
(:meth:`EncodeWorker.drain`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class EncodeWorker:
    """A single thread running posted jobs in order; a failed job stops the rest.

    The first exception of a posted job is kept in :attr:`error` and every
    posted job after it is skipped (an encoder that failed is not fed more).
    """

    def __init__(self, name: str = "recfw-encode", max_pending: int = 15):
        self.max_pending = max_pending
        self.error: BaseException | None = None
        self._jobs: deque[tuple[Callable[..., Any], tuple[Any, ...], Any]] = deque()
        self._cond = threading.Condition()
        self._pending = 0  # posted jobs not finished
        #: (pending count to wait for, the loop, its future): one waiter at a time.
        self._waiter: tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
        self._closed = False
        self._name = name
        self._thread: threading.Thread | None = None  # started by the first job

    @property
    def pending(self) -> int:
        """Posted jobs not finished yet."""
        return self._pending

    # --- the event loop's side -------------------------------------------------

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; its exception (if any) lands in :attr:`error`."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker is shut down")
            self._jobs.append((fn, args, None))
            self._pending += 1
            self._cond.notify()
            self._start()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` after the jobs already queued and return its result."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker is shut down")
            self._jobs.append((fn, args, fut))
            self._cond.notify()
            self._start()
        return await asyncio.wrap_future(fut)

    async def wait_below(self, limit: int) -> None:
        """Return once at most ``limit`` posted jobs are pending (or one failed)."""
        with self._cond:
            if self._pending <= limit or self.error is not None:
                return
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            self._waiter = (limit, loop, fut)
        try:
            await fut
        finally:
            with self._cond:
                if self._waiter is not None and self._waiter[2] is fut:
                    self._waiter = None

    async def throttle(self) -> None:
        """Wait while more than ``max_pending`` jobs are queued."""
        if self._pending > self.max_pending:
            await self.wait_below(self.max_pending // 2)

    async def drain(self) -> None:
        """Wait until every posted job has run."""
        await self.wait_below(0)

    def shutdown(self) -> None:
        """Let the thread finish the queued jobs and end (does not wait for it)."""
        with self._cond:
            self._closed = True
            if self._thread is not None:
                self._jobs.append((_stop, (), None))
                self._cond.notify()

    # --- the thread --------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                fn, args, fut = self._jobs.popleft()
            if fn is _stop:
                return
            if fut is not None:
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(fn(*args))
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        fut.set_exception(exc)
                continue
            if self.error is None:
                try:
                    fn(*args)
                except BaseException as exc:  # noqa: BLE001 - reported by the recorder
                    self.error = exc
            with self._cond:
                self._pending -= 1
                waiter = self._waiter
                if waiter is not None and (self._pending <= waiter[0] or self.error is not None):
                    self._waiter = None
                else:
                    waiter = None
            if waiter is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    waiter[1].call_soon_threadsafe(_resolve, waiter[2])


def _stop() -> None:
    """Marks the end of the queue."""


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
