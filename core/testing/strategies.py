"""Hypothesis strategies for recfw and its plugin authors.

::

    from hypothesis import given
    from recfw.testing import strategies as rst

    @given(rst.room_events())
    def test_my_trigger(events): ...

What is here:

* :func:`room_events` - sequences of room events (joins, leaves, host and
  non-host commands, prompt answers, ticks, the room closing) in any order,
  nonsense included (a leave before a join, a second join, an answer nobody
  was asked for, a clock going backwards).
* :func:`room_states` - fresh :class:`~recfw.rooms.RoomState` values with small
  maximum durations, so time-based rules fire within a short sequence.
* :func:`recording_settings` / :func:`invalid_recording_settings` - ``recording``
  objects in the REST shape, valid, or broken in exactly one field (drawn with
  the name of the field the error must carry).
* :func:`room_names` - room names including hostile ones (``/``, ``..``,
  control characters, right-to-left marks, very long unicode).
* :func:`video_frames` / :func:`audio_frames` - raw ``av`` frames as a source
  might produce them (any size, pixel format, frame rate, timestamps with
  jitter, gaps and jumps); :func:`encoder_inputs` - frames already shaped the
  way the engine hands them to an encoder (:class:`~recfw.encoding.OutputFormat`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from ..defaults import DEFAULT_MAX_DURATION
from ..encoding import OutputFormat
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

if TYPE_CHECKING:
    import av

# --- rooms ----------------------------------------------------------------------

#: A small pool of ids so that joins, leaves and commands collide often.
PARTICIPANT_IDS = ("p1", "p2", "p3", "p4", "host-1", "host-2")
RECORDER_IDS = ("recorder-1", "recorder-2")
BUILTIN_TRIGGERS = ("none", "prompt", "automatic", "automatic-2nd-participant")


def participants(ids: tuple[str, ...] = PARTICIPANT_IDS) -> st.SearchStrategy[Participant]:
    """People (hosts and visitors) with ids from a small pool."""
    return st.builds(
        Participant,
        id=st.sampled_from(ids),
        display_name=st.sampled_from(["Ana", "Bo", "", "名前", "x" * 40]),
        role=st.sampled_from([Role.HOST, Role.VISITOR]),
    )


def recorders() -> st.SearchStrategy[Participant]:
    """Participants whose role is ``recorder`` (they never count as people)."""
    return st.builds(
        Participant, id=st.sampled_from(RECORDER_IDS), display_name=st.just("recorder"),
        role=st.just(Role.RECORDER),
    )  # fmt: skip


def _event_kinds(include_recorders: bool) -> st.SearchStrategy[Any]:
    """Functions ``at -> RoomEvent`` (the time is filled in by :func:`room_events`)."""
    who = st.sampled_from(PARTICIPANT_IDS + (RECORDER_IDS if include_recorders else ()))
    joiners = participants()
    if include_recorders:
        joiners = st.one_of(joiners, recorders())
    return st.one_of(
        joiners.map(lambda p: lambda at: Joined(at, p)),
        who.map(lambda pid: lambda at: Left(at, pid)),
        who.map(lambda pid: lambda at: StartCommand(at, pid)),
        who.map(lambda pid: lambda at: StopCommand(at, pid)),
        st.tuples(who, st.booleans()).map(lambda a: lambda at: PromptAnswer(at, a[0], a[1])),
        st.just(lambda at: Tick(at)),
        # Rare: a closed room accepts no one, which would end most sequences early.
        st.integers(0, 15).map(
            lambda n: (lambda at: RoomClosed(at)) if n == 0 else (lambda at: Tick(at))
        ),
    )


@st.composite
def room_events(
    draw: st.DrawFn,
    min_size: int = 0,
    max_size: int = 30,
    include_recorders: bool = True,
    max_step: float = 30.0,
) -> list[RoomEvent]:
    """A sequence of room events in any order, including nonsense.

    Times mostly advance by ``0..max_step`` seconds, sometimes jump by hours
    (past any maximum duration) and sometimes go backwards (a late event):
    :func:`recfw.rooms.apply_event` keeps the room clock monotonic.
    """
    makers = draw(st.lists(_event_kinds(include_recorders), min_size=min_size, max_size=max_size))
    events: list[RoomEvent] = []
    now = 0.0
    for make in makers:
        delta = draw(
            st.one_of(
                st.floats(0, max_step, allow_nan=False),
                st.just(0.0),
                st.floats(3600, 30 * 3600, allow_nan=False),  # a jump past max durations
                st.floats(-max_step, 0, allow_nan=False),  # a late event
            )
        )
        now = max(0.0, now + delta)
        events.append(make(now))
    return events


def room_states(
    max_durations: st.SearchStrategy[float] | None = None,
) -> st.SearchStrategy[RoomState]:
    """Empty rooms, not recording, with a maximum duration (small ones often)."""
    durations = (
        max_durations
        if max_durations is not None
        else st.one_of(st.floats(1, 120, allow_nan=False), st.just(DEFAULT_MAX_DURATION))
    )
    return st.builds(RoomState, name=st.sampled_from(["standup", "r"]), max_duration=durations)


def with_recorder_events(
    events: list[RoomEvent], positions: list[int], recorder: Participant | None = None
) -> tuple[list[RoomEvent], list[int]]:
    """Insert a recorder's join/leave before each of ``positions`` (same time as its neighbour).

    Returns the new sequence and the indices of the original events in it, so
    a test can check that the decisions on the original events did not change.
    """
    recorder = recorder or Participant("recorder-1", "recorder", Role.RECORDER)
    wanted = sorted(p % (len(events) + 1) for p in positions)
    out: list[RoomEvent] = []
    originals: list[int] = []
    inside = False
    for i in range(len(events) + 1):
        while wanted and wanted[0] == i:
            wanted.pop(0)
            at = out[-1].at if out else 0.0
            out.append(Left(at, recorder.id) if inside else Joined(at, recorder))
            inside = not inside
        if i < len(events):
            originals.append(len(out))
            out.append(events[i])
    return out, originals


# --- room names -------------------------------------------------------------------

HOSTILE_ROOM_NAMES = (
    "/",
    "..",
    ".",
    "../../../etc/passwd",
    "a/../../b",
    "/absolute/path",
    "..\\..\\windows",
    "%2e%2e%2f%2e%2e%2f",
    "\x00",
    "nul\x00byte",
    "line\nbreak\r\n",
    "\t\x1b[31mred",
    "\u202eevil\u202d",  # right-to-left override
    "zero\u200bwidth",
    "CON",
    "   ",
    "",
    "ǅemo café Ωmega 会议 اجتماع",
    "🎥" * 200,
    "x" * 5000,
    "a/" * 300,
)


def room_names() -> st.SearchStrategy[str]:
    """Room names: ordinary, hostile (:data:`HOSTILE_ROOM_NAMES`), any unicode, very long."""
    return st.one_of(
        st.sampled_from(HOSTILE_ROOM_NAMES),
        st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True),
        st.text(max_size=50),
        st.text(min_size=200, max_size=2000),
    )


# --- recording settings --------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """The plugin names settings may refer to (see :meth:`from_plugins`)."""

    triggers: tuple[str, ...] = BUILTIN_TRIGGERS
    formats: tuple[str, ...] = ("mkv", "mp4")
    #: Cloud providers that need credentials and take S3-style bucket names.
    providers: tuple[str, ...] = ("s3",)

    @classmethod
    def from_plugins(cls, plugins: Any) -> Installed:
        """What a :class:`recfw.manager.Plugins` has (cloud providers needing credentials)."""
        cloud = tuple(
            sorted(n for n, s in plugins.sinks.items() if n != "local" and s.needs_credentials)
        )
        return cls(tuple(sorted(plugins.triggers)), tuple(sorted(plugins.encoders)), cloud)


_BUCKETS = st.from_regex(r"[a-z][a-z0-9]{2,20}", fullmatch=True)
_SUBFOLDERS = st.from_regex(r"([a-z0-9]{1,8}/){0,2}[a-z0-9]{1,8}", fullmatch=True)
_KEY_IDS = st.from_regex(r"AKIA[A-Z0-9]{12}", fullmatch=True)
_SECRETS = st.from_regex(r"[A-Za-z0-9/+]{20,40}", fullmatch=True)


@st.composite
def recording_settings(draw: st.DrawFn, installed: Installed | None = None) -> dict[str, Any]:
    """A valid, complete ``recording`` object (REST shape) for the ``installed`` plugins."""
    installed = installed or Installed()
    data: dict[str, Any] = {
        "startTrigger": draw(st.sampled_from(installed.triggers)),
    }
    if draw(st.booleans()):
        data["maxDuration"] = draw(
            st.one_of(
                st.integers(1, int(DEFAULT_MAX_DURATION)), st.floats(0.5, 1e6, allow_nan=False)
            )
        )
    kind = draw(st.sampled_from(["none", "local"] + (["cloud"] if installed.providers else [])))
    data["type"] = kind
    if kind == "none":
        return data
    fmt = draw(st.sampled_from(installed.formats))
    if kind == "local":
        folder = draw(
            st.from_regex(r"[A-Za-z0-9_-]{1,12}(/[A-Za-z0-9_-]{1,12}){0,2}", fullmatch=True)
        )
        data["destination"] = {"provider": "local", "bucket": folder, "fileFormat": fmt}
        return data
    bucket = draw(_BUCKETS)
    if draw(st.booleans()):
        bucket += "/" + draw(_SUBFOLDERS)
    data["destination"] = {
        "provider": draw(st.sampled_from(installed.providers)),
        "bucket": bucket,
        "accessKeyId": draw(_KEY_IDS),
        "accessKeySecret": draw(_SECRETS),
        "fileFormat": fmt,
    }
    return data


def _cloud(installed: Installed) -> st.SearchStrategy[dict[str, Any]]:
    return recording_settings(installed).filter(lambda d: d["type"] == "cloud")


def _recorded(installed: Installed) -> st.SearchStrategy[dict[str, Any]]:
    return recording_settings(installed).filter(lambda d: d["type"] != "none")


def _breaking(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(base)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return out


_DELETE = object()
_UNKNOWN = st.from_regex(r"zz[a-z]{1,8}", fullmatch=True)


@st.composite
def invalid_recording_settings(
    draw: st.DrawFn, installed: Installed | None = None
) -> tuple[dict[str, Any], str]:
    """A ``recording`` object broken in one field, and that field's name.

    The name is the dotted REST path a :class:`recfw.errors.FieldError` must
    carry, e.g. ``"recording.destination.fileFormat"``. Use
    :func:`settings_errors` to run both parsing and validation.
    """
    installed = installed or Installed()
    p = "recording"
    d = "destination"
    breakers = [
        lambda: (
            _breaking(draw(recording_settings(installed)), ("type",), draw(_UNKNOWN)),
            f"{p}.type",
        ),
        lambda: (
            _breaking(draw(recording_settings(installed)), ("type",), draw(st.integers())),
            f"{p}.type",
        ),
        lambda: (
            _breaking(draw(recording_settings(installed)), ("startTrigger",), draw(_UNKNOWN)),
            f"{p}.startTrigger",
        ),
        lambda: (
            _breaking(
                draw(recording_settings(installed)),
                ("maxDuration",),
                draw(st.sampled_from([0, -1, -0.5, float("inf"), float("nan"), "1h", True])),
            ),
            f"{p}.maxDuration",
        ),
        lambda: (
            _breaking(draw(recording_settings(installed)), (draw(_UNKNOWN),), 1),
            f"{p}.",  # an unknown field: the error names it (prefix match)
        ),
        lambda: (
            _breaking(draw(_recorded(installed)), (d, "fileFormat"), draw(_UNKNOWN)),
            f"{p}.{d}.fileFormat",
        ),
        lambda: (
            _breaking(draw(_recorded(installed)), (d, "fileFormat"), _DELETE),
            f"{p}.{d}.fileFormat",
        ),
        lambda: (
            _breaking(draw(_recorded(installed)), (d, "provider"), draw(_UNKNOWN)),
            f"{p}.{d}.provider",
        ),
        lambda: (
            _breaking(draw(_recorded(installed)), (d, "bucket"), draw(st.sampled_from(["", 7]))),
            f"{p}.{d}.bucket",
        ),
        lambda: (
            _breaking(draw(_recorded(installed)), (d, draw(_UNKNOWN)), "x"),
            f"{p}.{d}.",
        ),
        lambda: (
            _breaking(draw(_recorded(installed)), (d,), draw(st.sampled_from(["s3", 3, []]))),
            f"{p}.{d}",
        ),
    ]
    if installed.providers:
        breakers += [
            lambda: (
                _breaking(draw(_cloud(installed)), (d, "accessKeyId"), _DELETE),
                f"{p}.{d}.accessKeyId",
            ),
            lambda: (
                _breaking(draw(_cloud(installed)), (d, "accessKeySecret"), _DELETE),
                f"{p}.{d}.accessKeySecret",
            ),
            lambda: (
                _breaking(draw(_cloud(installed)), (d, "accessKeySecret"), 12345),
                f"{p}.{d}.accessKeySecret",
            ),
        ]
    breaker = draw(st.sampled_from(breakers))
    return breaker()


def settings_errors(data: Any, plugins: Any) -> list[Any]:
    """Every :class:`~recfw.errors.FieldError` of a ``recording`` object: parse, then validate."""
    from ..errors import SettingsError
    from ..settings import parse_recording, validate

    try:
        parsed = parse_recording(data)
    except SettingsError as exc:
        return list(exc.errors)
    return validate(parsed, plugins)


# --- media -------------------------------------------------------------------------

VIDEO_PIXEL_FORMATS = ("yuv420p", "rgb24", "bgr24", "yuvj420p", "nv12", "gray", "rgba")
AUDIO_FORMATS = ("s16", "fltp", "s16p", "flt")
AUDIO_LAYOUTS = ("mono", "stereo")
FRAME_RATES = (10, 15, 24, 25, 30, 60)
SAMPLE_RATES = (8000, 16000, 44100, 48000)


@st.composite
def timestamps(
    draw: st.DrawFn,
    count: int,
    step: int,
    jitter: bool = True,
    gaps: bool = True,
    jumps: bool = True,
) -> list[int]:
    """``count`` pts values about ``step`` apart, with jitter, gaps and jumps (not monotonic)."""
    start = draw(st.one_of(st.just(0), st.integers(0, 10**6)))
    out = []
    pts = start
    for _ in range(count):
        out.append(pts)
        delta = step
        kind = draw(st.sampled_from(["plain"] * 6 + ["jitter", "gap", "jump", "back"]))
        if kind == "jitter" and jitter:
            delta += draw(st.integers(-step // 2, step // 2))
        elif kind == "gap" and gaps:
            delta += step * draw(st.integers(1, 20))
        elif kind == "jump" and jumps:
            delta += draw(st.integers(10**5, 10**7))
        elif kind == "back" and jitter:
            delta = -draw(st.integers(0, 2 * step))
        pts = max(0, pts + delta)
    return out


def _noise(seed: int, shape: tuple[int, ...], dtype: Any) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(-0.5, 0.5, size=shape).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -8000), min(info.max, 8000)
    if info.min == 0:
        lo, hi = 0, info.max
    return rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype)


def _video_frame(seed: int, width: int, height: int, pix_fmt: str) -> av.VideoFrame:
    """A moving-gradient picture (compressible but not constant) in ``pix_fmt``."""
    import av
    import numpy as np

    x = np.arange(width, dtype=np.uint16)[None, :]
    y = np.arange(height, dtype=np.uint16)[:, None]
    base = ((x + y + (seed * 7) % 256) % 256).astype(np.uint8)
    rgb = np.stack([base, np.roll(base, seed % 13, axis=1), 255 - base], axis=2)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame if pix_fmt == "rgb24" else frame.reformat(format=pix_fmt)


@st.composite
def video_frames(
    draw: st.DrawFn,
    min_frames: int = 1,
    max_frames: int = 20,
    sizes: st.SearchStrategy[tuple[int, int]] | None = None,
    pixel_formats: tuple[str, ...] = VIDEO_PIXEL_FORMATS,
    frame_rates: tuple[int, ...] = FRAME_RATES,
) -> list[av.VideoFrame]:
    """Raw video frames as a source might deliver them.

    Size (including odd sizes), pixel format and frame rate are drawn per
    sequence (sometimes the size changes mid-stream); ``pts`` (in
    ``time_base = 1/90000``) has jitter, gaps, jumps and late frames.
    """
    sizes = sizes if sizes is not None else st.tuples(st.integers(2, 160), st.integers(2, 120))
    count = draw(st.integers(min_frames, max_frames))
    rate = draw(st.sampled_from(frame_rates))
    pix_fmt = draw(st.sampled_from(pixel_formats))
    size = draw(sizes)
    resize_at = draw(st.one_of(st.none(), st.integers(0, count)))
    other = draw(sizes)
    pts = draw(timestamps(count, 90000 // rate))
    out = []
    for i, p in enumerate(pts):
        w, h = other if resize_at is not None and i >= resize_at else size
        if pix_fmt in ("yuv420p", "yuvj420p", "nv12"):
            w, h = max(2, w - w % 2), max(2, h - h % 2)
        frame = _video_frame(draw(st.integers(0, 10**6)), w, h, pix_fmt)
        frame.pts = p
        frame.time_base = Fraction(1, 90000)
        out.append(frame)
    return out


@st.composite
def audio_frames(
    draw: st.DrawFn,
    min_frames: int = 1,
    max_frames: int = 20,
    formats: tuple[str, ...] = AUDIO_FORMATS,
    layouts: tuple[str, ...] = AUDIO_LAYOUTS,
    sample_rates: tuple[int, ...] = SAMPLE_RATES,
) -> list[av.AudioFrame]:
    """Raw audio frames: any sample format, layout and rate, any frame length, odd pts."""
    import av

    count = draw(st.integers(min_frames, max_frames))
    fmt = draw(st.sampled_from(formats))
    layout = draw(st.sampled_from(layouts))
    rate = draw(st.sampled_from(sample_rates))
    samples = draw(st.sampled_from([rate // 50, rate // 100, 1024, 960, 160, 1]))
    pts = draw(timestamps(count, samples))
    channels = 1 if layout == "mono" else 2
    dtype = {"s16": "int16", "s16p": "int16", "flt": "float32", "fltp": "float32"}[fmt]
    out = []
    for p in pts:
        planar = fmt.endswith("p")
        shape = (channels, samples) if planar else (1, samples * channels)
        frame = av.AudioFrame.from_ndarray(
            _noise(draw(st.integers(0, 10**6)), shape, dtype), format=fmt, layout=layout
        )
        frame.sample_rate = rate
        frame.pts = p
        frame.time_base = Fraction(1, rate)
        out.append(frame)
    return out


@dataclass
class EncoderInput:
    """Frames shaped as the engine hands them to an encoder, with the format they follow.

    ``video`` frames are ``yuv420p`` of ``fmt.width`` x ``fmt.height`` with pts in
    ``1/fps``; ``audio`` frames are ``s16`` of ``fmt.audio_layout`` at
    ``fmt.sample_rate`` with pts in samples. Both start at 0 and strictly
    increase; gaps (a camera that stalled, a muted microphone) are allowed.
    """

    fmt: OutputFormat
    video: list[Any] = field(default_factory=list)
    audio: list[Any] = field(default_factory=list)

    @property
    def video_end(self) -> float:
        """Seconds at which the last video frame ends (0 without video)."""
        if not self.video:
            return 0.0
        return (self.video[-1].pts + 1) / self.fmt.fps

    @property
    def audio_end(self) -> float:
        """Seconds at which the last audio frame ends (0 without audio)."""
        if not self.audio:
            return 0.0
        last = self.audio[-1]
        return (last.pts + last.samples) / self.fmt.sample_rate

    @property
    def duration(self) -> float:
        return max(self.video_end, self.audio_end)

    def interleaved(self) -> list[tuple[str, Any]]:
        """``("video"|"audio", frame)`` in presentation-time order, as the engine writes them."""
        items = [(f.pts / self.fmt.fps, 0, "video", f) for f in self.video]
        items += [(f.pts / self.fmt.sample_rate, 1, "audio", f) for f in self.audio]
        items.sort(key=lambda item: (item[0], item[1]))
        return [(kind, frame) for _, _, kind, frame in items]


def output_formats(
    sizes: st.SearchStrategy[tuple[int, int]] | None = None,
    sample_rates: tuple[int, ...] = (16000, 44100, 48000),
) -> st.SearchStrategy[OutputFormat]:
    """Small :class:`OutputFormat` values (even sizes; common rates and layouts)."""
    sizes = (
        sizes
        if sizes is not None
        else st.tuples(
            st.integers(8, 80).map(lambda n: n * 2), st.integers(8, 60).map(lambda n: n * 2)
        )
    )
    return st.builds(
        lambda size, fps, rate, layout: OutputFormat(size[0], size[1], fps, rate, layout),
        sizes,
        st.sampled_from([10, 15, 24, 25, 30]),
        st.sampled_from(sample_rates),
        st.sampled_from(["mono", "stereo"]),
    )


@st.composite
def encoder_inputs(
    draw: st.DrawFn,
    max_seconds: float = 2.0,
    formats: st.SearchStrategy[OutputFormat] | None = None,
    audio: bool | None = None,
) -> EncoderInput:
    """An :class:`EncoderInput`: at least one video frame, audio sometimes, gaps and jumps.

    Pictures come from :func:`video_frames` (any size and pixel format) and are
    converted to the output format, as the engine's compositor does; pts are
    made strictly increasing from 0 with gaps (stalls) and small jumps.
    """
    import av

    fmt = draw(formats if formats is not None else output_formats())
    n_video = draw(st.integers(1, max(1, int(max_seconds * fmt.fps))))
    raw = draw(video_frames(min_frames=1, max_frames=min(n_video, 6)))
    video = []
    pts = 0
    for i in range(n_video):
        frame = raw[i % len(raw)].reformat(width=fmt.width, height=fmt.height, format="yuv420p")
        frame.pts = pts
        frame.time_base = fmt.video_time_base
        video.append(frame)
        pts += draw(st.sampled_from([1] * 8 + [2, 3, fmt.fps // 2]))
    with_audio = draw(st.booleans()) if audio is None else audio
    audio_out = []
    if with_audio:
        channels = 1 if fmt.audio_layout == "mono" else 2
        samples = draw(st.sampled_from([fmt.sample_rate // 50, 1024, 960]))
        end = int((video[-1].pts or 0) / fmt.fps * fmt.sample_rate)
        pts = 0
        seed = draw(st.integers(0, 10**6))
        while pts <= end:
            aframe = av.AudioFrame.from_ndarray(
                _noise(seed + pts, (1, samples * channels), "int16"),
                format="s16",
                layout=fmt.audio_layout,
            )
            aframe.sample_rate = fmt.sample_rate
            aframe.pts = pts
            aframe.time_base = fmt.audio_time_base
            audio_out.append(aframe)
            pts += samples * draw(st.sampled_from([1] * 10 + [2, 5]))
    return EncoderInput(fmt, video, audio_out)


__all__ = [
    "HOSTILE_ROOM_NAMES",
    "EncoderInput",
    "Installed",
    "audio_frames",
    "encoder_inputs",
    "invalid_recording_settings",
    "output_formats",
    "participants",
    "recorders",
    "recording_settings",
    "room_events",
    "room_names",
    "room_states",
    "settings_errors",
    "timestamps",
    "video_frames",
    "with_recorder_events",
]
