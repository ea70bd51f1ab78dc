"""The triggers' contract: a pure function of (room state, event) to a decision.

A trigger plugin provides an object with a ``name`` and a ``decide`` method. It
does no I/O, keeps no state of its own and never reads a clock: everything it
may look at is in the :class:`~recfw.rooms.RoomState` it is given. That makes
every trigger testable with any sequence of events (see ``recfw.testing``).

:func:`step` is how the engine drives a trigger. It applies the event to the
state, asks the trigger, then enforces the rules that hold for every trigger
whatever it decided (DESIGN.md, "Start triggers"):

* a room never has two recordings at once;
* only a host may start or stop a recording by hand;
* a room left empty (of people: the recorder never counts) stops the recording;
* a recording never runs longer than the room's ``max_duration``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol, runtime_checkable

from .rooms import (
    PromptAnswer,
    RoomEvent,
    RoomState,
    StartCommand,
    StopCommand,
    apply_event,
)

log = logging.getLogger(__name__)


class Action(StrEnum):
    NOTHING = "nothing"
    START = "start"
    STOP = "stop"
    PROMPT = "prompt"  # ask ``participant_id`` (a host) whether to record
    REFUSE = "refuse"  # a command was refused; ``reason`` says why


@dataclass(frozen=True)
class Decision:
    """What should happen after an event, and why (the why goes to the log)."""

    action: Action = Action.NOTHING
    reason: str = ""
    participant_id: str | None = None
    #: With STOP: do not start again by itself until the room has emptied.
    hold: bool = False


NOTHING = Decision()


@runtime_checkable
class Trigger(Protocol):
    """A start trigger. ``name`` is its ``startTrigger`` value in settings."""

    name: str
    #: One line for ``recfw plugins`` and the dashboard ("Auto-start (1 person)").
    label: str

    def decide(self, state: RoomState, event: RoomEvent) -> Decision:
        """Return what to do now that ``event`` has happened.

        ``state`` is the room *after* the event (the joiner is already among the
        participants, the leaver already gone), with ``state.recording`` telling
        whether a recording runs. Must be pure: the same arguments always give
        the same decision, and nothing outside is read or changed.
        """
        ...


def _command_refusal(state: RoomState, event: RoomEvent) -> Decision | None:
    if isinstance(event, StartCommand | StopCommand) and not state.is_host(event.participant_id):
        verb = "start" if isinstance(event, StartCommand) else "stop"
        return Decision(
            Action.REFUSE,
            f"only a host may {verb} a recording; {event.participant_id!r} is not a host",
            event.participant_id,
        )
    return None


def enforce_rules(state: RoomState, event: RoomEvent, decision: Decision) -> Decision:
    """Correct a trigger's decision so that the rules for every trigger hold."""
    if state.recording:
        if not state.people:
            return Decision(Action.STOP, "the room has no people left")
        since = state.now if state.recording_since is None else state.recording_since
        if state.now - since >= state.max_duration:
            reason = f"the maximum duration ({state.max_duration:g} s) was reached"
            return Decision(Action.STOP, reason, hold=True)
    refusal = _command_refusal(state, event)
    if refusal is not None:
        return refusal
    if decision.action == Action.START and (state.recording or not state.people or state.closed):
        return NOTHING
    if decision.action == Action.STOP and not state.recording:
        return NOTHING
    if decision.action == Action.PROMPT and (
        state.recording or not state.is_host(decision.participant_id or "")
    ):
        return NOTHING
    return decision


def _ask(trigger: Trigger, state: RoomState, event: RoomEvent) -> Decision:
    """The trigger's decision; a trigger that raises or answers nonsense means NOTHING.

    A broken trigger plugin must not take the room down: the rules above still
    stop an emptied room and a recording at its maximum duration.
    """
    name = getattr(trigger, "name", type(trigger).__name__)
    try:
        decision = trigger.decide(state, event)
    except Exception:
        log.exception("trigger %r failed on %s; doing nothing", name, type(event).__name__)
        return NOTHING
    try:
        if not isinstance(decision, Decision):
            raise ValueError
        return replace(decision, action=Action(decision.action))  # "start" is START
    except ValueError:
        log.error("trigger %r returned %r, not a Decision; doing nothing", name, decision)
        return NOTHING


def step(trigger: Trigger, state: RoomState, event: RoomEvent) -> tuple[RoomState, Decision]:
    """Apply ``event``, ask ``trigger``, enforce the rules; return (new state, decision).

    The returned state already reflects the decision: ``recording_since`` is set
    on START and cleared on STOP, ``prompted`` is set on PROMPT.
    """
    state = apply_event(state, event)
    decision = enforce_rules(state, event, _ask(trigger, state, event))
    if decision.action == Action.START:
        state = replace(state, recording_since=state.now, prompted=None)
    elif decision.action == Action.STOP:
        held = (state.auto_start_held or decision.hold) and bool(state.people)
        state = replace(state, recording_since=None, auto_start_held=held)
    elif decision.action == Action.PROMPT:
        state = replace(state, prompted=decision.participant_id)
    if (
        isinstance(event, PromptAnswer)
        and not event.accepted
        and event.participant_id == state.prompted
    ):
        state = replace(state, prompted=None, auto_start_held=True)
    return state, decision
