"""Decode a stored recording with PyAV and check what a person would see and hear.

Chromium's fake camera sends a green picture with a moving pie and a clock whose
background brightness cycles (luma ~11..60 in under a second): "not black" is
judged over time (the tile's mean and maximum brightness), "live" by the
picture's detail (spatial variance), never by one frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from recfw.media.layout import fit, grid
from recfw.testing.media import has_reconnecting_label

#: Chromium's fake camera sends what the page asks for: [server] videoWidth x videoHeight.
SOURCE_W, SOURCE_H = 1280, 720


@dataclass
class Checked:
    width: int
    height: int
    fps: float
    frames: int
    live_frames: int  # frames in which every expected tile has a picture
    tiles: list[dict]  # per expected tile, over the live frames
    outside: float  # mean brightness outside the expected tiles, over the live frames
    audio_rms: float
    audio_peak_rms: float


def check_recording(path: Path, people: int) -> Checked:
    """Decode ``path``; measure each expected grid tile (for ``people`` tiles) and the audio."""
    with av.open(str(path)) as container:
        vstream = container.streams.video[0]
        fps = float(vstream.average_rate or 30)
        frames = [f.to_ndarray(format="gray") for f in container.decode(vstream)]
    with av.open(str(path)) as container:
        raw = [f.to_ndarray() for f in container.decode(container.streams.audio[0])]
    is_float = bool(raw) and raw[0].dtype.kind == "f"
    pcm = [x.astype(np.float64).reshape(-1) for x in raw]
    assert frames, "no video frames"
    h, w = frames[0].shape
    rects = [fit(SOURCE_W, SOURCE_H, cell) for cell in grid(people, w, h)]
    mask = np.zeros((h, w), bool)
    for r in rects:
        mask[r.y : r.y + r.h, r.x : r.x + r.w] = True

    def inner(f, r):
        return f[r.y + 8 : r.y + r.h - 8, r.x + 8 : r.x + r.w - 8]

    live = [f for f in frames if all(inner(f, r).mean() > 8 for r in rects)]
    tiles = []
    for r in rects:
        means = [float(inner(f, r).mean()) for f in live] or [0.0]
        variances = [float(inner(f, r).var()) for f in live] or [0.0]
        mean, variance = float(np.mean(means)), float(np.mean(variances))
        tiles.append({"mean": mean, "max": max(means), "variance": variance})
    outside = float(np.median([f[~mask].mean() for f in live])) if live else 0.0
    audio = np.concatenate(pcm) if pcm else np.zeros(1)
    if is_float:  # scale to 16-bit units
        audio = audio * 32767
    win = 4800
    windows = [audio[i : i + win] for i in range(0, max(len(audio) - win, 1), win)]
    peak = max(float(np.sqrt(np.mean(x**2))) for x in windows)
    return Checked(
        width=w,
        height=h,
        fps=fps,
        frames=len(frames),
        live_frames=len(live),
        tiles=tiles,
        outside=outside,
        audio_rms=float(np.sqrt(np.mean(audio**2))),
        audio_peak_rms=peak,
    )


def assert_two_person_recording(path: Path, min_seconds: float = 1.5) -> Checked:
    """720p; a 2-tile grid (the recorder is no tile); both tiles show a live picture; sound."""
    checked = check_recording(path, people=2)
    assert (checked.width, checked.height) == (1280, 720), checked
    assert checked.live_frames >= min_seconds * checked.fps, f"too few live frames: {checked}"
    for i, tile in enumerate(checked.tiles):
        assert tile["mean"] > 20 and tile["max"] > 40, f"tile {i} is black: {checked}"
        assert tile["variance"] > 30, f"tile {i} is flat (no picture): {checked}"
    # Exactly the two-tile layout: outside the two pictures it is dark (a third tile,
    # e.g. a recorder, would make a 2x2 grid and put picture there).
    assert checked.outside < 10, f"picture outside the two tiles: {checked}"
    assert checked.audio_peak_rms > 300, f"no audible audio: {checked}"
    return checked


def reconnect_tiles(path: Path, people: int) -> list[dict]:
    """Per grid tile of a ``people``-tile composite: in how many frames it shows the
    RECONNECTING label, and in how many frames before the first and after the last
    labelled one it shows a live picture (Chromium's fake camera: lit, with detail)."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert frames, "no video frames"
    h, w = frames[0].shape[:2]
    out = []
    for cell in grid(people, w, h):
        r = fit(SOURCE_W, SOURCE_H, cell)
        labels, live = [], []
        for f in frames:
            labels.append(has_reconnecting_label(f, cell))
            inner = f[r.y + 8 : r.y + r.h - 8, r.x + 8 : r.x + r.w - 8].mean(axis=2)
            live.append(bool(inner.mean() > 8 and inner.var() > 30))
        marked = [i for i, x in enumerate(labels) if x]
        first = marked[0] if marked else len(frames)
        last = marked[-1] if marked else len(frames)
        out.append(
            {
                "label": bool(marked),
                "label_frames": len(marked),
                "live_before": sum(live[:first]),
                "live_after": sum(live[last + 1 :]) if marked else 0,
            }
        )
    return out
