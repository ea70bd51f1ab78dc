"""One recording: from the trigger's START to a file confirmed in storage.

Lifecycle: ``idle -> starting -> recording -> stopping -> stored | failed``.
The media goes composite -> encoder -> a spool file on local disk; only when
the sink has confirmed the remote copy is the spool file removed. A failed
store leaves it where :attr:`RecordingSession.kept_at` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .encoding import OutputFormat, write_error_text
from .errors import StorageError
from .events import RECORDING_FAILED, RECORDING_FINISHED, RECORDING_STARTED, Event
from .naming import free_names, recording_file_name
from .spool import SpoolLock
from .times import iso_utc

if TYPE_CHECKING:
    from .config import Config
    from .manager import Plugins
    from .recording import RecordingSettings
    from .sources import ParticipantMedia
    from .storage import Progress, StoredObject

log = logging.getLogger(__name__)


class SessionStatus(StrEnum):
    IDLE = "idle"
    STARTING = "starting"
    RECORDING = "recording"
    STOPPING = "stopping"
    STORED = "stored"
    FAILED = "failed"


_ACTIVE = (SessionStatus.STARTING, SessionStatus.RECORDING)


def _create_spool_file(folder: Path, name: str) -> tuple[Path, BinaryIO]:
    """Create a new spool file (``name``, else ``stem (2).ext``, ...: :func:`free_names`),
    never opening one that exists: two recorders in the same folder never write into one file."""
    folder = folder.resolve()  # kept_at is shown to people and webhooks: absolute
    for candidate in free_names(name, 10_000):
        path = folder / candidate
        try:
            return path, open(path, "xb")  # closed by the session
        except FileExistsError:
            continue
    raise OSError(f"no free spool file name for {name} in {folder}")


class RecordingSession:
    """A single recording of one room, driven by :class:`recfw.engine.RoomEngine`."""

    def __init__(
        self,
        room_name: str,
        settings: RecordingSettings,
        config: Config,
        plugins: Plugins,
        *,
        spool_dir: Path,
        emit: Callable[[Event], None],
        base_data: dict[str, Any],
        realtime: bool = True,
        fmt: OutputFormat | None = None,
        on_media_failure: Callable[[RecordingSession], None] | None = None,
        on_open: Callable[[RecordingSession], None] | None = None,
    ):
        self.room_name = room_name
        self.settings = settings
        self.config = config
        self.plugins = plugins
        self.destination = settings.destination
        self.encoder = plugins.encoder(self.destination.file_format)
        self.spool_dir = spool_dir
        self.realtime = realtime
        self.fmt = fmt or OutputFormat()
        self._emit = emit
        self._on_media_failure = on_media_failure
        self._on_open = on_open
        #: The recording's id (``recordingId`` in events and the REST API).
        self.recording_id = str(uuid.uuid4())
        self._base_data = base_data
        self.status = SessionStatus.IDLE
        self.started_at: datetime | None = None
        self.stopped_at: datetime | None = None
        self.file_name: str | None = None
        self.key: str | None = None
        self.spool_path: Path | None = None
        self.stored: StoredObject | None = None
        self.error: str | None = None
        self.kept_at: str | None = None
        self.stats: Any = None
        self.size: int | None = None
        self.progress: Progress | None = None
        self._recorder: Any = None
        self._output: Any = None
        self._lock: SpoolLock | None = None

    # --- lifecycle ----------------------------------------------------------

    async def start(self, media: list[ParticipantMedia]) -> None:
        """Open the spool file and the encoder, add the participants, start the clock.

        On any failure the session is ``failed`` (with ``recording.failed`` sent)
        and the exception propagates; an empty spool file is not left behind.
        """
        from .media import CompositeRecorder  # the media stack is only imported when recording
        from .media.activegrid import GridPolicy

        self.status = SessionStatus.STARTING
        self.started_at = datetime.now(UTC)
        try:
            self.file_name = recording_file_name(
                self.room_name, self.started_at, self.encoder.extension
            )
            # The sink puts the file under the destination's sub-folder itself.
            self.key = self.file_name
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            self.spool_path, self._output = _create_spool_file(self.spool_dir, self.file_name)
            self._lock = SpoolLock(self.spool_path)
            self._opened()
            self._recorder = CompositeRecorder(
                self.encoder,
                self._output,
                self.fmt,
                dict(self.config.encoder),
                realtime=self.realtime,
                grid=GridPolicy.from_layout(self.config.server.grid_layout()),
            )
            if self._on_media_failure is not None:
                self._recorder.on_failure = lambda exc: self._on_media_failure(self)
            for m in media:
                self._recorder.add(m)
            await self._recorder.start()
        except Exception as exc:
            self._discard_empty_file()
            self._fail(f"could not start recording: {write_error_text(exc, self.spool_path)}")
            raise
        self.status = SessionStatus.RECORDING
        log.info("recording room %r into %s", self.room_name, self.spool_path)
        self._emit(Event(RECORDING_STARTED, self._data(), subject=self))

    def add(self, media: ParticipantMedia) -> None:
        """Give a participant a tile (also while the recording is still starting)."""
        if self._recorder is not None and self.status in _ACTIVE:
            self._recorder.add(media)

    def set_reconnecting(self, participant_id: str, reconnecting: bool) -> None:
        """Show (or stop showing) the participant's tile as reconnecting (media stopped)."""
        if self._recorder is not None and self.status in _ACTIVE:
            self._recorder.set_reconnecting(participant_id, reconnecting)

    def remove(self, participant_id: str) -> None:
        if self._recorder is not None and self.status in _ACTIVE:
            self._recorder.remove(participant_id)

    async def stop(self) -> None:
        """Finish the file (the media part). :meth:`store` puts it in storage.

        If finishing fails (encoder error, disk full), the session is ``failed``
        and the spool file, which decodes up to the failure, is kept.
        """
        if self.status != SessionStatus.RECORDING:
            return
        self.status = SessionStatus.STOPPING
        self.stopped_at = datetime.now(UTC)
        error: str | None = None
        assert self.spool_path is not None  # set by start(), as RECORDING says
        try:
            self.stats = await self._recorder.stop()
        except Exception as exc:
            if isinstance(exc, OSError | RuntimeError):  # the disk, or PyAV's FFmpegError
                log.debug("finishing the recording of %r failed", self.room_name, exc_info=True)
            else:  # anything else is a bug somewhere: keep its traceback
                log.exception("finishing the recording of %r failed", self.room_name)
            error = f"finishing the file failed: {write_error_text(exc, self.spool_path)}"
        try:
            self._close_output()
            if self.spool_path is not None:
                self.size = self.spool_path.stat().st_size
        except OSError as exc:
            error = error or f"writing the file failed: {write_error_text(exc, self.spool_path)}"
        if error is not None:
            self._fail(error, kept_at=str(self.spool_path))

    async def store(self) -> None:
        """Hand the finished spool file to the sink; keep it if that fails."""
        if self.status != SessionStatus.STOPPING:
            return
        if self.spool_path is None or self.key is None:
            return  # nothing was ever written
        from .storing import store_recording

        try:
            stored = self.stored = await asyncio.to_thread(
                store_recording,
                self.spool_path,
                self.key,
                self.destination,
                self.plugins,
                self.progress,
                self.encoder.content_type,
            )
        except StorageError as exc:
            self._fail(str(exc), kept_at=exc.kept_at or str(self.spool_path))
            return
        except Exception as exc:  # store_recording wraps sinks' errors; this is a last guard
            log.exception("storing the recording of %r failed", self.room_name)
            self._fail(f"storing failed: {type(exc).__name__}: {exc}", kept_at=str(self.spool_path))
            return
        finally:
            self._release()
        self.stored = stored
        self.status = SessionStatus.STORED
        log.info("stored %s (%d bytes)", stored.location, stored.size)
        self._emit(Event(RECORDING_FINISHED, self._data(), subject=self))

    # --- helpers --------------------------------------------------------------

    def _close_output(self) -> None:
        if self._output is not None and not self._output.closed:
            try:
                self._output.flush()
                os.fsync(self._output.fileno())
            finally:
                self._output.close()

    def _opened(self) -> None:
        """Tell ``on_open`` (the control plane writes the recording's row) that the
        spool file exists; its failure is logged, never stops the recording."""
        if self._on_open is None:
            return
        try:
            self._on_open(self)
        except Exception:
            log.exception(
                "recording %s of room %r: could not record its start in the control plane",
                self.recording_id,
                self.room_name,
            )

    @property
    def base_data(self) -> dict[str, Any]:
        """The room's fields every event of this recording carries (meetingId, ...)."""
        return dict(self._base_data)

    def _discard_empty_file(self) -> None:
        """A recording that never started leaves nothing to keep: no 0-byte "recordings"."""
        with contextlib.suppress(OSError):
            self._close_output()
        if self.spool_path is not None:
            with contextlib.suppress(OSError):
                if self.spool_path.stat().st_size == 0:
                    self.spool_path.unlink()

    def _release(self) -> None:
        """Let ``recfw spool upload`` at the file: this session is done with it."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _fail(self, message: str, kept_at: str | None = None) -> None:
        self._release()
        self.status = SessionStatus.FAILED
        self.error = message
        if kept_at is None and self.spool_path is not None and self.spool_path.exists():
            kept_at = str(self.spool_path)
        self.kept_at = kept_at
        log.error("recording of room %r failed: %s", self.room_name, message)
        self._emit(Event(RECORDING_FAILED, self._data(), subject=self))

    @property
    def duration_s(self) -> float | None:
        return getattr(self.stats, "duration_s", None)

    def _data(self) -> dict[str, Any]:
        data = dict(self._base_data)
        data.update(
            {
                "recordingId": self.recording_id,
                "filename": self.file_name,
                "fileName": self.file_name,
                "fileFormat": self.destination.file_format,
                "provider": self.destination.provider,
                "startedAt": iso_utc(self.started_at) if self.started_at else None,
            }
        )
        if self.stopped_at:
            data["stoppedAt"] = iso_utc(self.stopped_at)
        if self.stats is not None and self.duration_s is not None:
            data["durationSeconds"] = round(self.duration_s, 3)
        if self.stored is not None:
            data["location"] = self.stored.location
            data["size"] = self.stored.size
        if self.status == SessionStatus.STORED:
            data["status"] = "completed"
        if self.status == SessionStatus.FAILED:
            data["status"] = "failed"
            data["error"] = self.error
            data["keptAt"] = self.kept_at
        return data
