"""The room engine: room events in, trigger decisions carried out, events out.

One :class:`RoomEngine` per room. Callers (the room server, ``recfw demo``)
report what happens in the room; the engine applies it with
:func:`recfw.triggers.step`, starts and stops :class:`RecordingSession` s as the
trigger decides, brings a recorder participant (role ``recorder``) into the
room while recording, and emits webhook-shaped events to the plugins.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .defaults import DEFAULT_MAX_DURATION
from .events import CLIENT_JOINED, CLIENT_LEFT, Event, client_event
from .rooms import (
    Joined,
    Left,
    Participant,
    PromptAnswer,
    Role,
    RoomClosed,
    RoomEvent,
    RoomState,
    StartCommand,
    StopCommand,
    Tick,
    apply_event,
)
from .session import RecordingSession, SessionStatus
from .spool import DEFAULT_SPOOL_DIR
from .triggers import Action, Decision, step

if TYPE_CHECKING:
    from .config import Config
    from .control.events import ControlEvents
    from .manager import Plugins
    from .recording import RecordingSettings
    from .sources import ParticipantMedia

log = logging.getLogger(__name__)

#: A recorder that dies sooner than this after it started counts as a quick death;
#: after MAX_QUICK_DEATHS in a row no new one is started until the room empties.
QUICK_DEATH_S = 5.0
MAX_QUICK_DEATHS = 3


MediaFor = Callable[[Participant], "ParticipantMedia | None"]


class RoomEngine:
    """One room: applies room events, asks the trigger, runs recording sessions.

    ``status`` is what the embed API reports: ``idle`` (never recorded),
    ``starting``, ``started``, ``stopping``, ``stopped``. ``on_change`` is called
    (synchronously) whenever the status or the prompted host changes.

    Media handed to the engine (by ``media_for`` or :meth:`attach_media`) is the
    recorder's own copy: the engine stops it when its participant leaves or the
    recording ends, and asks for fresh media for the next recording.
    """

    def __init__(
        self,
        room_name: str,
        settings: RecordingSettings,
        config: Config,
        plugins: Plugins,
        *,
        meeting_id: str | None = None,
        media_for: MediaFor | None = None,
        spool_dir: Path | None = None,
        realtime: bool = True,
        on_change: Callable[[RoomEngine], None] | None = None,
        control: ControlEvents | None = None,
    ):
        self.settings = settings
        #: The control plane every event goes through first (``None``: plugins only).
        self.control = control
        self.config = config
        self.plugins = plugins
        self.meeting_id = meeting_id or str(uuid.uuid4())
        self.room_session_id = str(uuid.uuid4())
        self.media_for = media_for
        self.spool_dir = spool_dir or DEFAULT_SPOOL_DIR
        self.realtime = realtime
        self.on_change = on_change
        self.trigger = plugins.trigger(settings.start_trigger)
        self.recording_enabled = settings.type not in (None, "none")
        self.state = RoomState(
            name=room_name, max_duration=settings.max_duration or DEFAULT_MAX_DURATION
        )
        self.status = "idle"
        self.sessions: list[RecordingSession] = []
        self.recorder = Participant(
            id=f"recorder-{uuid.uuid4().hex[:8]}", display_name="Recorder", role=Role.RECORDER
        )
        self._media: dict[str, ParticipantMedia] = {}
        self._lock = asyncio.Lock()
        self._loop_t0 = asyncio.get_running_loop().time()
        self._limit_task: asyncio.Task | None = None
        self._store_tasks: set[asyncio.Task] = set()
        self._last_prompted: str | None = None
        #: Makes each recording's session (the room server sets one that runs the
        #: recorder in its own process: :class:`recfw.worker.SupervisedSession`).
        self.session_factory: Callable[..., RecordingSession] = RecordingSession
        self._quick_deaths = 0
        #: The recording being started (outside the lock: joins go on meanwhile), and
        #: whether a stop came while it started (carried out once it has).
        self._starting: asyncio.Task[None] | None = None
        self._stop_when_started = False
        #: Whether the recorder has joined and not left (events told so): the room's
        #: state loses it when the room closes, its ``room.client.left`` comes at the stop.
        self._recorder_in = False

    # --- what callers report ----------------------------------------------

    async def join(self, participant: Participant) -> Decision:
        return await self._handle(Joined(self._now(), participant))

    async def leave(self, participant_id: str) -> Decision:
        return await self._handle(Left(self._now(), participant_id))

    async def start_command(self, participant_id: str) -> Decision:
        return await self._handle(StartCommand(self._now(), participant_id))

    async def stop_command(self, participant_id: str) -> Decision:
        return await self._handle(StopCommand(self._now(), participant_id))

    async def prompt_answer(self, participant_id: str, accepted: bool) -> Decision:
        return await self._handle(PromptAnswer(self._now(), participant_id, accepted))

    async def tick(self) -> Decision:
        return await self._handle(Tick(self._now()))

    def attach_media(self, media: ParticipantMedia) -> None:
        """A participant's tracks arrived (or changed) after they joined."""
        pid = media.participant.id
        if self.state.get(pid) is None:
            log.debug("media for %r, who is not in room %r, ignored", pid, self.state.name)
            return
        previous = self._media.get(pid)
        if previous is not None and previous is not media:
            _stop_media(previous)
        self._media[pid] = media
        session = self.current_session
        if session is not None and media.participant.is_person:
            session.add(media)

    async def close(self) -> None:
        """The room ends: stop any recording and wait until it is stored (or failed)."""
        await self._handle(RoomClosed(self._now()))
        await self.wait_stored()

    async def wait_stored(self) -> None:
        """Wait for every stopped recording to be stored or to fail."""
        while self._store_tasks:
            await asyncio.gather(*list(self._store_tasks), return_exceptions=True)

    async def wait_started(self) -> None:
        """Wait until a recording being started records (or failed to start).

        Starting one does not hold the room: :meth:`join` and the other calls return
        as soon as the recording is *starting* (``status == "starting"``)."""
        while self._starting is not None:
            await asyncio.gather(asyncio.shield(self._starting), return_exceptions=True)

    # --- state -----------------------------------------------------------------

    @property
    def current_session(self) -> RecordingSession | None:
        if self.sessions and self.sessions[-1].status in (
            SessionStatus.STARTING,
            SessionStatus.RECORDING,
        ):
            return self.sessions[-1]
        return None

    def _now(self) -> float:
        return asyncio.get_running_loop().time() - self._loop_t0

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self)
            except Exception:  # a UI callback never takes a recording down
                log.exception("on_change callback failed")

    def _emit(self, event: Event) -> None:
        """The control plane records the event (state + outbox, one transaction); then
        every ``recfw_on_event`` listener gets it."""
        if self.control is not None:
            try:
                self.control.publish(event)
            except Exception:
                log.exception(
                    "room %r: the control plane could not record %s %s",
                    self.state.name,
                    event.type,
                    event.id,
                )
        self.plugins.emit(event, self.config)

    def _opened(self, session: RecordingSession) -> None:
        if self.control is not None:
            self.control.recording_opened(session)

    def _base_data(self) -> dict:
        return {
            "meetingId": self.meeting_id,
            "roomName": "/" + self.state.name.lstrip("/"),
            "roomSessionId": self.room_session_id,
        }

    # --- carrying out decisions -----------------------------------------------

    async def _handle(self, event: RoomEvent) -> Decision:
        async with self._lock:
            before = self.state
            self.state, decision = step(self.trigger, self.state, event)
            if isinstance(event, Joined) and self.state.get(event.participant.id) is not None:
                if before.get(event.participant.id) is None:
                    self._emit(self._client_event(CLIENT_JOINED, event.participant))
            if isinstance(event, Left | RoomClosed):
                for gone in before.participants:
                    if gone.is_person and self.state.get(gone.id) is None:
                        if self.current_session is not None:
                            self.current_session.remove(gone.id)
                        media = self._media.pop(gone.id, None)
                        if media is not None:
                            _stop_media(media)
                        self._emit(self._client_event(CLIENT_LEFT, gone))
            if decision.action == Action.REFUSE:
                log.warning("room %r: refused: %s", self.state.name, decision.reason)
            elif decision.action == Action.START:
                if self.recording_enabled:
                    log.info("room %r: starting a recording (%s)", self.state.name, decision.reason)
                    await self._start()
                else:
                    log.info("room %r: recording is off (type none)", self.state.name)
            elif decision.action == Action.STOP:
                log.info("room %r: stopping the recording (%s)", self.state.name, decision.reason)
                await self._stop()
            elif (
                isinstance(event, Joined)
                and event.participant.is_person
                and self.current_session is not None
            ):
                self._add_media(event.participant, self.current_session)
            if self.state.prompted != self._last_prompted:
                self._last_prompted = self.state.prompted
                self._changed()
            return decision

    def _media_of(self, participant: Participant) -> ParticipantMedia | None:
        """The participant's media: attached already, or asked of ``media_for``.

        A ``media_for`` that raises (a broken source plugin) is logged and the
        participant recorded without media: it never takes the room down.
        """
        media = self._media.get(participant.id)
        if media is None and self.media_for is not None:
            try:
                media = self.media_for(participant)
            except Exception:
                log.exception(
                    "room %r: no media for %r: the source failed", self.state.name, participant.id
                )
                return None
            if media is not None:
                self._media[participant.id] = media
        return media

    def _add_media(self, participant: Participant, session: RecordingSession) -> None:
        media = self._media_of(participant)
        if media is not None:
            session.add(media)

    def _client_event(self, type_: str, participant: Participant) -> Event:
        return client_event(
            type_,
            self.state,
            participant,
            meeting_id=self.meeting_id,
            room_session_id=self.room_session_id,
        )

    async def _start(self) -> None:
        """Begin a recording (under the lock); :meth:`_started` finishes it outside."""
        if self.current_session is not None:
            # Still starting, with a stop pending (the trigger stopped, then wanted a
            # recording again): that recording goes on, one recording at a time.
            self._stop_when_started = False
            self._set_status("starting")
            return
        session = self.session_factory(
            self.state.name,
            self.settings,
            self.config,
            self.plugins,
            spool_dir=self.spool_dir,
            emit=self._emit,
            base_data=self._base_data(),
            realtime=self.realtime,
            on_media_failure=self._media_failed,
            on_open=self._opened,
        )
        # Starting from now on (not only once its task runs): a stop that comes first
        # finds it (current_session) and is carried out once it records.
        session.status = SessionStatus.STARTING
        self.sessions.append(session)
        self._set_status("starting")
        self.state = apply_event(self.state, Joined(self._now(), self.recorder))
        self._recorder_in = True
        self._emit(self._client_event(CLIENT_JOINED, self.recorder))
        media = [m for m in map(self._media_of, self.state.people) if m is not None]
        self._stop_when_started = False
        task = asyncio.get_running_loop().create_task(self._started(session, media))
        self._starting = task
        self._store_tasks.add(task)  # close()/wait_stored() wait for it too
        task.add_done_callback(self._store_tasks.discard)

    async def _started(self, session: RecordingSession, media: list[ParticipantMedia]) -> None:
        """Start ``session`` without holding the room (a recorder process may take
        seconds to join and record), then take the lock to carry on: record, or stop
        at once if a stop came meanwhile."""
        try:
            await session.start(media)
            started = True
        except Exception:
            log.exception("room %r: the recording could not start", self.state.name)
            started = False
        async with self._lock:
            if self._starting is asyncio.current_task():
                self._starting = None
            if not self.sessions or self.sessions[-1] is not session:
                return  # its recorder died and a new one records on (_record_on)
            if not started:
                self._stop_when_started = False
                self._recorder_leaves()
                self.state = _not_recording(self.state)
                self._set_status("stopped")
                return
            if session.status != SessionStatus.RECORDING:
                return  # stopped, or died, meanwhile: _stop / _record_on carried on
            if self._stop_when_started:
                self._stop_when_started = False
                log.info("room %r: stopping the recording that just started", self.state.name)
                await self._stop()
                return
            self._set_status("started")
            self._limit_task = asyncio.get_running_loop().create_task(self._enforce_limit())

    async def _stop(self) -> None:
        session = self.current_session
        if self._limit_task is not None and self._limit_task is not asyncio.current_task():
            self._limit_task.cancel()
        self._limit_task = None
        if session is None:
            return
        if session.status == SessionStatus.STARTING:
            # Stopped while starting: stopped as soon as it records (see _started).
            self._stop_when_started = True
            self._set_status("stopping")
            return
        self._set_status("stopping")
        try:
            await session.stop()
        finally:
            # Whatever happened to the file, the recorder leaves and the room is
            # free to record again.
            self._recorder_leaves()
            # The recorder's copies of the tracks are done with: stop them so nothing
            # keeps producing frames nobody reads. A next recording gets fresh ones.
            for media in self._media.values():
                _stop_media(media)
            self._media.clear()
            self._set_status("stopped")
        task = asyncio.get_running_loop().create_task(session.store())
        self._store_tasks.add(task)
        task.add_done_callback(self._store_tasks.discard)

    def _media_failed(self, session: RecordingSession) -> None:
        """The encoder died mid-recording: stop now (the file is kept), not at the next stop."""
        task = asyncio.get_running_loop().create_task(self._stop_failed(session))
        self._store_tasks.add(task)
        task.add_done_callback(self._store_tasks.discard)

    async def _stop_failed(self, session: RecordingSession) -> None:
        async with self._lock:
            if self.current_session is not session:
                return
            log.error("room %r: the recording failed; stopping it", self.state.name)
            # Not again by itself until the room has emptied: it would likely fail again.
            self.state = replace(
                self.state, recording_since=None, auto_start_held=bool(self.state.people)
            )
            await self._stop()

    def recorder_died(self, session: RecordingSession) -> None:
        """The recording's recorder process died (the session has failed, its file is
        kept): if the trigger still wants a recording, a new recorder records on into
        a new file (a new start time, so a new name)."""
        task = asyncio.get_running_loop().create_task(self._record_on(session))
        self._store_tasks.add(task)
        task.add_done_callback(self._store_tasks.discard)

    async def _record_on(self, session: RecordingSession) -> None:
        async with self._lock:
            if not self.sessions or self.sessions[-1] is not session:
                return
            if self._limit_task is not None:
                self._limit_task.cancel()
                self._limit_task = None
            self._recorder_leaves()
            started, died = session.started_at, session.stopped_at
            lived = (died - started).total_seconds() if started and died else 0.0
            self._quick_deaths = self._quick_deaths + 1 if lived < QUICK_DEATH_S else 0
            wanted = self.state.recording_since is not None and bool(self.state.people)
            if not wanted or self._quick_deaths > MAX_QUICK_DEATHS:
                if wanted:
                    log.error(
                        "room %r: the recorder died %d times in a row within %g s: not "
                        "restarting it until the room empties",
                        self.state.name,
                        self._quick_deaths,
                        QUICK_DEATH_S,
                    )
                self.state = replace(
                    self.state, recording_since=None, auto_start_held=bool(self.state.people)
                )
                self._set_status("stopped")
                return
            log.warning(
                "room %r: the recorder died; a new one records on into a new file", self.state.name
            )
            await self._start()

    def _recorder_leaves(self) -> None:
        """The recorder leaves (its recording stopped or failed): ``room.client.left``,
        also when the room closed first (its state has nobody in it then)."""
        if self.state.get(self.recorder.id) is not None:
            self.state = apply_event(self.state, Left(self._now(), self.recorder.id))
        if self._recorder_in:
            self._recorder_in = False
            self._emit(self._client_event(CLIENT_LEFT, self.recorder))

    async def _enforce_limit(self) -> None:
        """Stop the recording at the room's maximum duration, whatever the trigger does."""
        started = self.state.recording_since
        if started is None:
            return
        delay = started + self.state.max_duration - self._now()
        await asyncio.sleep(max(delay, 0))
        await self.tick()


def _stop_media(media: ParticipantMedia) -> None:
    try:
        media.stop()
    except Exception:  # a source's bug must not stop the room
        log.exception("stopping the media of %r failed", media.participant.id)


def _not_recording(state: RoomState) -> RoomState:
    return replace(state, recording_since=None)
