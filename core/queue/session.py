"""The room server's end of a queued recording: :class:`QueuedSession`.

The sibling of :class:`~recfw.worker.supervisor.SupervisedSession` for
``[workers] queue``: instead of starting a local ``recfw worker`` process it puts
the recording job on the Redis stream and follows the state the worker that
took it writes to the job's state stream (the same states as a local worker's
``RECFW-STATE`` lines, plus ``taken``, ``stored``/``kept`` and ``lost``):

* ``taken`` (worker, node, spoolPath): the job was admitted by a worker, which
  created the spool file on its machine; the recording's row is written now,
  with that worker's node and spool path (so that worker's uploader owns it);
* ``joined``, ``recording``, ``progress``: as a local worker's;
* ``stopped``: the file is finished; then ``stored`` (location, size) once the
  worker stored it to the recording's destination, or ``kept`` (reason) when
  that failed (the worker's background uploader retries);
* ``failed``: the recorder failed (the file, if any, is kept on the worker);
* ``lost``: another worker found this job's worker dead (XAUTOCLAIM).

No worker taking the job within ``[workers] admissionTimeout`` seconds fails the
recording (``recording.failed`` with why). A worker whose heartbeat expires while
recording is dead: the recording fails with its file kept on that worker's
machine (stored when the worker comes back), and ``on_died`` starts a new
recorder that records on into a new file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..encoding import write_error_text
from ..events import RECORDING_FINISHED, RECORDING_STARTED, Event
from ..session import SessionStatus
from ..storage import StoredObject
from ..worker.supervisor import START_TIMEOUT, STOP_TIMEOUT, SupervisedSession
from .cost import cost
from .redisq import FINAL_STATES, JobQueue, QueuedJob

if TYPE_CHECKING:
    from ..sources import ParticipantMedia
    from .settings import WorkerSettings

log = logging.getLogger(__name__)

#: Seconds a worker has to store a finished file before the session gives up waiting
#: (the file stays on the worker, whose uploader stores it).
STORE_TIMEOUT = 3600.0
#: Milliseconds one read of the state stream blocks (the heartbeat is checked between).
READ_BLOCK_MS = 500


class QueuedSession(SupervisedSession):
    """A recording made by whichever ``recfw worker --queue`` admits its job.

    ``queue`` is the room server's :class:`JobQueue`; ``people()`` the number of
    people in the room now (for the job's cost); ``workers`` the ``[workers]``
    settings (admission timeout, heartbeat expiry).
    """

    def __init__(
        self,
        *args: Any,
        queue: JobQueue,
        workers: WorkerSettings,
        people: Callable[[], int] = lambda: 0,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.queue = queue
        self.workers = workers
        self._people = people
        self.job_id = self.recording_id
        self.entry_id: str | None = None
        #: The worker that took the job, and its node (the recording row's owner).
        self.worker: str | None = None
        self.node: str | None = None
        self.cost: float | None = None
        self._last = "0-0"
        self._done = asyncio.Event()
        self._stop_error: Exception | None = None

    # --- lifecycle ------------------------------------------------------------

    async def start(self, media: list[ParticipantMedia]) -> None:
        """Queue the job, wait until a worker takes it and records."""
        del media  # the worker subscribes to everyone itself
        try:
            base = self._begin()
            assert self.file_name is not None
            # Only the file's name: the worker that takes the job makes it in its spool.
            job = self._recording_job(base, self.file_name)
            server = self.config.server
            people = max(int(self._people()), 1)
            self.cost = cost(
                people,
                server.video_width,
                server.video_height,
                server.video_fps,
                self.destination.file_format,
            )
            entry = QueuedJob(self.job_id, job, self.cost, people)
            try:
                self.entry_id = await self.queue.enqueue(entry)
            except Exception as exc:
                raise RuntimeError(f"could not queue the job: {self.queue.error(exc)}") from None
            log.info(
                "room %r: recording job %s queued (cost %.2f cores)",
                self.room_name,
                self.job_id,
                self.cost,
            )
            self._watch = asyncio.get_running_loop().create_task(self._follow())
            try:
                state = await asyncio.wait_for(self._until("taken"), self.workers.admission_timeout)
            except TimeoutError:
                raise RuntimeError(await self._nobody_took_it()) from None
            if state.get("state") != "taken":
                raise RuntimeError(state.get("reason") or "the job was not taken")
            self.worker = str(state.get("worker"))
            self.node = str(state.get("node") or self.worker)
            self.spool_path = Path(str(state.get("spoolPath")))
            self._opened()
            state = await asyncio.wait_for(self._until("recording"), START_TIMEOUT)
            if state.get("state") != "recording":
                raise RuntimeError(state.get("reason") or "the recorder did not start")
        except Exception as exc:
            await self._kill()
            self._fail(f"could not start recording: {write_error_text(exc, self.spool_path)}")
            raise
        self.status = SessionStatus.RECORDING
        log.info(
            "recording room %r into %s on worker %s", self.room_name, self.spool_path, self.worker
        )
        self._emit(Event(RECORDING_STARTED, self._data(), subject=self))

    async def _nobody_took_it(self) -> str:
        """Why the job waited in vain (the workers and what they had free)."""
        with contextlib.suppress(Exception):
            await self.queue.cancel(self.job_id, self.entry_id)
        try:
            workers = await self.queue.workers()
        except Exception:  # noqa: BLE001 - the reason is what matters, not the details
            workers = []
        if workers:
            shown = ", ".join(
                f"{w['name']} ({float(w.get('capacity', 0)) - float(w.get('load', 0)):.2f} "
                f"of {float(w.get('capacity', 0)):.2f} cores free)"
                for w in workers
            )
        else:
            shown = "none is running"
        return (
            f"no worker took the recording job within {self.workers.admission_timeout:g} s "
            f"(it needs {self.cost:.2f} cores; workers: {shown})"
        )

    async def stop(self) -> None:
        """Tell the worker to finish the file and wait until it has (then :meth:`store`)."""
        if self.status != SessionStatus.RECORDING:
            return
        self.status = SessionStatus.STOPPING
        self.stopped_at = datetime.now(UTC)
        self._stopping = True
        error: str | None = None
        final: dict[str, Any] = {}
        self._stop_error = None
        try:
            await asyncio.wait_for(self._tell_stop(), STOP_TIMEOUT)
        except TimeoutError:
            error = f"could not tell the worker to stop: {self._stop_error}"
        if error is None:
            try:
                final = await asyncio.wait_for(self._until("stopped"), STOP_TIMEOUT)
            except TimeoutError:
                error = f"the recorder did not finish the file within {STOP_TIMEOUT:g} s"
        if error is None and final.get("state") != "stopped":
            error = final.get("reason") or "the recorder stopped without finishing the file"
        if final.get("durationSeconds") is not None:
            self.stats = SimpleNamespace(duration_s=float(final["durationSeconds"]))
        if final.get("size") is not None:
            self.size = int(final["size"])
        if error is not None:
            self._fail(f"finishing the file failed: {error}", kept_at=str(self.spool_path))

    async def store(self) -> None:
        """The worker stores the file to this recording's destination: wait for it."""
        if self.status != SessionStatus.STOPPING:
            return
        try:
            state = await asyncio.wait_for(self._until("stored"), STORE_TIMEOUT)
        except TimeoutError:
            state = {"state": "kept", "reason": "the worker did not report storing the file"}
        if state.get("state") == "stored":
            self.stored = StoredObject(str(state.get("location")), int(state.get("size") or 0))
            self.size = self.stored.size
            self.status = SessionStatus.STORED
            log.info(
                "stored %s (%d bytes) by worker %s", self.stored.location, self.size, self.worker
            )
            self._emit(Event(RECORDING_FINISHED, self._data(), subject=self))
        else:
            reason = state.get("reason") or "the worker could not store the file"
            self._fail(str(reason), kept_at=str(self.spool_path))

    # --- following the job ----------------------------------------------------

    async def _follow(self) -> None:
        """Read the job's state stream; notice when its worker dies.

        While Redis is unreachable nothing is concluded: the worker keeps the states it
        could not report and sends them when Redis is back. A Redis that comes back
        (maybe empty: no heartbeat key yet) gets ``deadAfter`` seconds for the worker's
        next heartbeat before a missing one means a dead worker."""
        loop = asyncio.get_running_loop()
        trust_heartbeats_at = 0.0
        down = False
        try:
            while True:
                try:
                    entries = await self.queue.states(self.job_id, self._last, READ_BLOCK_MS)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - Redis down: retry, say once
                    if not down:
                        log.warning(
                            "room %r: reading the job's state: %s (retrying)",
                            self.room_name,
                            self.queue.error(exc),
                        )
                    down = True
                    trust_heartbeats_at = loop.time() + self.workers.dead_after
                    await asyncio.sleep(1.0)
                    continue
                if down:
                    log.info("room %r: the job's state is readable again", self.room_name)
                    down = False
                for entry_id, state in entries:
                    self._last = entry_id
                    if self._take(state):
                        return
                if loop.time() < trust_heartbeats_at:
                    continue
                if self.worker is not None and not await self._worker_alive():
                    self._died(
                        f"worker {self.worker} stopped sending heartbeats "
                        f"(none for {self.workers.dead_after:g} s)"
                    )
                    return
        finally:
            self._done.set()

    def _take(self, state: dict[str, Any]) -> bool:
        """One state of the worker; ``True`` once there is nothing more to follow."""
        kind = str(state.get("state"))
        if kind == "progress":
            with contextlib.suppress(KeyError, TypeError, ValueError):
                self.position = float(state["position"])
            return False
        if kind == "taken" and self.worker is None:
            self.worker = str(state.get("worker"))
        self.worker_state = kind
        if kind in ("stopped", "failed"):
            self._final = state
        if kind == "lost":
            self._died(str(state.get("reason") or f"worker {self.worker} died"))
            return True
        if (
            kind in ("failed", "stopped")
            and self.status == SessionStatus.RECORDING
            and not (self._stopping)
        ):
            self._states.put_nowait(state)
            self._died(str(state.get("reason") or f"the recorder on worker {self.worker} stopped"))
            return True
        self._states.put_nowait(state)
        return kind in FINAL_STATES

    async def _worker_alive(self) -> bool:
        try:
            return await self.queue.alive(str(self.worker))
        except Exception:  # noqa: BLE001 - cannot tell: not dead
            return True

    def _died(self, cause: str) -> None:
        self._states.put_nowait({"state": "exited", "reason": cause})
        if self.status != SessionStatus.RECORDING or self._stopping:
            return  # start/stop/store see the "exited" state and fail with the cause
        log.error("room %r: %s while recording", self.room_name, cause)
        # If the worker is alive after all (cut off from Redis, not dead), its recorder
        # stops and the worker stores its file: one recorder per room, nothing lost.
        asyncio.get_running_loop().create_task(self._fence())
        self.stopped_at = datetime.now(UTC)
        self._fail(f"the recorder died: {cause}", kept_at=str(self.spool_path))
        if self.on_died is not None:
            try:
                self.on_died(self)
            except Exception:
                log.exception("room %r: on_died failed", self.room_name)

    async def _tell_stop(self) -> None:
        """Send ``stop``, retrying while Redis is down (bounded by the caller); a worker
        cut off from Redis for ``deadAfter`` stops its recorder by itself anyway."""
        while True:
            try:
                await self.queue.command(self.job_id, {"type": "stop"})
                return
            except Exception as exc:  # noqa: BLE001 - retried: the caller bounds it
                self._stop_error = self.queue.error(exc)
                await asyncio.sleep(1.0)

    async def _fence(self) -> None:
        with contextlib.suppress(Exception):
            await self.queue.command(self.job_id, {"type": "stop"})

    async def _until(self, wanted: str) -> dict[str, Any]:
        while True:
            state = await self._states.get()
            if state.get("state") in (wanted, "failed", "exited", "kept", "stored", "lost"):
                if state.get("state") in ("stored", "kept") and wanted not in ("stored", "kept"):
                    continue  # a late store result while waiting for something else
                return state

    async def _kill(self) -> None:
        """Give up on the job: nobody starts it any more; a worker running it stops (also
        one that took it just now: it reads the job's commands from the first)."""
        with contextlib.suppress(Exception):
            await self.queue.cancel(self.job_id, self.entry_id if self.worker is None else None)
        with contextlib.suppress(Exception):
            await self.queue.command(self.job_id, {"type": "stop"})
        if self._watch is not None and not self._watch.done():
            self._watch.cancel()

    def _discard_empty_file(self) -> None:
        """The spool file is the worker's: the worker removes it if it stayed empty."""

    def _returncode(self) -> int | None:
        return None
