"""The strategies generate what they promise: valid settings are valid, broken ones name a field."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from recfw.naming import join_key, recording_file_name
from recfw.rooms import Joined, Left, Role, RoomEvent
from recfw.testing import strategies as rst

FAST = settings(max_examples=150, deadline=None, database=None)


def _installed(plugins) -> rst.Installed:
    """The built-in names (a third-party sink installed here may have rules of its own)."""
    installed = rst.Installed.from_plugins(plugins)
    assert installed.formats, "no encoder installed"
    return rst.Installed(installed.triggers, installed.formats, ("s3",))


def test_valid_settings_are_valid(builtin_plugins):
    @FAST
    @given(rst.recording_settings(_installed(builtin_plugins)))
    def check(data):
        assert rst.settings_errors(data, builtin_plugins) == []

    check()


def test_invalid_settings_name_the_broken_field(builtin_plugins):
    seen: Counter[str] = Counter()

    @settings(max_examples=400, deadline=None, database=None)
    @given(rst.invalid_recording_settings(_installed(builtin_plugins)))
    def check(case):
        data, field = case
        errors = rst.settings_errors(data, builtin_plugins)
        assert errors, f"no error for {data}"
        assert any(e.field.startswith(field) for e in errors), (field, errors)
        seen[field] += 1

    check()
    expected = {
        "recording.type", "recording.startTrigger", "recording.maxDuration",
        "recording.destination.fileFormat", "recording.destination.provider",
        "recording.destination.bucket", "recording.destination.accessKeyId",
        "recording.destination.accessKeySecret", "recording.destination",
    }  # fmt: skip
    assert expected <= set(seen), f"never generated: {expected - set(seen)}"


def test_event_sequences_include_nonsense():
    kinds: Counter[str] = Counter()

    @settings(max_examples=300, deadline=None, database=None)
    @given(rst.room_events(min_size=1))
    def check(events: list[RoomEvent]):
        present: set[str] = set()
        for e in events:
            kinds[type(e).__name__] += 1
            if isinstance(e, Left) and e.participant_id not in present:
                kinds["leave-before-join"] += 1
            if isinstance(e, Joined):
                if e.participant.id in present:
                    kinds["double-join"] += 1
                if e.participant.role == Role.RECORDER:
                    kinds["recorder"] += 1
                present.add(e.participant.id)
            if isinstance(e, Left):
                present.discard(e.participant_id)
        if any(b.at < a.at for a, b in zip(events, events[1:], strict=False)):
            kinds["late-event"] += 1

    check()
    for kind in (
        "Joined", "Left", "StartCommand", "StopCommand", "PromptAnswer", "Tick", "RoomClosed",
        "leave-before-join", "double-join", "recorder", "late-event",
    ):  # fmt: skip
        assert kinds[kind] > 0, f"never generated: {kind}"


@FAST
@given(rst.room_names())
def test_room_names_always_give_safe_keys(name):
    key = recording_file_name(name, datetime(2026, 11, 23, tzinfo=UTC), "mkv")
    assert join_key("meetings", key).startswith("meetings/")
    assert len(key.encode()) < 200


@settings(max_examples=60, deadline=None, database=None)
@given(rst.video_frames(), rst.audio_frames())
def test_raw_frames_vary_and_carry_timestamps(video, audio):
    assert video and audio
    for frame in video:
        assert frame.pts is not None and frame.time_base is not None and frame.width >= 2
    for frame in audio:
        assert frame.pts is not None and frame.sample_rate > 0 and frame.samples >= 1


def test_raw_frames_cover_formats_and_irregular_timing():
    seen: Counter[str] = Counter()

    @settings(max_examples=150, deadline=None, database=None)
    @given(rst.video_frames(min_frames=3))
    def check(frames):
        seen[frames[0].format.name] += 1
        steps = [b.pts - a.pts for a, b in zip(frames, frames[1:], strict=False)]
        if any(s < 0 for s in steps):
            seen["backwards"] += 1
        if any(s > 10**5 for s in steps):
            seen["jump"] += 1
        if len({(f.width, f.height) for f in frames}) > 1:
            seen["resize"] += 1

    check()
    formats = set(seen) & set(rst.VIDEO_PIXEL_FORMATS)
    assert len(formats) >= 4, f"only these pixel formats came up: {formats}"
    for kind in ("backwards", "jump", "resize"):
        assert seen[kind] > 0, f"never generated: {kind}"


@FAST
@given(rst.encoder_inputs())
def test_encoder_inputs_follow_the_output_format(inp):
    fmt = inp.fmt
    assert inp.video[0].pts == 0
    assert all(a.pts < b.pts for a, b in zip(inp.video, inp.video[1:], strict=False))
    assert all(
        (f.width, f.height, f.format.name) == (fmt.width, fmt.height, "yuv420p") for f in inp.video
    )
    assert all(a.pts + a.samples <= b.pts for a, b in zip(inp.audio, inp.audio[1:], strict=False))
    assert all(f.format.name == "s16" and f.sample_rate == fmt.sample_rate for f in inp.audio)
    kinds = [k for k, _ in inp.interleaved()]
    assert kinds.count("video") == len(inp.video) and kinds.count("audio") == len(inp.audio)


@given(st.lists(st.integers(0, 50), max_size=5), rst.room_events(include_recorders=False))
def test_with_recorder_events_keeps_the_originals(positions, events):
    mixed, originals = rst.with_recorder_events(events, positions)
    assert [mixed[i] for i in originals] == events
    extra = [e for i, e in enumerate(mixed) if i not in originals]
    assert len(extra) == len(positions)
