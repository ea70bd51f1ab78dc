"""A room to drive a trigger by hand in tests: :class:`TempRoom`.

::

    room = TempRoom(trigger)               # or the ``temp_room`` pytest fixture
    room.join("ana", host=True)
    assert room.recording
    room.leave("ana")
    assert room.decisions[-1].action == Action.STOP

Every event goes through :func:`recfw.triggers.step`, exactly as in the engine,
so the rules that hold for every trigger are enforced here too.
"""

from __future__ import annotations

from ..defaults import DEFAULT_MAX_DURATION
from ..rooms import (
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
)
from ..triggers import Decision, Trigger, step


class TempRoom:
    """A :class:`RoomState` and a trigger; each helper applies one event and returns the decision.

    ``at`` defaults to the room's current time; :meth:`tick` moves the clock.
    """

    def __init__(
        self, trigger: Trigger, name: str = "test-room", max_duration: float = DEFAULT_MAX_DURATION
    ):
        self.trigger = trigger
        self.state = RoomState(name=name, max_duration=max_duration)
        self.events: list[RoomEvent] = []
        self.decisions: list[Decision] = []

    @property
    def recording(self) -> bool:
        return self.state.recording

    def apply(self, event: RoomEvent) -> Decision:
        """Apply any :class:`RoomEvent` through ``step``; remember and return the decision."""
        self.state, decision = step(self.trigger, self.state, event)
        self.events.append(event)
        self.decisions.append(decision)
        return decision

    def _at(self, at: float | None) -> float:
        return self.state.now if at is None else at

    def join(
        self,
        participant_id: str,
        *,
        host: bool = False,
        role: Role | str | None = None,
        at: float | None = None,
    ) -> Decision:
        """``participant_id`` joins as a visitor (``host=True``: a host; or any ``role``)."""
        role = Role(role) if role is not None else (Role.HOST if host else Role.VISITOR)
        return self.apply(Joined(self._at(at), Participant(participant_id, participant_id, role)))

    def leave(self, participant_id: str, *, at: float | None = None) -> Decision:
        return self.apply(Left(self._at(at), participant_id))

    def start(self, participant_id: str, *, at: float | None = None) -> Decision:
        """``participant_id`` presses Record."""
        return self.apply(StartCommand(self._at(at), participant_id))

    def stop(self, participant_id: str, *, at: float | None = None) -> Decision:
        """``participant_id`` presses Stop."""
        return self.apply(StopCommand(self._at(at), participant_id))

    def answer(self, participant_id: str, accepted: bool, *, at: float | None = None) -> Decision:
        """``participant_id`` answers the recording prompt."""
        return self.apply(PromptAnswer(self._at(at), participant_id, accepted))

    def tick(self, seconds: float = 1.0) -> Decision:
        """Let ``seconds`` pass on the room's clock."""
        return self.apply(Tick(self.state.now + seconds))

    def close(self, *, at: float | None = None) -> Decision:
        return self.apply(RoomClosed(self._at(at)))


__all__ = ["TempRoom"]
