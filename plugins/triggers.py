"""The four built-in start triggers, by their ``startTrigger`` names.

* ``automatic``: starts when the first person joins;
* ``automatic-2nd-participant``: starts when two people are in the room;
* ``prompt``: asks a host, starts when a host accepts;
* ``none``: starts only when a host presses Record (``startRecording()``).

The recorder (and any role that is not a person) never counts. Each is a pure
decision on (room state after the event, event). The rules that hold for every
trigger (never two recordings, only hosts by hand, stop when the room is
empty, maximum duration) are enforced again by ``recfw.triggers.step``.
"""

from __future__ import annotations

from dataclasses import replace

from recfw import hookimpl
from recfw.rooms import (
    Joined,
    Left,
    PromptAnswer,
    RoomEvent,
    RoomState,
    StartCommand,
    StopCommand,
)
from recfw.triggers import NOTHING, Action, Decision


def _host_command(state: RoomState, event: RoomEvent) -> Decision | None:
    """Start/Stop pressed by a host; a non-host's press is refused."""
    if isinstance(event, StartCommand | StopCommand):
        verb = "start" if isinstance(event, StartCommand) else "stop"
        if not state.is_host(event.participant_id):
            return Decision(
                Action.REFUSE, f"only a host may {verb} a recording", event.participant_id
            )
        if isinstance(event, StartCommand):
            if state.recording:
                return Decision(
                    Action.REFUSE, "a recording is already running", event.participant_id
                )
            return Decision(Action.START, "a host pressed Record", event.participant_id)
        if not state.recording:
            return Decision(Action.REFUSE, "no recording is running", event.participant_id)
        return Decision(Action.STOP, "a host pressed Stop", event.participant_id)
    return None


def _stop_when_empty(state: RoomState) -> Decision | None:
    if state.recording and not state.people:
        return Decision(Action.STOP, "the last person left")
    return None


class _AutoStart:
    """Starts when ``people_needed`` people are present; stops when the last leaves."""

    name: str
    label: str
    people_needed: int

    def decide(self, state: RoomState, event: RoomEvent) -> Decision:
        if isinstance(event, StartCommand | StopCommand):
            return Decision(
                Action.REFUSE,
                f"recording is automatic in this room ({self.name}); it cannot be started or "
                "stopped by hand",
                event.participant_id,
            )
        stop = _stop_when_empty(state)
        if stop:
            return stop
        if (
            not state.recording
            and not state.auto_start_held
            and len(state.people) >= self.people_needed
        ):
            who = "a person is" if self.people_needed == 1 else f"{self.people_needed} people are"
            return Decision(Action.START, f"{who} in the room")
        return NOTHING


class AutomaticTrigger(_AutoStart):
    """``automatic``: the first person joining starts; the last leaving stops."""

    name = "automatic"
    label = "Auto-start (1 person)"
    people_needed = 1


class AutomaticSecondParticipantTrigger(_AutoStart):
    """``automatic-2nd-participant``: two people present start; the last leaving stops."""

    name = "automatic-2nd-participant"
    label = "Auto-start (2 people)"
    people_needed = 2


class PromptTrigger:
    """``prompt``: the first host is asked; accepting starts. A host stops it.

    A host may also press Record by hand. If the prompted host declines, or a host
    stops the recording, nobody is asked again until the room has emptied; if the
    prompted host leaves unanswered, the next host is asked. Joins and leaves of
    the recorder (or any non-person role) never prompt anyone.
    """

    name = "prompt"
    label = "Prompt host"

    def decide(self, state: RoomState, event: RoomEvent) -> Decision:
        command = _host_command(state, event)
        if command:
            if command.action == Action.STOP:
                # The host said no: do not ask again until the room has emptied.
                return replace(command, hold=True)
            return command
        stop = _stop_when_empty(state)
        if stop:
            return stop
        if isinstance(event, PromptAnswer):
            if event.participant_id != state.prompted:
                return Decision(
                    Action.REFUSE, "that participant was not asked", event.participant_id
                )
            if event.accepted and not state.recording:
                return Decision(Action.START, "the host accepted the prompt", event.participant_id)
            return NOTHING
        if isinstance(event, Joined) and not event.participant.is_person:
            return NOTHING
        if (
            isinstance(event, Joined | Left)
            and not state.recording
            and state.prompted is None
            and not state.auto_start_held
            and state.hosts
        ):
            host = state.hosts[0]
            return Decision(Action.PROMPT, "asking the first host whether to record", host.id)
        return NOTHING


class ManualTrigger:
    """``none``: a host presses Record and Stop; the last person leaving stops."""

    name = "none"
    label = "Manual"

    def decide(self, state: RoomState, event: RoomEvent) -> Decision:
        command = _host_command(state, event)
        if command:
            return command
        return _stop_when_empty(state) or NOTHING


BUILTIN_TRIGGERS = (
    AutomaticTrigger(),
    AutomaticSecondParticipantTrigger(),
    PromptTrigger(),
    ManualTrigger(),
)


@hookimpl
def recfw_register_triggers(register):
    for trigger in BUILTIN_TRIGGERS:
        register(trigger)
