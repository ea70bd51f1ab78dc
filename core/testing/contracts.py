"""Contract test suites a plugin author subclasses and points at their plugin.

Each class is a pytest test class (its name must start with ``Test`` in your
test module, so subclass it as ``class TestMyTrigger(TriggerContract)``). Say
which plugin to test with a class attribute ``plugin = MyTrigger()``, or
override the fixture of the same name as the kind (``trigger``, ``encoder``,
``sink``, ``source``) when building the plugin needs other fixtures::

    from recfw.testing.contracts import TriggerContract

    class TestMyTrigger(TriggerContract):
        plugin = MyTrigger()

The suites check the rules every plugin of the kind must keep (DESIGN.md,
"Start triggers"; ``recfw.encoding``; ``recfw.storage``; ``recfw.sources``),
with hypothesis-generated inputs from :mod:`recfw.testing.strategies`. The
number of generated examples is a class attribute (``max_examples``).
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..encoding import Encoder, OutputFormat
from ..errors import FieldError, StorageError
from ..naming import recording_file_name
from ..recording import Destination
from ..rooms import (
    Participant,
    Role,
    RoomState,
    StartCommand,
    StopCommand,
    apply_event,
)
from ..sources import ParticipantMedia, Source
from ..storage import Sink, StoredObject
from ..triggers import Action, Trigger, step
from . import media
from . import strategies as rst

_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "database": None,
}


def _plugin(test: Any, kind: str) -> Any:
    plugin = getattr(type(test), "plugin", None)
    if plugin is None:
        pytest.fail(
            f"{type(test).__name__}: set `plugin = <your {kind}>` on the class, "
            f"or override the `{kind}` fixture"
        )
    return plugin


# --- triggers ---------------------------------------------------------------------


class TriggerContract:
    """The rules every start trigger keeps, checked on generated event sequences.

    * ``decide`` is pure and deterministic;
    * it never starts while a recording runs, never stops when none runs;
    * a START or STOP caused by a Record/Stop command comes only from a host;
    * a recorder joining or leaving never changes a decision;
    * driven through :func:`recfw.triggers.step`: a room without people is
      never left recording, and no recording outlives ``max_duration``.
    """

    plugin: Any = None
    max_examples = 100

    @pytest.fixture
    def trigger(self) -> Trigger:
        return _plugin(self, "trigger")

    def _run(self, test: Any, *strategies: st.SearchStrategy[Any]) -> None:
        settings(max_examples=self.max_examples, **_SETTINGS)(given(*strategies)(test))()

    def test_fits_the_protocol(self, trigger: Trigger) -> None:
        assert isinstance(trigger, Trigger), "needs name, label and decide(state, event)"
        assert isinstance(trigger.name, str) and re.fullmatch(r"[a-z0-9][a-z0-9._-]*", trigger.name)
        assert isinstance(trigger.label, str) and trigger.label.strip()

    def test_decide_is_pure_and_deterministic(self, trigger: Trigger) -> None:
        def check(start: RoomState, events: list) -> None:
            state = start
            first = []
            for event in events:
                after = apply_event(state, event)
                decision = trigger.decide(after, event)
                again = trigger.decide(after, event)
                assert decision == again, f"two answers for the same input after {event!r}"
                assert after == apply_event(state, event), "decide() changed the state"
                first.append(decision)
                state, _ = step(trigger, state, event)
            state = start
            replay = []
            for event in events:
                replay.append(trigger.decide(apply_event(state, event), event))
                state, _ = step(trigger, state, event)
            assert first == replay, "the same sequence gave different decisions"

        self._run(check, rst.room_states(), rst.room_events())

    def test_raw_decisions_respect_the_recording_state(self, trigger: Trigger) -> None:
        def check(start: RoomState, events: list) -> None:
            state = start
            for event in events:
                after = apply_event(state, event)
                decision = trigger.decide(after, event)
                if after.recording:
                    assert decision.action != Action.START, (
                        f"START while recording, after {event!r}"
                    )
                else:
                    assert decision.action != Action.STOP, (
                        f"STOP with no recording running, after {event!r}"
                    )
                if isinstance(event, StartCommand | StopCommand) and decision.action in (
                    Action.START,
                    Action.STOP,
                ):
                    assert after.is_host(event.participant_id), (
                        f"{decision.action} on a command by non-host {event.participant_id!r}"
                    )
                state, _ = step(trigger, state, event)

        self._run(check, rst.room_states(), rst.room_events())

    def test_recorder_events_never_change_decisions(self, trigger: Trigger) -> None:
        def check(start: RoomState, events: list, positions: list[int]) -> None:
            mixed, originals = rst.with_recorder_events(events, positions)
            plain = _decisions(trigger, start, events)
            with_recorder = _decisions(trigger, start, mixed)
            for i, index in enumerate(originals):
                assert (plain[i].action, plain[i].participant_id) == (
                    with_recorder[index].action,
                    with_recorder[index].participant_id,
                ), f"a recorder's join/leave changed the decision on {events[i]!r}"
            for index, event in enumerate(mixed):
                if index not in originals:
                    assert with_recorder[index].action == Action.NOTHING, (
                        f"the recorder's {event!r} caused {with_recorder[index]}"
                    )

        self._run(
            check,
            rst.room_states(),
            rst.room_events(include_recorders=False),
            st.lists(st.integers(0, 100), max_size=6),
        )

    def test_step_never_leaves_an_empty_room_recording(self, trigger: Trigger) -> None:
        def check(start: RoomState, events: list) -> None:
            state = start
            for event in events:
                state, decision = step(trigger, state, event)
                if not state.people:
                    assert not state.recording, f"recording in a room without people: {event!r}"
                if decision.action == Action.START:
                    assert state.people, "started a recording with nobody there"

        self._run(check, rst.room_states(), rst.room_events())

    def test_step_stops_at_the_maximum_duration(self, trigger: Trigger) -> None:
        def check(start: RoomState, events: list) -> None:
            state = start
            for event in events:
                state, _ = step(trigger, state, event)
                if state.recording:
                    assert state.now - state.recording_since < state.max_duration, (
                        "a recording ran past max_duration"
                    )

        self._run(check, rst.room_states(), rst.room_events())

    def test_commands_by_non_hosts_never_start_or_stop(self, trigger: Trigger) -> None:
        def check(start: RoomState, events: list) -> None:
            state = start
            for event in events:
                since = state.recording_since
                state, decision = step(trigger, state, event)
                if isinstance(event, StartCommand | StopCommand) and not state.is_host(
                    event.participant_id
                ):
                    assert decision.action != Action.START, f"a non-host's command started {event}"
                    if decision.action == Action.STOP:
                        # only the rules for every trigger may stop now, never the command
                        assert not state.people or state.now - since >= state.max_duration, (
                            f"a non-host's command stopped the recording: {event!r}"
                        )

        self._run(check, rst.room_states(), rst.room_events())


def _decisions(trigger: Trigger, state: RoomState, events: list) -> list:
    out = []
    for event in events:
        state, decision = step(trigger, state, event)
        out.append(decision)
    return out


# --- encoders ------------------------------------------------------------------------


class EncoderContract:
    """What every encoder must produce, checked by decoding with PyAV.

    * any frame sequence (sizes, rates, gaps, audio or not) gives a file that
      decodes, with increasing timestamps and the duration of what was written;
    * a copy cut at ~60% (a crash mid-recording) still decodes some frames;
    * ``name``, ``extension`` and ``content_type`` are sane (the content type
      is handed to sinks that record one, such as S3's ``Content-Type``);
    * ``validate_options(options)`` exists, accepts the options under test and
      names an unknown option: it is what ``recfw settings check`` calls, so
      bad options are reported before anything is recorded.

    Override the ``encoder_options`` fixture to test with options.
    """

    plugin: Any = None
    max_examples = 8
    #: Allowed difference (seconds) between written and decoded duration.
    duration_tolerance = 0.25
    #: Where the truncation test cuts the file.
    truncate_at = 0.6
    #: Audio sample rates of the generated :class:`OutputFormat` values.
    sample_rates: tuple[int, ...] = (16000, 44100, 48000)

    @pytest.fixture
    def encoder(self) -> Encoder:
        return _plugin(self, "encoder")

    @pytest.fixture
    def encoder_options(self) -> dict[str, Any]:
        return {}

    def test_fits_the_protocol(self, encoder: Encoder) -> None:
        assert isinstance(encoder, Encoder), "needs name, extension, content_type and open()"
        assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", encoder.name), encoder.name
        assert re.fullmatch(r"[A-Za-z0-9]{1,10}", encoder.extension), encoder.extension
        assert re.fullmatch(r"(video|audio)/[a-z0-9.+-]+", encoder.content_type), (
            encoder.content_type
        )
        # recording_file_name accepts it
        recording_file_name("r", datetime(2026, 1, 1, tzinfo=UTC), encoder.extension)

    def test_validates_its_options(self, encoder: Encoder, encoder_options: dict[str, Any]) -> None:
        check = getattr(encoder, "validate_options", None)
        assert callable(check), (
            "needs validate_options(options) -> list[FieldError]: recfw calls it to check "
            "the [encoder] settings before recording"
        )
        assert list(check(encoder_options)) == [], "the options under test must be valid"
        problems = list(check({**encoder_options, "no-such-option-xyz": 1}))
        assert problems, "an unknown option must be reported"
        assert all(isinstance(p, FieldError) for p in problems), problems
        assert any("no-such-option-xyz" in p.field for p in problems), problems

    def test_any_frames_decode_with_the_written_timing(
        self, encoder: Encoder, encoder_options: dict[str, Any]
    ) -> None:
        tolerance = self.duration_tolerance

        def check(inp: rst.EncoderInput) -> None:
            with tempfile.TemporaryDirectory() as tmp:
                path = media.encode_to_file(
                    encoder, inp, Path(tmp) / f"out.{encoder.extension}", encoder_options
                )
                assert path.stat().st_size > 0, "the encoder wrote nothing"
                got = media.decode_file(path)
            n = len(inp.video)
            assert got.video_count >= max(1, n - n // 10), (
                f"{n} video frames written, {got.video_count} decoded"
            )
            assert all(a < b for a, b in pairwise(got.video_times)), (
                "video timestamps do not increase"
            )
            assert all(a <= b for a, b in pairwise(got.audio_times)), (
                "audio timestamps go backwards"
            )
            frame = 1 / inp.fmt.fps
            assert abs(got.video_end - inp.video_end) <= tolerance + frame, (
                f"video ends at {got.video_end:.3f} s, written up to {inp.video_end:.3f} s"
            )
            if inp.audio:
                assert got.audio_count > 0, "audio was written but none decodes"
                assert abs(got.audio_end - inp.audio_end) <= tolerance + 0.05, (
                    f"audio ends at {got.audio_end:.3f} s, written up to {inp.audio_end:.3f} s"
                )
            assert abs(got.end - inp.duration) <= tolerance + frame

        settings(max_examples=self.max_examples, **_SETTINGS)(
            given(
                rst.encoder_inputs(
                    max_seconds=2.0, formats=rst.output_formats(sample_rates=self.sample_rates)
                )
            )(check)
        )()

    def test_a_truncated_file_still_decodes(
        self, encoder: Encoder, encoder_options: dict[str, Any], tmp_path: Path
    ) -> None:
        inp = media.steady_input(OutputFormat(320, 240, 15, 48000, "stereo"), seconds=4.0)
        full = media.encode_to_file(
            encoder, inp, tmp_path / f"full.{encoder.extension}", encoder_options
        )
        cut = media.truncate_copy(full, self.truncate_at, tmp_path / f"cut.{encoder.extension}")
        got = media.decode_partial(cut)
        assert got.video_count > 0, (
            f"nothing decodes from the first {self.truncate_at:.0%} of the file ({got.error})"
        )

    def test_each_open_is_independent(
        self, encoder: Encoder, encoder_options: dict[str, Any], tmp_path: Path
    ) -> None:
        """Two files encoded one after the other (same encoder object) both decode."""
        fmt = OutputFormat(64, 48, 10, 16000, "mono")
        for i in range(2):
            inp = media.steady_input(fmt, seconds=1.0 + i)
            path = media.encode_to_file(
                encoder, inp, tmp_path / f"f{i}.{encoder.extension}", encoder_options
            )
            got = media.decode_file(path)
            assert got.video_count == len(inp.video)


# --- sinks -----------------------------------------------------------------------------


class SinkContract:
    """What every storage sink must do, checked against a real store.

    Provide fixtures ``destination`` (a working destination, with a sub-folder
    in ``bucket`` if the sink has that notion) and ``broken_destination`` (one
    whose store fails: wrong credentials, missing bucket, unwritable folder),
    and override :meth:`fetch` and :meth:`listing` to look into the store.
    """

    plugin: Any = None

    @pytest.fixture
    def sink(self) -> Sink:
        return _plugin(self, "sink")

    @pytest.fixture
    def destination(self) -> Destination:
        pytest.fail(f"{type(self).__name__}: provide a `destination` fixture")

    @pytest.fixture
    def broken_destination(self) -> Destination:
        pytest.fail(f"{type(self).__name__}: provide a `broken_destination` fixture")

    # --- to override --------------------------------------------------------------

    def fetch(self, stored: StoredObject, destination: Destination) -> bytes:
        """The bytes stored at ``stored.location`` (default: a local path)."""
        return Path(stored.location).read_bytes()

    def listing(self, destination: Destination) -> list[str]:
        """Every key under the store's root (the bucket, or the folder above the destination)."""
        raise NotImplementedError(f"{type(self).__name__}: override listing()")

    def expected_prefix(self, destination: Destination) -> str:
        """What every key in :meth:`listing` written through ``destination`` starts with."""
        return destination.prefix + "/" if destination.prefix else ""

    # --- the contract -------------------------------------------------------------

    def _store(
        self, sink: Sink, destination: Destination, data: bytes, key: str, tmp: Path
    ) -> tuple[StoredObject, Path]:
        tmp.mkdir(parents=True, exist_ok=True)
        path = tmp / "recording.bin"
        path.write_bytes(data)
        calls: list[tuple[int, int]] = []
        stored = sink.store(path, key, destination, lambda done, total: calls.append((done, total)))
        assert all(0 <= d <= t for d, t in calls), f"progress out of range: {calls[:5]}"
        return stored, path

    def test_fits_the_protocol(self, sink: Sink) -> None:
        assert isinstance(sink, Sink), "needs name, needs_credentials, validate() and store()"
        assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", sink.name), sink.name
        assert isinstance(sink.needs_credentials, bool)
        # Whether a meeting created through the API may choose the destination's place.
        assert isinstance(getattr(sink, "writes_locally", None), bool), (
            "declare writes_locally = True (stores on the machine recfw runs on) or False"
        )

    def test_accepts_a_content_type(
        self, sink: Sink, destination: Destination, tmp_path: Path
    ) -> None:
        """``store(..., content_type=...)``: the encoder's MIME type, for stores that keep one."""
        tmp_path.mkdir(parents=True, exist_ok=True)
        path = tmp_path / "recording.bin"
        path.write_bytes(b"typed")
        stored = sink.store(path, "typed.mkv", destination, None, content_type="video/x-matroska")
        assert self.fetch(stored, destination) == b"typed"

    def test_valid_destination_validates(self, sink: Sink, destination: Destination) -> None:
        assert sink.validate(destination) == []

    @pytest.mark.parametrize("size", [0, 1, 70_001, 1_048_577])
    def test_round_trips_bytes(
        self, sink: Sink, destination: Destination, tmp_path: Path, size: int
    ) -> None:
        data = os.urandom(size)
        key = f"round-trip-{size}.mkv"
        stored, path = self._store(sink, destination, data, key, tmp_path)
        assert isinstance(stored, StoredObject)
        assert stored.size == size
        assert self.fetch(stored, destination) == data
        assert path.read_bytes() == data, "the sink changed or removed the local file"
        secret = destination.access_key_secret
        if secret:
            assert secret.reveal() not in stored.location, "the location shows the secret"

    def test_never_overwrites(self, sink: Sink, destination: Destination, tmp_path: Path) -> None:
        first, _ = self._store(sink, destination, b"first", "same.mkv", tmp_path / "a")
        second, _ = self._store(sink, destination, b"second", "same.mkv", tmp_path / "b")
        assert first.location != second.location
        assert self.fetch(first, destination) == b"first"
        assert self.fetch(second, destination) == b"second"

    @pytest.mark.parametrize("room", rst.HOSTILE_ROOM_NAMES, ids=range(len(rst.HOSTILE_ROOM_NAMES)))
    def test_keys_from_hostile_room_names_stay_under_the_prefix(
        self, sink: Sink, destination: Destination, tmp_path: Path, room: str
    ) -> None:
        key = recording_file_name(room, datetime(2026, 11, 23, 19, 40, 5, tzinfo=UTC), "mkv")
        before = set(self.listing(destination))
        stored, _ = self._store(sink, destination, b"hostile", key, tmp_path)
        new = set(self.listing(destination)) - before
        assert new, "nothing new in the listing after a successful store"
        self._assert_inside(new, destination)
        assert self.fetch(stored, destination) == b"hostile"

    @pytest.mark.parametrize(
        "key", ["../escape.mkv", "a/../../escape.mkv", "/abs.mkv", "..", ".", "sub/dir.mkv"]
    )
    def test_raw_unsafe_keys_fail_or_stay_inside(
        self, sink: Sink, destination: Destination, tmp_path: Path, key: str
    ) -> None:
        before = set(self.listing(destination))
        try:
            self._store(sink, destination, b"unsafe", key, tmp_path)
        except StorageError:
            pass
        self._assert_inside(set(self.listing(destination)) - before, destination)

    def _assert_inside(self, keys: set[str], destination: Destination) -> None:
        prefix = self.expected_prefix(destination)
        for k in keys:
            assert k.startswith(prefix), f"{k!r} is outside the prefix {prefix!r}"
            assert ".." not in k.split("/"), f"{k!r} has a '..' segment"

    def test_a_failing_store_raises_storage_error(
        self, sink: Sink, broken_destination: Destination, tmp_path: Path
    ) -> None:
        path = tmp_path / "recording.mkv"
        path.write_bytes(b"x" * 1000)
        result: Any = "not called"
        with pytest.raises(StorageError) as info:
            result = sink.store(path, "broken.mkv", broken_destination, None)
        assert result == "not called", f"store() returned {result!r} for a failed store"
        assert path.read_bytes() == b"x" * 1000, "the local file is gone after a failure"
        secret = broken_destination.access_key_secret
        if secret:
            assert secret.reveal() not in str(info.value), "the error shows the secret"

    def test_a_missing_local_file_raises_storage_error(
        self, sink: Sink, destination: Destination, tmp_path: Path
    ) -> None:
        with pytest.raises(StorageError):
            sink.store(tmp_path / "does-not-exist.mkv", "missing.mkv", destination, None)


# --- sources -------------------------------------------------------------------------------


class SourceContract:
    """What every participant-media source must do, checked with aiortc's track API.

    * ``create()`` returns :class:`~recfw.sources.ParticipantMedia` for the participant;
    * each track's ``recv()`` gives frames of its kind with increasing ``pts``;
    * after ``stop()`` a track's ``recv()`` ends with ``MediaStreamError``.

    Override ``source_options`` (the options ``create()`` gets) as needed.
    """

    plugin: Any = None
    #: How many frames to pull from each track.
    frames = 8
    #: Seconds a single ``recv()`` may take before the test fails.
    recv_timeout = 10.0

    @pytest.fixture
    def source(self) -> Source:
        return _plugin(self, "source")

    @pytest.fixture
    def source_options(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def participant(self) -> Participant:
        return Participant("contract-1", "Contract Tester", Role.VISITOR)

    def test_fits_the_protocol(self, source: Source) -> None:
        assert isinstance(source, Source), "needs name and create(participant, options)"
        assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", source.name), source.name

    def test_tracks_deliver_frames_with_increasing_pts(
        self, source: Source, source_options: dict[str, Any], participant: Participant
    ) -> None:
        asyncio.run(self._check_frames(source, source_options, participant))

    async def _check_frames(
        self, source: Source, options: dict[str, Any], participant: Participant
    ) -> None:
        import av

        made = source.create(participant, options)
        assert isinstance(made, ParticipantMedia)
        assert made.participant == participant
        tracks = [t for t in (made.video, made.audio) if t is not None]
        assert tracks, "create() returned no track at all"
        try:
            for track, kind, frame_type in (
                (made.video, "video", av.VideoFrame),
                (made.audio, "audio", av.AudioFrame),
            ):
                if track is None:
                    continue
                assert track.kind == kind
                last = None
                for _ in range(self.frames):
                    frame = await asyncio.wait_for(track.recv(), self.recv_timeout)
                    assert isinstance(frame, frame_type), f"{kind} track gave {type(frame)}"
                    assert frame.pts is not None and frame.time_base is not None
                    if last is not None:
                        assert frame.pts > last, f"{kind} pts {frame.pts} after {last}"
                    last = frame.pts
        finally:
            made.stop()

    def test_stop_ends_the_tracks(
        self, source: Source, source_options: dict[str, Any], participant: Participant
    ) -> None:
        asyncio.run(self._check_stop(source, source_options, participant))

    async def _check_stop(
        self, source: Source, options: dict[str, Any], participant: Participant
    ) -> None:
        from aiortc.mediastreams import MediaStreamError

        made = source.create(participant, options)
        tracks = [t for t in (made.video, made.audio) if t is not None]
        for track in tracks:
            await asyncio.wait_for(track.recv(), self.recv_timeout)
        made.stop()
        for track in tracks:
            assert track.readyState == "ended"
            with pytest.raises(MediaStreamError):
                for _ in range(50):  # a few buffered frames may still come out
                    await asyncio.wait_for(track.recv(), self.recv_timeout)


__all__ = [
    "EncoderContract",
    "SinkContract",
    "SourceContract",
    "TriggerContract",
]
