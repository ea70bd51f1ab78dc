"""The video composite: participants' pictures scaled into a grid on one canvas.

Runs in the encoder's worker thread. Scaling is FFmpeg's (one
:class:`av.video.reformatter.VideoReformatter` per participant, so swscale's
context is built once per participant and picture size, not once per picture)
and placing is numpy slicing on the ``yuv420p`` planes: no per-pixel Python.

The canvases are reused: a small ring of output frames, each remembering what
it shows, so a picture only repaints the tiles whose picture changed (and the
background only when the layout changed).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from .glyphs import fit_scale, render
from .label import mark_tile
from .layout import Rect, fit, grid

#: Background (black) and the placeholder of a participant without video.
BACKGROUND = (16, 128, 128)
NO_VIDEO = (40, 128, 128)
#: Brightness (Y) of a label's text (the "+K more" cell).
LABEL_Y = 235
#: How tiles are scaled (FFmpeg's ``-vf scale=...:flags=bilinear``).
INTERPOLATION = Interpolation.BILINEAR
#: Output frames in the ring: one being drawn while the encoder may still hold the last.
CANVASES = 2


@dataclass
class Tile:
    """What one grid cell shows: a participant's current picture (``None``: no video).

    ``label``: a cell with text instead of a picture (the active grid's "+K more").
    """

    participant_id: str
    frame: av.VideoFrame | None
    label: str | None = None
    #: Their media stopped: the picture is dimmed under a "RECONNECTING" label.
    reconnecting: bool = False


def _planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """The Y, U, V planes of a ``yuv420p`` frame as 2-D views (line padding cut off)."""
    out = []
    for plane in frame.planes:
        buf = np.frombuffer(memoryview(plane), np.uint8)
        rows = buf.reshape(plane.height, plane.line_size)
        out.append(rows[:, : plane.width])
    return out


@dataclass
class _Scaler:
    """One participant's scaler and the last picture it scaled (a held picture is scaled once)."""

    reformatter: VideoReformatter = field(default_factory=VideoReformatter)
    source: av.VideoFrame | None = None
    rect: Rect | None = None
    planes: list[np.ndarray] | None = None
    #: Kept alive while ``planes`` (views into it) are used.
    scaled: av.VideoFrame | None = None

    def scale(self, frame: av.VideoFrame, rect: Rect) -> list[np.ndarray]:
        if self.planes is not None and self.source is frame and self.rect == rect:
            return self.planes
        scaled = self.reformatter.reformat(
            frame, rect.w, rect.h, "yuv420p", interpolation=INTERPOLATION, threads=1
        )
        self.source, self.rect, self.scaled = frame, rect, scaled
        self.planes = _planes(scaled)
        return self.planes


@dataclass
class _Canvas:
    """One reusable output frame and what is drawn on it."""

    frame: av.VideoFrame
    cells: list[Rect] = field(default_factory=list)
    #: cell index -> (participant id, source picture or None, picture rect, reconnecting)
    drawn: dict[int, tuple[str, av.VideoFrame | None, Rect, bool]] = field(default_factory=dict)


class Compositor:
    """Draws tiles onto a ``width`` x ``height`` canvas in the meeting-grid layout.

    :meth:`render` returns one of a few reused frames: its picture is valid
    until the :data:`CANVASES`-th next call. A frame still referenced elsewhere
    (by Python code, or by FFmpeg through a buffer reference) is never drawn
    over: it is replaced by a fresh frame or its buffer copied first.
    """

    def __init__(self, width: int, height: int):
        if width % 2 or height % 2:
            raise ValueError(f"output size must be even, got {width}x{height}")
        self.width = width
        self.height = height
        self._scalers: dict[str, _Scaler] = {}
        self._canvases: list[_Canvas] = []
        self._next = 0

    @property
    def scalers(self) -> dict[str, VideoReformatter]:
        """The reformatter kept for each participant in the composite."""
        return {pid: s.reformatter for pid, s in self._scalers.items()}

    def _canvas(self) -> _Canvas:
        if len(self._canvases) < CANVASES:
            canvas = _Canvas(av.VideoFrame(self.width, self.height, "yuv420p"))
            self._canvases.append(canvas)
        else:
            canvas = self._canvases[self._next]
            self._next = (self._next + 1) % CANVASES
            # Held by someone else (an encoder that keeps frames): leave it to them.
            # (references: the list entry, `canvas.frame`'s argument here)
            if sys.getrefcount(canvas.frame) > 2:
                canvas.frame = av.VideoFrame(self.width, self.height, "yuv420p")
                canvas.cells, canvas.drawn = [], {}
            else:
                # FFmpeg may still reference the buffer: then it is copied first.
                canvas.frame.make_writable()
        return canvas

    @staticmethod
    def _fill(planes: list[np.ndarray], rect: Rect, yuv: tuple[int, int, int]) -> None:
        y, u, v = planes
        y[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = yuv[0]
        cy, cx, ch, cw = rect.y // 2, rect.x // 2, rect.h // 2, rect.w // 2
        u[cy : cy + ch, cx : cx + cw] = yuv[1]
        v[cy : cy + ch, cx : cx + cw] = yuv[2]

    @staticmethod
    def _label(y: np.ndarray, cell: Rect, text: str) -> None:
        """``text`` in the middle of ``cell`` (luma only: white on the cell's grey)."""
        scale = fit_scale(text, cell.w * 2 // 3, cell.h // 3)
        mask = render(text, scale)
        h, w = mask.shape
        y0 = cell.y + (cell.h - h) // 2
        x0 = cell.x + (cell.w - w) // 2
        y[y0 : y0 + h, x0 : x0 + w][mask] = LABEL_Y

    def render(self, tiles: list[Tile]) -> av.VideoFrame:
        """One output frame (``yuv420p``) showing ``tiles`` in grid order."""
        canvas = self._canvas()
        planes = _planes(canvas.frame)
        cells = grid(len(tiles), self.width, self.height)
        if cells != canvas.cells:  # a new layout: start from the background
            planes[0][:] = BACKGROUND[0]
            planes[1][:] = BACKGROUND[1]
            planes[2][:] = BACKGROUND[2]
            canvas.cells, canvas.drawn = cells, {}
        live = set()
        for i, (tile, cell) in enumerate(zip(tiles, cells, strict=True)):
            pid, frame = tile.participant_id, tile.frame
            live.add(pid)
            before = canvas.drawn.get(i)
            marked = tile.reconnecting
            if frame is None or frame.width <= 0 or frame.height <= 0:
                if (
                    before is None
                    or before[1] is not None
                    or before[0] != pid
                    or before[3] != marked
                ):
                    self._fill(planes, cell, NO_VIDEO)
                    if tile.label:
                        self._label(planes[0], cell, tile.label)
                    if marked:
                        mark_tile(planes, cell)
                    canvas.drawn[i] = (pid, None, cell, marked)
                continue
            rect = fit(frame.width, frame.height, cell)
            if (
                before is not None
                and before[0] == pid
                and before[1] is frame
                and before[2] == rect
                and before[3] == marked
            ):
                continue  # this canvas already shows this picture here
            if before is None or before[2] != rect or before[3]:
                self._fill(planes, cell, BACKGROUND)  # the letterbox bars (or a label) go
            scaler = self._scalers.get(pid)
            if scaler is None:
                scaler = self._scalers[pid] = _Scaler()
            y, u, v = scaler.scale(frame, rect)
            planes[0][rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = y
            cy, cx = rect.y // 2, rect.x // 2
            planes[1][cy : cy + u.shape[0], cx : cx + u.shape[1]] = u
            planes[2][cy : cy + v.shape[0], cx : cx + v.shape[1]] = v
            if marked:
                mark_tile(planes, cell)
            canvas.drawn[i] = (pid, frame, rect, marked)
        for pid in [p for p in self._scalers if p not in live]:
            del self._scalers[pid]
        return canvas.frame
