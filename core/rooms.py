"""Room state and room events: the input every trigger decides on.

Everything here is an immutable value. :func:`apply_event` is the one place that
turns (state, event) into the next state, so triggers, the engine and the
property-based tests agree on what an event means.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from enum import StrEnum

from .defaults import DEFAULT_MAX_DURATION


class Role(StrEnum):
    """A participant's role. Only ``host`` and ``visitor`` count as people."""

    HOST = "host"
    VISITOR = "visitor"
    RECORDER = "recorder"

    @property
    def is_person(self) -> bool:
        return self in (Role.HOST, Role.VISITOR)


@dataclass(frozen=True)
class Participant:
    """Someone (or something) in a room."""

    id: str
    display_name: str = ""
    role: Role = Role.VISITOR
    external_id: str | None = None
    metadata: str | None = None

    @property
    def is_person(self) -> bool:
        # Roles recfw does not know (a plugin's "observer") never count as people.
        return self.role in (Role.HOST, Role.VISITOR)

    @property
    def is_host(self) -> bool:
        return self.role == Role.HOST


# --- events ---------------------------------------------------------------


@dataclass(frozen=True)
class RoomEvent:
    """Base class of room events. ``at`` is seconds on the room's clock."""

    at: float


@dataclass(frozen=True)
class Joined(RoomEvent):
    participant: Participant


@dataclass(frozen=True)
class Left(RoomEvent):
    participant_id: str


@dataclass(frozen=True)
class StartCommand(RoomEvent):
    """Someone pressed Record (or called ``startRecording()``)."""

    participant_id: str


@dataclass(frozen=True)
class StopCommand(RoomEvent):
    """Someone pressed Stop (or called ``stopRecording()``)."""

    participant_id: str


@dataclass(frozen=True)
class PromptAnswer(RoomEvent):
    """The participant shown the recording prompt accepted or declined it."""

    participant_id: str
    accepted: bool


@dataclass(frozen=True)
class RoomClosed(RoomEvent):
    """The room ended: everyone is gone and nothing may keep recording."""


@dataclass(frozen=True)
class Tick(RoomEvent):
    """Time passed; lets time-based rules (maximum duration) fire."""


# --- state ----------------------------------------------------------------


@dataclass(frozen=True)
class RoomState:
    """What a trigger sees: who is present and whether a recording runs.

    ``recording_since`` is the room-clock time the running recording started,
    or ``None`` when no recording runs. ``prompted`` is the id of the host who
    is being shown the "start recording?" prompt, if any. ``auto_start_held``
    is set when a recording must not start again by itself until the room has
    emptied (a host declined the prompt, or the maximum duration was reached).
    """

    name: str
    participants: tuple[Participant, ...] = ()
    recording_since: float | None = None
    prompted: str | None = None
    auto_start_held: bool = False
    max_duration: float = DEFAULT_MAX_DURATION
    now: float = 0.0
    closed: bool = False

    @property
    def recording(self) -> bool:
        return self.recording_since is not None

    @property
    def people(self) -> tuple[Participant, ...]:
        """Participants who count as people (never the recorder)."""
        return tuple(p for p in self.participants if p.is_person)

    @property
    def hosts(self) -> tuple[Participant, ...]:
        return tuple(p for p in self.participants if p.is_host)

    def get(self, participant_id: str) -> Participant | None:
        for p in self.participants:
            if p.id == participant_id:
                return p
        return None

    def is_host(self, participant_id: str) -> bool:
        p = self.get(participant_id)
        return p is not None and p.is_host

    def count_by_role(self) -> dict[str, int]:
        return dict(Counter(str(p.role) for p in self.participants))


def apply_event(state: RoomState, event: RoomEvent) -> RoomState:
    """Return the room state after ``event`` (membership, clock, closing).

    Nonsense is tolerated, never fatal: a leave of someone absent or a second
    join of the same id change nothing. Recording status is not changed here;
    that follows from the trigger's decision (see ``recfw.triggers``).
    """
    now = max(state.now, event.at)
    if isinstance(event, Joined):
        if state.closed or state.get(event.participant.id) is not None:
            return replace(state, now=now)
        return replace(state, participants=state.participants + (event.participant,), now=now)
    if isinstance(event, Left):
        remaining = tuple(p for p in state.participants if p.id != event.participant_id)
        prompted = state.prompted if state.prompted != event.participant_id else None
        held = state.auto_start_held and any(p.is_person for p in remaining)
        return replace(
            state, participants=remaining, prompted=prompted, auto_start_held=held, now=now
        )
    if isinstance(event, RoomClosed):
        return replace(
            state, participants=(), prompted=None, auto_start_held=False, closed=True, now=now
        )
    return replace(state, now=now)
