"""The four built-in triggers, driven through ``recfw.triggers.step``.

Property-based tests generate arbitrary event sequences and check, after every
step, the rules that hold for every trigger.
Example tests pin each trigger's row of the semantics table.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recfw.plugins.triggers import BUILTIN_TRIGGERS
from recfw.rooms import (
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
from recfw.triggers import Action, Decision, step

TRIGGERS = {t.name: t for t in BUILTIN_TRIGGERS}
MAX_DURATION = 100.0

# --- strategies ---------------------------------------------------------------

# A small pool of person ids makes re-joins, leaves of present people and
# commands from present hosts common; "ghost" ids are never in the room.
PERSON_IDS = [f"p{i}" for i in range(3)]
GHOST_IDS = ["ghost", "nobody"]
RECORDER_IDS = ["rec0", "rec1"]

# Each step is (kind, payload, time advance in seconds).
person_role = st.sampled_from([Role.HOST, Role.VISITOR])
# Mostly small steps (recordings run a while), sometimes past the maximum duration.
advance = st.one_of(
    st.just(0.0),
    st.floats(0.0, 5.0),
    st.floats(0.0, 5.0),
    st.floats(0.0, 2 * MAX_DURATION),
)
anyone = st.sampled_from(PERSON_IDS + GHOST_IDS + RECORDER_IDS)

raw_event = st.one_of(
    st.tuples(st.just("join"), st.tuples(st.sampled_from(PERSON_IDS), person_role), advance),
    st.tuples(st.just("join_recorder"), st.sampled_from(RECORDER_IDS), advance),
    st.tuples(st.just("leave"), anyone, advance),
    st.tuples(st.just("start"), anyone, advance),
    st.tuples(st.just("stop"), anyone, advance),
    st.tuples(st.just("answer"), st.tuples(anyone, st.booleans()), advance),
    st.tuples(st.just("tick"), st.none(), advance),
    st.tuples(st.just("close"), st.none(), advance),
)
raw_events = st.lists(raw_event, max_size=40)
# Sequences without recorder events and without closing, for the recorder comparison.
person_event = st.one_of(
    st.tuples(st.just("join"), st.tuples(st.sampled_from(PERSON_IDS), person_role), advance),
    st.tuples(st.just("leave"), st.sampled_from(PERSON_IDS + GHOST_IDS), advance),
    st.tuples(st.just("start"), st.sampled_from(PERSON_IDS + GHOST_IDS), advance),
    st.tuples(st.just("stop"), st.sampled_from(PERSON_IDS + GHOST_IDS), advance),
    st.tuples(st.just("answer"), st.tuples(st.sampled_from(PERSON_IDS), st.booleans()), advance),
    st.tuples(st.just("tick"), st.none(), advance),
)
recorder_event = st.one_of(
    st.tuples(st.just("join_recorder"), st.sampled_from(RECORDER_IDS), st.just(0.0)),
    st.tuples(st.just("leave_recorder"), st.sampled_from(RECORDER_IDS), st.just(0.0)),
)
trigger_names = st.sampled_from(sorted(TRIGGERS))


def to_events(raw: list) -> list[RoomEvent]:
    """Turn generated tuples into room events on a clock that never goes back."""
    events: list[RoomEvent] = []
    now = 0.0
    for kind, payload, dt in raw:
        now += dt
        if kind == "join":
            pid, role = payload
            events.append(Joined(now, Participant(pid, pid.upper(), role)))
        elif kind == "join_recorder":
            events.append(Joined(now, Participant(payload, "Recorder", Role.RECORDER)))
        elif kind in ("leave", "leave_recorder"):
            events.append(Left(now, payload))
        elif kind == "start":
            events.append(StartCommand(now, payload))
        elif kind == "stop":
            events.append(StopCommand(now, payload))
        elif kind == "answer":
            events.append(PromptAnswer(now, payload[0], payload[1]))
        elif kind == "tick":
            events.append(Tick(now))
        else:
            events.append(RoomClosed(now))
    return events


def new_room() -> RoomState:
    return RoomState("room", max_duration=MAX_DURATION)


def run(trigger, events):
    """Drive ``trigger`` through ``events``; yield (before, event, after, decision)."""
    state = new_room()
    for event in events:
        after, decision = step(trigger, state, event)
        yield state, event, after, decision
        state = after


# --- invariants ---------------------------------------------------------------

fast = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(name=trigger_names, raw=raw_events)
def test_invariants_hold_after_every_step(name, raw):
    trigger = TRIGGERS[name]
    for before, event, after, decision in run(trigger, to_events(raw)):
        assert isinstance(decision, Decision)
        # Never two recordings: no START while one runs.
        if decision.action == Action.START:
            assert not before.recording, "START while a recording was running"
            assert after.recording and after.recording_since == after.now
        if decision.action == Action.STOP:
            assert before.recording and not after.recording
        # Recording status changes only through a decision.
        if decision.action not in (Action.START, Action.STOP):
            assert after.recording_since == before.recording_since
        # A recording never runs without people (the recorder never counts).
        if after.recording:
            assert after.people, "recording in a room without people"
            assert all(p.role != Role.RECORDER for p in after.people)
            # ... and never reaches the maximum duration.
            assert after.now - after.recording_since < after.max_duration
        # Only someone who was asked can be prompted, and only a present host.
        if after.prompted is not None:
            assert after.is_host(after.prompted)
            assert not after.recording
        if isinstance(event, RoomClosed):
            assert not after.recording and not after.participants


@fast
@given(name=trigger_names, raw=raw_events)
def test_only_hosts_start_or_stop_by_hand(name, raw):
    """A command from a non-host changes nothing that a Tick at that moment would not."""
    trigger = TRIGGERS[name]
    for before, event, after, decision in run(trigger, to_events(raw)):
        if not isinstance(event, StartCommand | StopCommand):
            continue
        if before.is_host(event.participant_id):
            continue
        assert decision.action in (Action.REFUSE, Action.STOP, Action.NOTHING)
        tick_after, tick_decision = step(trigger, before, Tick(event.at))
        assert after == tick_after
        if decision.action == Action.STOP:
            # Only a rule that holds anyway (maximum duration) may stop here.
            assert tick_decision.action == Action.STOP
            assert "maximum duration" in decision.reason


@fast
@given(name=trigger_names, raw=raw_events)
def test_commands_cause_start_or_stop_only_from_hosts(name, raw):
    trigger = TRIGGERS[name]
    for before, event, _after, decision in run(trigger, to_events(raw)):
        if decision.action == Action.START and isinstance(event, StartCommand):
            assert before.is_host(event.participant_id)
        if decision.action == Action.START and isinstance(event, StopCommand):
            pytest.fail("a Stop command started a recording")
        if (
            decision.action == Action.STOP
            and isinstance(event, StopCommand)
            and "maximum duration" not in decision.reason
        ):
            assert before.is_host(event.participant_id)


@fast
@given(name=trigger_names, raw=raw_events)
def test_recording_stops_when_no_people_remain(name, raw):
    trigger = TRIGGERS[name]
    for before, _event, after, decision in run(trigger, to_events(raw)):
        if before.recording and not after.people:
            assert decision.action == Action.STOP
            assert not after.recording


@settings(fast, max_examples=1000)
@given(
    name=trigger_names,
    raw=st.lists(st.one_of(person_event, recorder_event), max_size=30),
)
def test_recorder_events_never_change_a_decision(name, raw):
    """The same sequence with recorders joining and leaving gives the same decisions.

    Recorder events take no time (``advance`` is 0), so they do not move the
    room's clock either.
    """
    trigger = TRIGGERS[name]
    is_recorder = [kind in ("join_recorder", "leave_recorder") for kind, _, _ in raw]
    mixed = list(run(trigger, to_events(raw)))
    plain_raw = [r for r, rec in zip(raw, is_recorder, strict=True) if not rec]
    plain = iter(run(trigger, to_events(plain_raw)))
    for rec, (before, _event, after, decision) in zip(is_recorder, mixed, strict=True):
        if rec:
            assert decision.action == Action.NOTHING, decision
            assert after.recording_since == before.recording_since
            assert after.prompted == before.prompted
            continue
        _b, _e, plain_after, plain_decision = next(plain)
        assert decision == plain_decision
        assert (
            after.recording_since,
            after.prompted,
            after.auto_start_held,
            after.people,
        ) == (
            plain_after.recording_since,
            plain_after.prompted,
            plain_after.auto_start_held,
            plain_after.people,
        )


@fast
@given(name=trigger_names, raw=raw_events, ticks=st.lists(st.floats(0.0, 500.0), max_size=10))
def test_recording_never_outlasts_max_duration(name, raw, ticks):
    trigger = TRIGGERS[name]
    events = to_events(raw)
    now = events[-1].at if events else 0.0
    for dt in ticks:
        now += dt
        events.append(Tick(now))
    for _before, event, after, _decision in run(trigger, events):
        if isinstance(event, Tick) and after.recording:
            assert after.now - after.recording_since < after.max_duration


@fast
@given(name=trigger_names, raw=raw_events)
def test_decisions_are_pure(name, raw):
    """The same state and event always give the same decision; nothing is mutated."""
    trigger = TRIGGERS[name]
    for before, event, after, decision in run(trigger, to_events(raw)):
        again_state, again_decision = step(trigger, before, event)
        assert (again_state, again_decision) == (after, decision)
        # decide() itself, on equal but distinct state objects.
        copy = replace(after, participants=tuple(after.participants))
        assert trigger.decide(after, event) == trigger.decide(copy, event)


# --- each trigger's start and stop, by example ------------------------------------


def host(pid="h1"):
    return Participant(pid, "Host " + pid, Role.HOST)


def visitor(pid="v1"):
    return Participant(pid, "Visitor " + pid, Role.VISITOR)


def recorder(pid="rec"):
    return Participant(pid, "Recorder", Role.RECORDER)


class Room:
    """A room driven by one trigger, remembering the decisions."""

    def __init__(self, trigger_name: str, max_duration: float = MAX_DURATION):
        self.trigger = TRIGGERS[trigger_name]
        self.state = RoomState("standup", max_duration=max_duration)
        self.t = 0.0

    def __call__(self, event_type, *args, dt: float = 1.0) -> Decision:
        self.t += dt
        self.state, decision = step(self.trigger, self.state, event_type(self.t, *args))
        return decision

    def join(self, p):
        return self(Joined, p)

    def leave(self, pid):
        return self(Left, pid)


def test_automatic_starts_at_first_person_and_stops_at_last():
    room = Room("automatic")
    assert room.join(recorder()).action == Action.NOTHING
    assert room.join(visitor("v1")).action == Action.START
    assert room.join(host("h1")).action == Action.NOTHING
    assert room.leave("v1").action == Action.NOTHING
    assert room.state.recording
    assert room.leave("h1").action == Action.STOP  # the recorder alone is nobody
    assert not room.state.recording
    assert room.join(host("h2")).action == Action.START  # a new recording


def test_automatic_refuses_manual_commands():
    room = Room("automatic")
    room.join(host())
    assert room(StopCommand, "h1").action == Action.REFUSE
    assert room.state.recording
    assert room(StartCommand, "h1").action == Action.REFUSE


def test_automatic_second_participant_waits_for_two_people():
    room = Room("automatic-2nd-participant")
    assert room.join(host("h1")).action == Action.NOTHING
    assert room.join(recorder()).action == Action.NOTHING  # not a person
    assert not room.state.recording
    assert room.join(visitor("v1")).action == Action.START
    assert room.leave("h1").action == Action.NOTHING  # one person is still there
    assert room.state.recording
    assert room.leave("v1").action == Action.STOP


def test_prompt_asks_first_host_and_accept_starts():
    room = Room("prompt")
    assert room.join(visitor("v1")).action == Action.NOTHING  # no host to ask
    d = room.join(host("h1"))
    assert (d.action, d.participant_id) == (Action.PROMPT, "h1")
    assert room.join(host("h2")).action == Action.NOTHING  # h1 is being asked
    assert room(PromptAnswer, "h2", True).action == Action.REFUSE  # h2 was not asked
    assert not room.state.recording
    assert room(PromptAnswer, "h1", True).action == Action.START
    assert room.state.prompted is None
    assert room(StopCommand, "v1").action == Action.REFUSE
    assert room(StopCommand, "h2").action == Action.STOP


def test_prompt_decline_holds_until_room_is_empty():
    room = Room("prompt")
    room.join(host("h1"))
    assert room(PromptAnswer, "h1", False).action == Action.NOTHING
    assert not room.state.recording and room.state.prompted is None
    assert room.join(host("h2")).action == Action.NOTHING  # nobody is asked again
    assert room.leave("h1").action == Action.NOTHING
    assert room.leave("h2").action == Action.NOTHING
    d = room.join(host("h3"))  # the room emptied: ask again
    assert (d.action, d.participant_id) == (Action.PROMPT, "h3")


def test_prompt_decline_does_not_stop_a_host_starting_by_hand():
    room = Room("prompt")
    room.join(host("h1"))
    room(PromptAnswer, "h1", False)
    assert room(StartCommand, "h1").action == Action.START


def test_prompt_next_host_is_asked_when_prompted_host_leaves():
    room = Room("prompt")
    room.join(host("h1"))
    room.join(host("h2"))
    room.join(visitor("v1"))
    assert room.state.prompted == "h1"
    d = room.leave("h1")
    assert (d.action, d.participant_id) == (Action.PROMPT, "h2")
    assert room(PromptAnswer, "h1", True).action == Action.REFUSE  # gone, no longer asked
    assert room(PromptAnswer, "h2", True).action == Action.START


def test_prompt_host_stop_is_not_followed_by_a_new_prompt():
    room = Room("prompt")
    room.join(host("h1"))
    room(PromptAnswer, "h1", True)
    assert room(StopCommand, "h1").action == Action.STOP
    assert room.join(visitor("v1")).action == Action.NOTHING
    assert room.join(recorder()).action == Action.NOTHING


def test_prompt_recorder_is_never_asked():
    room = Room("prompt")
    assert room.join(recorder()).action == Action.NOTHING
    assert room.state.prompted is None


def test_manual_host_records_and_stops_visitor_refused():
    room = Room("none")
    room.join(host("h1"))
    room.join(visitor("v1"))
    assert not room.state.recording
    assert room(StartCommand, "v1").action == Action.REFUSE
    assert room(StartCommand, "ghost").action == Action.REFUSE
    assert room(StartCommand, "h1").action == Action.START
    assert room(StartCommand, "h1").action == Action.REFUSE  # never two recordings
    assert room(StopCommand, "v1").action == Action.REFUSE
    assert room.state.recording
    assert room(StopCommand, "h1").action == Action.STOP
    assert room(StopCommand, "h1").action == Action.REFUSE  # nothing to stop


def test_recorder_cannot_command():
    room = Room("none")
    room.join(host("h1"))
    room.join(recorder("rec"))
    assert room(StartCommand, "rec").action == Action.REFUSE
    assert not room.state.recording


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_last_person_leaving_stops_in_every_mode(name):
    room = Room(name)
    room.join(host("h1"))
    room.join(visitor("v1"))
    room.join(recorder())
    if room.state.prompted:
        room(PromptAnswer, room.state.prompted, True)
    if not room.state.recording:
        room(StartCommand, "h1")
    assert room.state.recording
    room.leave("h1")
    assert room.leave("v1").action == Action.STOP
    assert not room.state.recording


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_max_duration_stops_and_holds(name):
    room = Room(name, max_duration=60.0)
    room.join(host("h1"))
    room.join(visitor("v1"))
    if room.state.prompted:
        room(PromptAnswer, room.state.prompted, True)
    if not room.state.recording:
        room(StartCommand, "h1")
    assert room(Tick, dt=58.0).action == Action.NOTHING
    d = room(Tick, dt=5.0)
    assert d.action == Action.STOP and "maximum duration" in d.reason
    # Nothing restarts by itself while the same people are there.
    assert room.join(visitor("v2")).action == Action.NOTHING
    assert not room.state.recording


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_room_closed_stops_and_keeps_room_closed(name):
    room = Room(name)
    room.join(host("h1"))
    room.join(visitor("v1"))
    if room.state.prompted:
        room(PromptAnswer, "h1", True)
    if not room.state.recording:
        room(StartCommand, "h1")
    assert room(RoomClosed).action == Action.STOP
    assert room.join(host("h2")).action == Action.NOTHING
    assert not room.state.participants and not room.state.recording


def test_unknown_roles_are_not_people():
    """A role recfw does not know (a plugin's "observer") never counts as a person."""
    room = Room("automatic")
    d = room.join(Participant("o1", "Observer", "observer"))
    assert d.action == Action.NOTHING
    assert room.state.people == ()
    assert room.state.count_by_role() == {"observer": 1}


def test_trigger_names_and_labels_match_design():
    assert {name: t.label for name, t in TRIGGERS.items()} == {
        "automatic": "Auto-start (1 person)",
        "automatic-2nd-participant": "Auto-start (2 people)",
        "prompt": "Prompt host",
        "none": "Manual",
    }


class Broken:
    """A third-party trigger that raises or answers nonsense."""

    name = "broken"
    label = "Broken"

    def __init__(self, answer):
        self.answer = answer

    def decide(self, state, event):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    "answer", [RuntimeError("bug"), None, "start", Decision("begin")], ids=repr
)
def test_a_broken_trigger_does_nothing_but_the_rules_still_hold(answer, caplog):
    good = TRIGGERS["automatic"]
    state = new_room()
    state, _ = step(good, state, Joined(1.0, host("h1")))
    assert state.recording
    broken = Broken(answer)
    state, decision = step(broken, state, Joined(2.0, visitor("v1")))
    assert decision.action == Action.NOTHING
    assert "'broken'" in caplog.text
    state, decision = step(broken, state, Tick(2.0 + MAX_DURATION))
    assert decision.action == Action.STOP  # the maximum duration still applies
    state, _ = step(good, state, Joined(300.0, visitor("v2")))
    state, _ = step(broken, state, StartCommand(301.0, "h1"))
    assert not state.recording  # nothing starts on a broken trigger's word
    state = replace(state, recording_since=301.0)
    state, decision = step(broken, state, RoomClosed(302.0))
    assert decision.action == Action.STOP and not state.recording


def test_plain_string_actions_are_understood():
    state, decision = step(Broken(Decision("start")), new_room(), Joined(1.0, host("h1")))
    assert decision.action is Action.START and state.recording


# --- room state ----------------------------------------------------------------


def test_apply_event_tolerates_nonsense():
    from recfw.rooms import apply_event

    state = apply_event(new_room(), Joined(5.0, host("h1")))
    assert [p.id for p in state.participants] == ["h1"] and state.now == 5.0
    again = apply_event(state, Joined(6.0, visitor("h1")))  # same id: ignored
    assert again.participants == state.participants and again.get("h1").is_host
    assert apply_event(state, Left(7.0, "ghost")).participants == state.participants
    assert apply_event(state, Tick(1.0)).now == 5.0  # the clock never goes back
    closed = apply_event(state, RoomClosed(8.0))
    assert closed.closed and closed.participants == ()
    assert apply_event(closed, Joined(9.0, host("h2"))).participants == ()


def test_people_hosts_and_counts():
    state = RoomState(
        "r",
        participants=(host("h1"), visitor("v1"), recorder("rec"), Participant("x", role="guest")),
    )
    assert [p.id for p in state.people] == ["h1", "v1"]
    assert [p.id for p in state.hosts] == ["h1"]
    assert state.is_host("h1") and not state.is_host("v1") and not state.is_host("nobody")
    assert state.count_by_role() == {"host": 1, "visitor": 1, "recorder": 1, "guest": 1}
