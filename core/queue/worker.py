"""``recfw worker --queue``: take the recording jobs that fit, one recorder process each.

A :class:`QueueWorker` is a long-running consumer of the job stream (consumer
group ``recorders``, consumer name = the worker's name). Admission: it reads a
job (``XREADGROUP COUNT 1``) only while it has room for at least the cheapest
job, and starts it only when ``cost <= capacity - load``; a job that does not
fit is given back at the stream's end (a new entry, atomically with the removal
of the old one) for another worker, and this worker reads nothing more until its
load changes or a short pause passed. A job nobody takes is failed by the room
server after ``[workers] admissionTimeout`` seconds (it cancels it).

Each admitted job runs as its own ``recfw worker -`` process (the same recorder
as the embedded default, job on stdin, state lines on stdout), so a crash of one
recording never takes the worker or another recording down. The worker relays
the recorder's state lines to the job's state stream and the server's commands
to the recorder's stdin. When the file is finished, the worker stores it itself
to the recording's own destination, read (and decrypted) from the control
plane's database: storage credentials never travel through Redis. If storing
fails, the recording is ``kept`` on this worker's node and its background
uploader (the control plane's, run in this process) retries.

Heartbeats: every ``[workers] heartbeat`` seconds the worker writes
``recfw:worker:<name>`` (load, capacity, jobs; expires after ``deadAfter``) and
resets the idle time of its jobs' pending entries. Every few seconds it
``XAUTOCLAIM`` s entries idle for longer than ``deadAfter``: their worker died.
It reports such a job ``lost`` (the room server then fails that part and queues a
new job that records on into a new file). A worker that comes back recovers its
own leftovers: its pending jobs are reported lost, and its kept recordings (the
spool files its dead recorders left) are stored at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..session import _create_spool_file
from ..spool import SpoolLock
from ..worker.job import parse_state_line
from ..worker.supervisor import exit_cause, worker_command
from .cost import RULE, admits, cost
from .redisq import FINAL_STATES, JobQueue, QueuedJob
from .reports import FOLDER, PendingReports
from .settings import QUEUE_URL_ENV

if TYPE_CHECKING:
    from ..control.db import Database
    from ..control.events import ControlEvents
    from ..manager import Plugins
    from .settings import WorkerSettings

log = logging.getLogger(__name__)

#: Seconds a worker waits after giving a job back before it reads the stream again.
PASS_PAUSE = 0.5
#: Milliseconds one XREADGROUP blocks.
READ_BLOCK_MS = 1000
#: The cheapest job (one person at the lowest resolution): below this free, nothing is read.
MIN_COST = cost(1, 160, 120, 1)
#: Seconds running recorders get to finish their files when the worker is stopped.
DRAIN_TIMEOUT = 90.0
#: Seconds a job's row stays this worker's after its last state was reported (the room
#: server marks it stored or kept meanwhile); until then this worker's uploader never
#: takes the row, still ``recording``, for one a crash left.
RELEASE_AFTER = 120.0


def default_name() -> str:
    """A worker's default name: this machine's host name (one worker per machine)."""
    return socket.gethostname()


def node_of(name: str) -> str:
    """The ``recordings.node`` of a worker's recordings (its spool belongs to it)."""
    return f"worker/{name}"


@dataclass
class Running:
    """One admitted job on this worker."""

    entry_id: str
    entry: QueuedJob
    spool_path: Path
    state: str = "taken"
    process: asyncio.subprocess.Process | None = None
    lock: SpoolLock | None = None
    final: dict[str, Any] = field(default_factory=dict)


class QueueWorker:
    """Takes jobs from ``queue`` while they fit ``capacity`` cores (see the module docs).

    ``db``/``events`` are the control plane (its database with the secret key):
    the worker reads each recording's destination there and stores the file
    itself; without them the worker cannot store and reports every file kept.
    """

    def __init__(
        self,
        queue: JobQueue,
        *,
        name: str,
        capacity: float,
        spool_dir: Path,
        settings: WorkerSettings,
        plugins: Plugins,
        db: Database | None = None,
        events: ControlEvents | None = None,
    ):
        self.queue = queue
        self.name = name
        self.node = node_of(name)
        self.capacity = capacity
        self.spool_dir = spool_dir
        self.settings = settings
        self.plugins = plugins
        self.db = db
        self.events = events
        self.running: dict[str, Running] = {}
        self.taken = 0
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        #: Last states Redis did not take (it was down), kept beside the spool, re-sent.
        self.reports = PendingReports(spool_dir / FOLDER)

    @property
    def load(self) -> float:
        return round(sum(r.entry.cost for r in self.running.values()), 3)

    def info(self) -> dict[str, Any]:
        """What the heartbeat says (``recfw workers`` shows it)."""
        try:
            loadavg = os.getloadavg()[0]
        except OSError:
            loadavg = None
        return {
            "node": self.node,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "capacity": self.capacity,
            "load": self.load,
            "cores": os.cpu_count(),
            "loadavg": loadavg,
            "taken": self.taken,
            "rule": RULE,
            "jobs": [
                {
                    "jobId": job_id,
                    "room": r.entry.job.room,
                    "cost": r.entry.cost,
                    "people": r.entry.people,
                    "state": r.state,
                }
                for job_id, r in self.running.items()
            ],
        }

    # --- running -----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then finish (and store) the running recordings."""
        await self.queue.ping()
        await self.queue.ensure_group()
        await self.queue.heartbeat(self.name, self.info(), self.settings.dead_after)
        if self.events is not None:
            for job_id in self.reports.jobs():  # their rows are ours until reported
                self.events.keep_live(job_id)
        await self._send_reports()  # before recovering: a job whose end is on disk is not lost
        await self._recover_own()
        loops = [
            asyncio.ensure_future(self._heartbeats(stop)),
            asyncio.ensure_future(self._reclaims(stop)),
        ]
        if self.db is not None and self.events is not None:
            loops.append(asyncio.ensure_future(self._uploads(stop)))
        log.info(
            "worker %s: taking jobs from %s (capacity %.2f cores; %s)",
            self.name,
            self.queue.shown_url,
            self.capacity,
            RULE,
        )
        try:
            await self._take(stop)
        finally:
            self._stopping = True
            for running in list(self.running.values()):
                self._tell_stop(running)
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=DRAIN_TIMEOUT)
            for task in loops:
                task.cancel()
            await self._send_reports()
            with contextlib.suppress(Exception):
                await self.queue.worker_gone(self.name)

    async def _take(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            free = self.capacity - self.load
            if free < MIN_COST:
                await self._wait_change(stop, 1.0)
                continue
            try:
                found = await self.queue.read_job(self.name, READ_BLOCK_MS)
            except Exception as exc:  # noqa: BLE001 - Redis down: retry, never exit
                log.warning("worker %s: reading jobs failed: %s", self.name, self.queue.error(exc))
                await self._wait_change(stop, 2.0)
                continue
            if found is None:
                continue
            entry_id, entry = found
            if await self.queue.is_cancelled(entry.job_id):
                await self.queue.done(entry_id)
                continue
            if stop.is_set() or not admits(entry.cost, self.capacity, self.load):
                await self.queue.requeue(entry_id, entry.passed(self.name))
                log.info(
                    "worker %s: job %s (room %r) needs %.2f cores, %.2f free: left for another",
                    self.name,
                    entry.job_id,
                    entry.job.room,
                    entry.cost,
                    self.capacity - self.load,
                )
                await self._wait_change(stop, PASS_PAUSE)
                continue
            self._start(entry_id, entry)

    async def _wait_change(self, stop: asyncio.Event, timeout: float) -> None:
        self._changed.clear()
        waits = {asyncio.ensure_future(self._changed.wait()), asyncio.ensure_future(stop.wait())}
        _, pending = await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
        for task in pending:
            task.cancel()

    def _start(self, entry_id: str, entry: QueuedJob) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path, output = _create_spool_file(self.spool_dir, Path(entry.job.spool_path).name)
        output.close()
        running = Running(entry_id, entry, path, lock=SpoolLock(path))
        self.running[entry.job_id] = running
        if self.events is not None:
            self.events.keep_live(entry.job_id)
        self.taken += 1
        self._changed.set()
        task = asyncio.ensure_future(self._run_job(running))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_job(self, running: Running) -> None:
        entry = running.entry
        job_id = entry.job_id
        try:
            await self.queue.report(
                job_id,
                "taken",
                worker=self.name,
                node=self.node,
                spoolPath=str(running.spool_path),
                cost=entry.cost,
            )
            log.info(
                "worker %s: recording room %r (job %s, %.2f cores) into %s",
                self.name,
                entry.job.room,
                job_id,
                entry.cost,
                running.spool_path,
            )
            await self._record(running)
            await self._finish(running)
        except Exception:
            log.exception("worker %s: job %s failed", self.name, job_id)
            with contextlib.suppress(Exception):
                await self.queue.report(job_id, "failed", reason="the worker failed (see its log)")
        finally:
            if running.lock is not None:
                running.lock.release()
            self.running.pop(job_id, None)
            self._changed.set()
            if self.reports.has(job_id):  # acknowledged once its last states are sent
                self.reports.set_entry(job_id, running.entry_id)
            else:
                with contextlib.suppress(Exception):
                    await self.queue.done(running.entry_id)
                self._release_later(job_id)

    async def _record(self, running: Running) -> None:
        """Run the recorder process; relay its states out and the server's commands in."""
        job = replace(running.entry.job, spool_path=str(running.spool_path))
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.pop(QUEUE_URL_ENV, None)  # the recorder records this one job, it takes none
        proc = running.process = await asyncio.create_subprocess_exec(
            *worker_command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(job.to_json().encode() + b"\n")
        await proc.stdin.drain()
        if self._stopping:
            self._tell_stop(running)
        commands = asyncio.ensure_future(self._commands(running))
        try:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                state = parse_state_line(line)
                if state is None:
                    continue
                kind = str(state.get("state"))
                if kind != "progress":
                    running.state = kind
                if kind in ("stopped", "failed"):
                    running.final = state
                    if kind == "stopped":
                        continue  # reported with the file's size after the process ends
                    await self._say(running.entry.job_id, **state)  # kept if Redis is down
                    continue
                await self._relay(running.entry.job_id, state)
            await proc.wait()
        finally:
            commands.cancel()

    async def _commands(self, running: Running) -> None:
        after = "0-0"
        while True:
            try:
                found = await self.queue.commands(running.entry.job_id, after, READ_BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis hiccup
                await asyncio.sleep(1.0)
                continue
            for entry_id, command in found:
                after = entry_id
                if command.get("type") == "stop":
                    self._tell_stop(running)
                    log.info(
                        "worker %s: job %s: the room server asked to stop; stopping the recorder",
                        self.name,
                        running.entry.job_id,
                    )

    def _tell_stop(self, running: Running) -> None:
        proc = running.process
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return
        with contextlib.suppress(Exception):
            proc.stdin.write(b'{"type": "stop"}\n')
            proc.stdin.close()

    async def _finish(self, running: Running) -> None:
        """The recorder ended: store a finished file, or say why it failed."""
        job_id = running.entry.job_id
        proc = running.process
        size = _size(running.spool_path)
        if running.final.get("state") != "stopped":
            reason = running.final.get("reason") or exit_cause(proc.returncode if proc else None)
            if size == 0:
                with contextlib.suppress(OSError):
                    running.spool_path.unlink()
            if running.final.get("state") != "failed":
                await self._say(job_id, "failed", reason=reason)
            return
        await self._say(job_id, **{**running.final, "size": size})
        # Stored while this worker still holds the spool file's lock: no uploader
        # (this worker's background one included) touches the file meanwhile.
        outcome = await asyncio.to_thread(
            self._store, job_id, running.spool_path, Path(running.entry.job.spool_path).name
        )
        await self._say(job_id, **outcome)

    async def _say(self, job_id: str, state: str, **fields: Any) -> None:
        """Report one of a job's last states. Redis being down never loses it, nor
        stops the file from being stored: the state is kept on disk (after any
        earlier one still waiting) and re-sent when Redis answers again."""
        if not self.reports.has(job_id):
            try:
                await self.queue.report(job_id, state, **fields)
                return
            except Exception as exc:  # noqa: BLE001 - Redis down: keep it for later
                log.warning(
                    "worker %s: could not report %s of job %s (kept, re-sent when Redis "
                    "answers): %s",
                    self.name,
                    state,
                    job_id,
                    self.queue.error(exc),
                )
        self.reports.add(job_id, {"state": state, **fields})

    async def _relay(self, job_id: str, state: dict[str, Any]) -> None:
        """Pass on a recorder's passing state (joined, recording, progress). Redis being
        down never stops the recording: such a state is dropped (a newer one follows)."""
        if self.reports.has(job_id):
            return  # never ahead of a state that waits
        try:
            await self.queue.report(job_id, **state)
        except Exception as exc:  # noqa: BLE001 - Redis down: the recorder records on
            log.log(
                logging.DEBUG if state.get("state") == "progress" else logging.WARNING,
                "worker %s: could not report %s of job %s: %s",
                self.name,
                state.get("state"),
                job_id,
                self.queue.error(exc),
            )

    async def _send_reports(self) -> None:
        """Re-send the states Redis did not take; what still fails waits for the next try."""
        if not self.reports.jobs():
            return
        sent: list[tuple[str, dict[str, Any]]] = []
        try:
            await self.reports.flush(self.queue, sent)
        except Exception as exc:  # noqa: BLE001 - still down: next heartbeat
            log.warning(
                "worker %s: reports still waiting for Redis: %s", self.name, self.queue.error(exc)
            )
        for job_id, state in sent:
            if state.get("state") == "stored" and self.db is not None and self.events is not None:
                await asyncio.to_thread(self._stored_late, job_id, state)
            if not self.reports.has(job_id):
                self._release_later(job_id)

    def _release_later(self, job_id: str) -> None:
        """The job's last state is out: its row is the room server's to finish."""
        if self.events is not None:
            events = self.events
            asyncio.get_running_loop().call_later(RELEASE_AFTER, events.keep_live, job_id, False)

    def _stored_late(self, recording_id: str, state: dict[str, Any]) -> None:
        """A ``stored`` that waited for Redis: if the room server gave up on the recording
        meanwhile (its row ``kept``/``failed``), the row is this worker's to finish."""
        from ..control.models import Recording
        from ..storage import StoredObject

        assert self.db is not None and self.events is not None
        with self.db.session(readonly=True) as s:
            row = s.get(Recording, recording_id)
            orphan = row is not None and row.status in ("kept", "failed")
        if orphan:
            stored = StoredObject(str(state.get("location")), int(state.get("size") or 0))
            self.events.stored(recording_id, stored)

    def _store(self, recording_id: str, path: Path, key: str) -> dict[str, Any]:
        """Store ``path`` as ``key`` to the recording's own destination (from the database)."""
        if self.db is None or self.events is None:
            return {"state": "kept", "reason": "this worker has no control plane to store with"}
        from ..control.models import Recording
        from ..control.uploader import row_destination
        from ..errors import SettingsError, StorageError
        from ..storing import content_type_for, store_recording

        with self.db.session(readonly=True) as s:
            row = s.get(Recording, recording_id)
            if row is None:
                return {"state": "kept", "reason": "the recording has no row in the control plane"}
            try:
                destination = row_destination(row, self.events.default_destination)
            except SettingsError:
                return {"state": "kept", "reason": "the recording's destination is unreadable"}
        try:
            stored = store_recording(
                path, key, destination, self.plugins, None, content_type_for(path, self.plugins)
            )
        except StorageError as exc:
            return {"state": "kept", "reason": str(exc)}
        with self.db.session(readonly=True) as s:
            row = s.get(Recording, recording_id)
            orphan = row is not None and row.status in ("kept", "failed")
        if orphan:  # the room server gave up on this recording: the row is ours to finish
            self.events.stored(recording_id, stored)
        log.info("worker %s: stored %s", self.name, stored.location)
        return {"state": "stored", "location": stored.location, "size": stored.size}

    # --- heartbeats, reclaiming, recovering ------------------------------------------

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        last_ok = loop.time()
        while not stop.is_set():
            try:
                await self.queue.heartbeat(self.name, self.info(), self.settings.dead_after)
                await self.queue.touch(self.name, [r.entry_id for r in self.running.values()])
                last_ok = loop.time()
                await self._send_reports()
            except Exception as exc:  # noqa: BLE001 - Redis down: keep recording a while
                log.warning("worker %s: heartbeat failed: %s", self.name, self.queue.error(exc))
                if self.running and loop.time() - last_ok > self.settings.dead_after:
                    # Others take this worker for dead now and record on: finish and store
                    # these files rather than record the same rooms twice.
                    log.error(
                        "worker %s: no heartbeat for %g s: stopping its %d recording(s)",
                        self.name,
                        self.settings.dead_after,
                        len(self.running),
                    )
                    for running in list(self.running.values()):
                        self._tell_stop(running)
            await self._sleep(stop, self.settings.heartbeat)

    async def _reclaims(self, stop: asyncio.Event) -> None:
        every = max(self.settings.heartbeat, self.settings.dead_after / 2)
        while not stop.is_set():
            await self._sleep(stop, every)
            if stop.is_set():
                return
            try:
                await self.reclaim()
            except Exception as exc:  # noqa: BLE001 - try again next round
                log.warning("worker %s: reclaiming failed: %s", self.name, self.queue.error(exc))

    async def reclaim(self) -> int:
        """Take over the entries of dead workers (XAUTOCLAIM); returns how many were lost."""
        lost = 0
        mine = {r.entry_id for r in self.running.values()}
        idle_ms = int(self.settings.dead_after * 1000)
        for entry_id, entry in await self.queue.autoclaim(self.name, idle_ms):
            if entry_id in mine:
                continue
            if entry is not None and self.reports.has(entry.job_id):
                await self.queue.give_back(self.name, entry_id)  # its end is being re-sent
                continue
            if entry is None:
                await self.queue.done(entry_id)
                continue
            states = await self.queue.last_states(entry.job_id)
            owner = next(
                (s.get("worker") for s in reversed(states) if s.get("state") == "taken"), None
            )
            last = states[-1].get("state") if states else None
            if await self.queue.is_cancelled(entry.job_id) or last in FINAL_STATES:
                await self.queue.done(entry_id)
            elif owner is None:  # read by a worker that died before starting it
                await self.queue.requeue(entry_id, entry)
            elif owner != self.name and await self.queue.alive(str(owner)):
                await self.queue.give_back(str(owner), entry_id)
            else:
                reason = (
                    f"worker {owner} died (no heartbeat for {self.settings.dead_after:g} s); "
                    f"its job was reclaimed by worker {self.name}"
                )
                log.warning(
                    "worker %s: job %s (room %r): %s",
                    self.name,
                    entry.job_id,
                    entry.job.room,
                    reason,
                )
                await self.queue.report(entry.job_id, "lost", reason=reason, reclaimedBy=self.name)
                await self.queue.done(entry_id)
                lost += 1
        return lost

    async def _recover_own(self) -> None:
        """A restarted worker: its old pending jobs died with it; its kept files are due."""
        for entry_id, entry in await self.queue.own_pending(self.name):
            if entry is not None and self.reports.has(entry.job_id):
                continue  # its last states wait on disk: acknowledged once they are sent
            if entry is not None and entry.job_id not in self.running:
                states = await self.queue.last_states(entry.job_id)
                if not states or states[-1].get("state") not in FINAL_STATES:
                    await self.queue.report(
                        entry.job_id,
                        "lost",
                        reason=f"worker {self.name} restarted; its recorder was gone",
                    )
            await self.queue.done(entry_id)
        if self.db is not None and self.events is not None:
            await asyncio.to_thread(self._kept_now_due)

    def _kept_now_due(self) -> None:
        from sqlalchemy import select

        from ..control.models import Recording, utcnow

        with self.db.session() as s:  # type: ignore[union-attr]
            rows = s.scalars(
                select(Recording).where(
                    Recording.status == "kept",
                    Recording.node == self.node,
                    Recording.deleted_at.is_(None),
                )
            )
            for row in rows:
                row.next_attempt_at = utcnow()

    async def _uploads(self, stop: asyncio.Event) -> None:
        from ..control.uploader import BackgroundUploader, UploadPolicy

        assert self.db is not None and self.events is not None
        uploader = BackgroundUploader(
            self.db, self.plugins, self.events, UploadPolicy(interval=5.0)
        )
        await uploader.run(stop)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


__all__ = ["QueueWorker", "default_name", "node_of"]
