"""Decode a stored recording with PyAV and check what a person would see and hear.

Chromium's fake camera sends a green picture with a sweeping pie and a clock; the
pie grows each second, so in a tile of the 2-tile grid the mean luma ramps from
about 5 to 33 and drops back, every second. "Not black" is judged over time (the
tile's mean and maximum brightness), "a picture" by its detail (spatial
variance), "live" by its brightness changing from frame to frame (a
placeholder or a frozen picture never changes), never by one frame. On a
starved machine Chromium sends a new picture only every 0.2-0.4 s, so a few
seconds hold only a handful of distinct pictures: the bounds are far from what
black, a placeholder or a frozen tile give, not close to the usual figures.

A recording that starts with one person shows that person full-frame at first;
only frames in the expected layout (dark outside its tiles) are measured.
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
    live_frames: int  # frames in the expected layout in which every tile has a picture
    tiles: list[dict]  # per expected tile, over the live frames
    outside: float  # mean brightness outside the expected tiles, over the live frames
    audio_rms: float
    audio_peak_rms: float


def _plane(frame: av.VideoFrame, index: int) -> np.ndarray:
    plane = frame.planes[index]
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    return rows[: plane.height, : plane.width]


def _frame_figures(frame: av.VideoFrame, rects: list, mask: np.ndarray) -> dict:
    """Per tile: luma mean and variance, and colour (mean chroma distance from grey,
    0 for black, grey and placeholders, ~256 for Chromium's fake camera, which leaves
    its chroma planes at 0); outside the tiles: luma and colour."""
    gray = frame.to_ndarray(format="gray")
    yuv = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
    colour = np.abs(_plane(yuv, 1).astype(np.int16) - 128) + np.abs(
        _plane(yuv, 2).astype(np.int16) - 128
    )
    tiles = []
    for r in rects:
        top, bottom, left, right = r.y + 8, r.y + r.h - 8, r.x + 8, r.x + r.w - 8
        luma = gray[top:bottom, left:right]
        chroma = colour[top // 2 : bottom // 2, left // 2 : right // 2]
        tiles.append((float(luma.mean()), float(luma.var()), float(chroma.mean())))
    small = mask[::2, ::2][: colour.shape[0], : colour.shape[1]]
    if mask.all():  # one tile fills the frame
        return {"tiles": tiles, "outside": 0.0, "outside_colour": 0.0}
    return {
        "tiles": tiles,
        "outside": float(gray[~mask].mean()),
        "outside_colour": float(colour[~small].mean()),
    }


def check_recording(path: Path, people: int) -> Checked:
    """Decode ``path``; measure each expected grid tile (for ``people`` tiles) and the audio."""
    figures = []
    with av.open(str(path)) as container:
        vstream = container.streams.video[0]
        fps = float(vstream.average_rate or 30)
        for frame in container.decode(vstream):
            if not figures:
                h, w = frame.height, frame.width
                rects = [fit(SOURCE_W, SOURCE_H, cell) for cell in grid(people, w, h)]
                mask = np.zeros((h, w), bool)
                for r in rects:
                    mask[r.y : r.y + r.h, r.x : r.x + r.w] = True
            figures.append(_frame_figures(frame, rects, mask))
    with av.open(str(path)) as container:
        raw = [f.to_ndarray() for f in container.decode(container.streams.audio[0])]
    is_float = bool(raw) and raw[0].dtype.kind == "f"
    pcm = [x.astype(np.float64).reshape(-1) for x in raw]
    assert figures, "no video frames"

    # Only frames in the expected layout count: one person full-frame, or a third
    # tile, puts picture (light or colour) outside the expected tiles.
    laid_out = [f for f in figures if f["outside"] < 10 and f["outside_colour"] < 10]
    # Live: every tile shows the camera's colours, not black or a grey placeholder.
    live = [f for f in laid_out if all(colour > 64 for _, _, colour in f["tiles"])]
    tiles = []
    for i in range(len(rects)):
        means = [f["tiles"][i][0] for f in live] or [0.0]
        variances = [f["tiles"][i][1] for f in live] or [0.0]
        tiles.append(
            {
                "mean": float(np.mean(means)),
                "max": max(means),
                # pictures that differ from the one before (brightness by > 0.5)
                "changes": int(np.sum(np.abs(np.diff(means)) > 0.5)),
                "variance": float(np.mean(variances)),
            }
        )
    outside = float(np.median([f["outside"] for f in figures]))
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
        frames=len(figures),
        live_frames=len(live),
        tiles=tiles,
        outside=outside,
        audio_rms=float(np.sqrt(np.mean(audio**2))),
        audio_peak_rms=peak,
    )


def assert_tiles_live(checked: Checked, min_seconds: float) -> None:
    """720p; at least ``min_seconds`` in which every tile shows Chromium's fake camera,
    lit, with detail, and changing."""
    assert (checked.width, checked.height) == (1280, 720), checked
    assert checked.live_frames >= min_seconds * checked.fps, f"too few live frames: {checked}"
    for i, tile in enumerate(checked.tiles):
        assert tile["mean"] > 8 and tile["max"] > 12, f"tile {i} is black: {checked}"
        assert tile["variance"] > 30, f"tile {i} is flat (no picture): {checked}"
        assert tile["changes"] >= 2, f"tile {i} does not change (not live): {checked}"


def assert_two_person_recording(path: Path, min_seconds: float = 1.5) -> Checked:
    """720p; a 2-tile grid (the recorder is no tile); both tiles show a live picture; sound."""
    checked = check_recording(path, people=2)
    assert_tiles_live(checked, min_seconds)
    # Mostly the two-tile layout: outside the two pictures it is dark (a third tile,
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
