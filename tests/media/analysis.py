"""Decode a composite recording with PyAV and measure what is in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from recfw.media import Rect, fit, grid

SCALE = 4  # frames are analysed at 1/4 size (320x180)


@dataclass
class Decoded:
    width: int = 0
    height: int = 0
    video_codec: str = ""
    audio_codec: str = ""
    video_times: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # rgb24, 1/SCALE size
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # mono
    audio_start: float = 0.0
    audio_rate: int = 48000
    audio_times: list[float] = field(default_factory=list)

    @property
    def video_duration(self) -> float:
        return len(self.video_times) / 30

    @property
    def audio_duration(self) -> float:
        return len(self.audio) / self.audio_rate


def decode(path: Path, tolerant: bool = False) -> Decoded:
    out = Decoded()
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        out.width, out.height = v.codec_context.width, v.codec_context.height
        out.video_codec, out.audio_codec = v.codec_context.name, a.codec_context.name
        try:
            for packet in c.demux(v, a):
                for frame in packet.decode():
                    t = float(frame.pts * frame.time_base)
                    if packet.stream.type == "video":
                        out.video_times.append(t)
                        small = frame.reformat(
                            width=frame.width // SCALE, height=frame.height // SCALE,
                            format="rgb24",
                        )  # fmt: skip
                        out.frames.append(small.to_ndarray())
                    else:
                        if not chunks:
                            out.audio_start = t
                            out.audio_rate = frame.sample_rate
                        out.audio_times.append(t)
                        data = frame.to_ndarray().astype(np.float32)
                        if frame.format.name.startswith("s16"):
                            data /= 32768.0
                        if frame.format.is_planar:
                            mono = data.mean(axis=0)
                        else:
                            mono = data.reshape(-1, frame.layout.nb_channels).mean(axis=1)
                        chunks.append(mono)
        except av.error.FFmpegError:
            if not tolerant:
                raise
    if chunks:
        out.audio = np.concatenate(chunks)
    return out


def tile_region(index: int, count: int, src: tuple[int, int]) -> Rect:
    """Where tile ``index`` of ``count`` shows a ``src``-sized picture, at 1/SCALE, shrunk 20%."""
    r = fit(src[0], src[1], grid(count, 1280, 720)[index])
    dx, dy = r.w // 10, r.h // 10
    return Rect((r.x + dx) // SCALE, (r.y + dy) // SCALE, (r.w - 2 * dx) // SCALE,
                (r.h - 2 * dy) // SCALE)  # fmt: skip


def region_color(frame: np.ndarray, r: Rect) -> np.ndarray:
    return np.median(frame[r.y : r.y + r.h, r.x : r.x + r.w].reshape(-1, 3), axis=0)


def close(c1, c2, tol: float = 40) -> bool:
    return bool(np.max(np.abs(np.asarray(c1, float) - np.asarray(c2, float))) <= tol)


def flash_times(d: Decoded) -> list[float]:
    """Times of the first frame of each run of frames where some tile area is near white."""
    times, prev = [], False
    for t, f in zip(d.video_times, d.frames, strict=True):
        # A tile flash makes a large block (>= 1/16 of the picture) white.
        white = (f.min(axis=2) > 200).mean() > 0.05
        if white and not prev:
            times.append(t)
        prev = white
    return times


def beep_times(d: Decoded, threshold: float = 0.6, quiet: float = 0.3) -> list[float]:
    """Onsets of loud beeps in the mixed audio."""
    loud = np.flatnonzero(np.abs(d.audio) > threshold)
    times: list[float] = []
    last = -1e9
    for i in loud:
        t = d.audio_start + i / d.audio_rate
        if t - last > quiet:
            times.append(t)
        last = t
    return times


def match(a: list[float], b: list[float], tol: float) -> list[tuple[float, float | None]]:
    """Each time in ``a`` with the nearest in ``b`` if within ``tol``, else None."""
    out = []
    for t in a:
        near = min(b, key=lambda x: abs(x - t), default=None)
        out.append((t, near if near is not None and abs(near - t) <= tol else None))
    return out
