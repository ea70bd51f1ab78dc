"""The room server's end of a recorder process: one :class:`SupervisedSession` per recording.

It is a :class:`~recfw.session.RecordingSession` whose media part runs in a
``recfw worker`` process instead of this one. The session creates the spool
file and holds its lock (so the recording's row, the background uploader and
``recfw spool`` see it exactly as an in-process recording's), makes a one-time
recorder token, and starts the worker with the job on its stdin. The worker's
state lines on stdout say when it joined and records; ``{"type": "stop"}`` on
its stdin stops it, and it exits once the file is finished.

If the worker exits on its own (a crash, the OOM killer, SIGKILL), the session
notices at once (its stdout closes and the process is reaped): the recording
fails with the cause (``recording.failed``, the row ``kept``: the background
uploader stores the spool file to this recording's own destination), and
``on_died`` is called so the engine can start a new recorder into a new file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..encoding import write_error_text
from ..events import RECORDING_STARTED, Event
from ..naming import recording_file_name
from ..session import RecordingSession, SessionStatus, _create_spool_file
from ..spool import SpoolLock
from .job import RecordingJob, parse_state_line

if TYPE_CHECKING:
    from ..sources import ParticipantMedia

log = logging.getLogger(__name__)

#: Seconds a worker has to join the room and start recording.
START_TIMEOUT = 60.0
#: Seconds a worker has to finish its file after being told to stop (then SIGKILL).
STOP_TIMEOUT = 60.0


def worker_command() -> list[str]:
    """How the room server starts a recorder: ``recfw worker`` (job on stdin)."""
    return [sys.executable, "-m", "recfw.worker", "-"]


def exit_cause(returncode: int | None) -> str:
    """``the recorder process was killed by SIGKILL`` / ``exited with status 1``."""
    if returncode is None:
        return "the recorder process is gone"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (out of memory, or killed)" if name == "SIGKILL" else ""
        return f"the recorder process was killed by {name}{hint}"
    return f"the recorder process exited with status {returncode}"


class SupervisedSession(RecordingSession):
    """A recording made by a ``recfw worker`` process (see the module docs).

    ``register_token(token)`` lets the room accept one recorder join with it;
    ``base_url`` is where the worker reaches the room server; ``on_died(session)``
    is called (on the event loop) when the worker died while recording.
    """

    def __init__(
        self,
        *args: Any,
        base_url: Callable[[], str | None],
        register_token: Callable[[str], None],
        on_died: Callable[[SupervisedSession], None] | None = None,
        meeting_id: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self._base_url = base_url
        self._register_token = register_token
        self.on_died = on_died
        self.meeting_id = meeting_id
        self.process: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.worker_state: str | None = None
        self._states: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self._final: dict[str, Any] | None = None
        #: Seconds recorded (composited, handed to the encoder) at the worker's last report.
        self.position = 0.0

    # --- lifecycle ------------------------------------------------------------

    async def start(self, media: list[ParticipantMedia]) -> None:
        """Create the spool file, start the worker, wait until it records."""
        del media  # the worker subscribes to everyone itself
        try:
            base = self._begin()
            assert self.file_name is not None
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            self.spool_path, output = _create_spool_file(self.spool_dir, self.file_name)
            output.close()  # the worker writes it; this process holds the lock
            self._lock = SpoolLock(self.spool_path)
            self._opened()
            await self._spawn(self._recording_job(base, str(self.spool_path)))
            state = await asyncio.wait_for(self._until("recording"), START_TIMEOUT)
            if state.get("state") != "recording":
                raise RuntimeError(state.get("reason") or exit_cause(self._returncode()))
        except Exception as exc:
            await self._kill()
            self._discard_empty_file()
            self._fail(f"could not start recording: {write_error_text(exc, self.spool_path)}")
            raise
        self.status = SessionStatus.RECORDING
        log.info(
            "recording room %r into %s (recorder process %s)",
            self.room_name,
            self.spool_path,
            self.pid,
        )
        self._emit(Event(RECORDING_STARTED, self._data(), subject=self))

    def _begin(self) -> str:
        """A start's first steps (also :class:`~recfw.queue.session.QueuedSession`'s):
        ``starting``, the start time and the file's name. Returns the URL where a
        recorder process reaches the room server."""
        self.status = SessionStatus.STARTING
        self.started_at = datetime.now(UTC)
        base = self._base_url()
        if not base:
            raise RuntimeError("the room server is not listening yet")
        self.file_name = recording_file_name(
            self.room_name, self.started_at, self.encoder.extension
        )
        self.key = self.file_name
        return base

    def _recording_job(self, base: str, spool_path: str) -> RecordingJob:
        """The job a recorder process is given, with a new one-time token for its join
        (``spool_path``: where it writes; a queue worker puts the file in its own spool)."""
        token = secrets.token_urlsafe(32)
        self._register_token(token)
        return RecordingJob(
            base_url=base,
            room=self.room_name,
            token=token,
            recording_id=self.recording_id,
            spool_path=spool_path,
            file_format=self.destination.file_format,
            meeting_id=self.meeting_id,
            encoder=dict(self.config.encoder),
            realtime=self.realtime,
            layout=self.config.server.grid_layout(),
        )

    def add(self, media: ParticipantMedia) -> None:
        """Nothing to do: the worker sees everyone through the room server."""

    def remove(self, participant_id: str) -> None:
        """Nothing to do: the worker sees everyone through the room server."""

    async def stop(self) -> None:
        """Tell the worker to finish the file and wait until it has (then :meth:`store`)."""
        if self.status != SessionStatus.RECORDING:
            return
        self.status = SessionStatus.STOPPING
        self.stopped_at = datetime.now(UTC)
        self._stopping = True
        proc = self.process
        error: str | None = None
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.write(b'{"type": "stop"}\n')
                await proc.stdin.drain()
                proc.stdin.close()
        try:
            if self._watch is not None:
                await asyncio.wait_for(asyncio.shield(self._watch), STOP_TIMEOUT)
        except TimeoutError:
            log.error(
                "room %r: the recorder did not finish within %g s", self.room_name, STOP_TIMEOUT
            )
            await self._kill()
            error = f"the recorder did not finish the file within {STOP_TIMEOUT:g} s"
        final = self._final or {}
        if error is None and final.get("state") != "stopped":
            error = final.get("reason") or exit_cause(self._returncode())
        if final.get("durationSeconds") is not None:
            self.stats = SimpleNamespace(duration_s=float(final["durationSeconds"]))
        with contextlib.suppress(OSError):
            if self.spool_path is not None:
                self.size = self.spool_path.stat().st_size
        if error is not None:
            self._fail(f"finishing the file failed: {error}", kept_at=str(self.spool_path))

    # --- the process ------------------------------------------------------------

    async def _spawn(self, job: RecordingJob) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.process = await asyncio.create_subprocess_exec(
            *worker_command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,  # the worker's log goes where the server's goes
            env=env,
            start_new_session=True,  # a Ctrl-C of the server is the server's to handle
        )
        self.pid = self.process.pid
        assert self.process.stdin is not None
        self.process.stdin.write(job.to_json().encode() + b"\n")
        await self.process.stdin.drain()
        log.info("room %r: recorder process %d started", self.room_name, self.pid)
        self._watch = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        """Read the worker's state lines until it exits; notice a death."""
        proc = self.process
        assert proc is not None and proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            state = parse_state_line(line)
            if state is None:
                continue
            if state.get("state") == "progress":
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    self.position = float(state["position"])
                continue
            self.worker_state = str(state.get("state"))
            if self.worker_state in ("stopped", "failed"):
                self._final = state
            self._states.put_nowait(state)
        await proc.wait()
        self._states.put_nowait({"state": "exited", "returncode": proc.returncode})
        if self.status == SessionStatus.RECORDING and not self._stopping:
            cause = (self._final or {}).get("reason") or exit_cause(proc.returncode)
            log.error("room %r: %s while recording", self.room_name, cause)
            self.stopped_at = datetime.now(UTC)
            with contextlib.suppress(OSError):
                if self.spool_path is not None:
                    self.size = self.spool_path.stat().st_size
            self._fail(f"the recorder died: {cause}", kept_at=str(self.spool_path))
            if self.on_died is not None:
                try:
                    self.on_died(self)
                except Exception:
                    log.exception("room %r: on_died failed", self.room_name)

    async def _until(self, wanted: str) -> dict[str, Any]:
        while True:
            state = await self._states.get()
            if state.get("state") in (wanted, "failed", "exited"):
                return state

    def _returncode(self) -> int | None:
        return self.process.returncode if self.process is not None else None

    async def _kill(self) -> None:
        proc = self.process
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 10)
