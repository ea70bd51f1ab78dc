"""The ``synthetic`` source: a test participant with a colour, a tone and sync markers.

Video: the participant's colour over the whole picture with a dark bar moving
across it. Audio: a steady sine tone at the participant's own frequency. Every
``marker_interval_s`` (from the track's start) both tracks carry a sync marker
at the same instant: one white frame and a 50 ms loud beep at
:data:`BEEP_HZ`. Options::

    width, height, fps     picture (default 640x480@30)
    color                  "#rrggbb" or [r, g, b] (default: from the participant id)
    tone_hz                tone frequency (default: from the participant id)
    sample_rate            48000 (any rate, e.g. 44100); channels 1 or 2 (default 1)
    marker_interval_s      default 3; 0 turns markers off
    realtime               pace frames like a camera (default True) or return at once
    duration_s             end the tracks after this long (default: never)
"""

from __future__ import annotations

import asyncio
import fractions
import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from recfw.rooms import Participant
from recfw.sources import ParticipantMedia

VIDEO_CLOCK_RATE = 90000  # like aiortc's VideoStreamTrack
BEEP_HZ = 2000.0
BEEP_S = 0.050
TONE_AMPLITUDE = 0.1
BEEP_AMPLITUDE = 0.8
AUDIO_PTIME = 0.020

#: Distinct, saturated colours that survive YUV 4:2:0 and H.264 well.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (220, 40, 40),  # red
    (40, 200, 60),  # green
    (40, 80, 230),  # blue
    (230, 210, 40),  # yellow
    (210, 50, 210),  # magenta
    (40, 210, 210),  # cyan
    (240, 140, 20),  # orange
    (130, 60, 200),  # purple
    (140, 200, 40),  # lime
    (230, 120, 160),  # pink
)


def _index(pid: str) -> int:
    return int.from_bytes(hashlib.sha256(pid.encode()).digest()[:4], "big")


def color_for(pid: str) -> tuple[int, int, int]:
    """The participant's default colour (stable for an id)."""
    return PALETTE[_index(pid) % len(PALETTE)]


def tone_for(pid: str) -> float:
    """The participant's default tone frequency: 220..880 Hz in 60 Hz steps, stable per id."""
    return 220.0 + 60.0 * (_index(pid) // 7 % 12)


def rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited range, as FFmpeg's default conversion."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


def _parse_color(value: Any) -> tuple[int, int, int]:
    if isinstance(value, str) and value.startswith("#") and len(value) == 7:
        try:
            return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        except ValueError:
            pass
    elif isinstance(value, list | tuple) and len(value) == 3:
        if all(isinstance(c, int) and 0 <= c <= 255 for c in value):
            return (value[0], value[1], value[2])
    raise ValueError(f"synthetic source option 'color': {value!r} is not '#rrggbb' or [r, g, b]")


@dataclass(frozen=True)
class SyntheticOptions:
    """The synthetic participant's checked options."""

    width: int = 640
    height: int = 480
    fps: float = 30.0
    color: tuple[int, int, int] = (220, 40, 40)
    tone_hz: float = 440.0
    sample_rate: int = 48000
    channels: int = 1
    marker_interval_s: float = 3.0
    realtime: bool = True
    duration_s: float | None = None

    @classmethod
    def parse(cls, participant_id: str, options: Mapping[str, Any]) -> SyntheticOptions:
        known = set(cls.__dataclass_fields__)
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown synthetic source option(s) {sorted(unknown)}")

        def num(name: str, default: float, lo: float, hi: float, kind: type = float) -> Any:
            value = options.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"synthetic source option {name!r}: {value!r} is not a number")
            if not lo <= value <= hi:
                raise ValueError(
                    f"synthetic source option {name!r}: must be {lo}..{hi}, got {value}"
                )
            return kind(value)

        width = num("width", 640, 16, 3840, int)
        height = num("height", 480, 16, 2160, int)
        if width % 2 or height % 2:
            raise ValueError(
                f"synthetic source options 'width'/'height': must be even, got {width}x{height}"
            )
        realtime = options.get("realtime", True)
        if not isinstance(realtime, bool):
            raise ValueError(f"synthetic source option 'realtime': {realtime!r} is not true/false")
        duration = options.get("duration_s")
        return cls(
            width=width,
            height=height,
            fps=num("fps", 30, 1, 120),
            color=_parse_color(options["color"])
            if "color" in options
            else color_for(participant_id),
            tone_hz=num("tone_hz", tone_for(participant_id), 20, 20000),
            sample_rate=num("sample_rate", 48000, 8000, 192000, int),
            channels=num("channels", 1, 1, 2, int),
            marker_interval_s=num("marker_interval_s", 3.0, 0, 3600),
            realtime=realtime,
            duration_s=None if duration is None else num("duration_s", 0, 0, 1e9),
        )


class _Clock:
    """The participant's capture clock, shared by its video and audio track.

    Realtime: media time 0 is the first ``recv()`` of either track, and media
    time ``t`` is due ``t`` seconds later, so the two tracks stay in step
    whenever each starts being read (like a camera and a microphone: what
    nobody read before a track's first ``recv()`` is gone). Otherwise frames
    are returned at once.
    """

    def __init__(self, realtime: bool):
        self.realtime = realtime
        self.start: float | None = None

    def begin(self) -> float:
        """Called on a track's first ``recv()``: media time to start that track at."""
        if not self.realtime:
            return 0.0
        if self.start is None:
            self.start = time.monotonic()
            return 0.0
        return time.monotonic() - self.start

    async def wait(self, at: float) -> None:
        if not self.realtime or self.start is None:
            await asyncio.sleep(0)  # stay cooperative
            return
        delay = self.start + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class SyntheticVideoTrack(MediaStreamTrack):
    """Colour field, moving bar, white flash frames at the markers."""

    kind = "video"

    def __init__(self, opts: SyntheticOptions, clock: _Clock | None = None):
        super().__init__()
        self.opts = opts
        self._i = 0
        self._begun = False
        self._clock = clock or _Clock(opts.realtime)
        w, h = opts.width, opts.height
        y, u, v = rgb_to_yuv(opts.color)
        base = np.empty(w * h * 3 // 2, np.uint8)
        base[: w * h] = y
        base[w * h : w * h * 5 // 4] = u
        base[w * h * 5 // 4 :] = v
        self._base = base
        flash = np.empty_like(base)
        flash[: w * h] = 235
        flash[w * h :] = 128
        self._flash = flash.reshape(h * 3 // 2, w)
        self._bar_w = max(2, w // 12 // 2 * 2)
        self.flash_frames: list[int] = []  # indexes of marker frames sent

    def _is_marker(self, i: int) -> bool:
        m = self.opts.marker_interval_s
        if m <= 0 or i == 0:
            return False
        t, prev = i / self.opts.fps, (i - 1) / self.opts.fps
        return int(t / m + 1e-9) > int(prev / m + 1e-9)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if not self._begun:
            self._begun = True
            self._i = math.ceil(self._clock.begin() * self.opts.fps - 1e-9)
        i = self._i
        t = i / self.opts.fps
        if self.opts.duration_s is not None and t >= self.opts.duration_s:
            self.stop()
            raise MediaStreamError
        await self._clock.wait(t)
        self._i += 1
        w, h = self.opts.width, self.opts.height
        if self._is_marker(i):
            self.flash_frames.append(i)
            data = self._flash
        else:
            buf = self._base.copy()
            ys = buf[: w * h].reshape(h, w)
            x = int((t * w / 4) % (w - self._bar_w))  # the bar crosses in 4 s
            ys[:, x : x + self._bar_w] = 40
            data = buf.reshape(h * 3 // 2, w)
        frame = av.VideoFrame.from_ndarray(data, format="yuv420p")
        frame.pts = round(t * VIDEO_CLOCK_RATE)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        return frame


class SyntheticAudioTrack(MediaStreamTrack):
    """Steady sine tone; a 50 ms beep at every marker; 20 ms s16 frames."""

    kind = "audio"

    def __init__(self, opts: SyntheticOptions, clock: _Clock | None = None):
        super().__init__()
        self.opts = opts
        self._sample = 0
        self._begun = False
        self._clock = clock or _Clock(opts.realtime)
        self._n = int(opts.sample_rate * AUDIO_PTIME)

    def _samples(self, start: int, n: int) -> np.ndarray:
        rate = self.opts.sample_rate
        idx = np.arange(start, start + n, dtype=np.float64)
        t = idx / rate
        out = TONE_AMPLITUDE * np.sin(2 * np.pi * self.opts.tone_hz * t)
        m = self.opts.marker_interval_s
        if m > 0:
            k = np.floor(t / m + 1e-9)
            since = t - k * m
            beep = (k >= 1) & (since < BEEP_S)
            if beep.any():
                out = np.where(beep, BEEP_AMPLITUDE * np.sin(2 * np.pi * BEEP_HZ * since), out)
        return np.round(out * 32767).astype(np.int16)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        rate = self.opts.sample_rate
        if not self._begun:
            self._begun = True
            self._sample = math.ceil(self._clock.begin() * rate / self._n - 1e-9) * self._n
        start = self._sample
        if self.opts.duration_s is not None and start >= self.opts.duration_s * rate:
            self.stop()
            raise MediaStreamError
        await self._clock.wait(start / rate)
        self._sample += self._n
        mono = self._samples(start, self._n)
        layout = "mono" if self.opts.channels == 1 else "stereo"
        data = mono if self.opts.channels == 1 else np.repeat(mono, 2)
        frame = av.AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = fractions.Fraction(1, rate)
        return frame


class SyntheticSource:
    """Source plugin ``synthetic`` (see the module docstring for the options)."""

    name = "synthetic"

    def create(self, participant: Participant, options: Mapping[str, Any]) -> ParticipantMedia:
        opts = SyntheticOptions.parse(participant.id, options)
        clock = _Clock(opts.realtime)
        return ParticipantMedia(
            participant,
            video=SyntheticVideoTrack(opts, clock),
            audio=SyntheticAudioTrack(opts, clock),
        )
