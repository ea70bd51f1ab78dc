"""The video composite: participants' pictures scaled into a grid on one canvas.

Runs in the encoder's worker thread. Scaling is FFmpeg's (``VideoFrame.reformat``)
and placing is numpy slicing on the ``yuv420p`` planes: no per-pixel Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from .layout import Rect, fit, grid

#: Background (dark grey) and the placeholder of a participant without video.
BACKGROUND = (16, 128, 128)
NO_VIDEO = (40, 128, 128)


@dataclass
class Tile:
    """What one grid cell shows: a participant's current picture (``None``: no video)."""

    participant_id: str
    frame: av.VideoFrame | None


def _planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """The Y, U, V planes of a ``yuv420p`` frame as 2-D views (line padding cut off)."""
    out = []
    for plane in frame.planes:
        buf = np.frombuffer(memoryview(plane), np.uint8)
        rows = buf.reshape(plane.height, plane.line_size)
        out.append(rows[:, : plane.width])
    return out


class Compositor:
    """Draws tiles onto a ``width`` x ``height`` canvas in the meeting-grid layout."""

    def __init__(self, width: int, height: int):
        if width % 2 or height % 2:
            raise ValueError(f"output size must be even, got {width}x{height}")
        self.width = width
        self.height = height
        #: participant id -> (source frame, target rect, scaled planes)
        self._cache: dict[str, tuple[av.VideoFrame, Rect, list[np.ndarray]]] = {}

    def _fill(self, rect: Rect, yuv: tuple[int, int, int]) -> None:
        self._y[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = yuv[0]
        cy, cx, ch, cw = rect.y // 2, rect.x // 2, rect.h // 2, rect.w // 2
        self._u[cy : cy + ch, cx : cx + cw] = yuv[1]
        self._v[cy : cy + ch, cx : cx + cw] = yuv[2]

    def _scaled(self, pid: str, frame: av.VideoFrame, rect: Rect) -> list[np.ndarray]:
        cached = self._cache.get(pid)
        if cached is not None and cached[0] is frame and cached[1] == rect:
            return cached[2]  # a held picture is scaled once
        scaled = frame.reformat(width=rect.w, height=rect.h, format="yuv420p")
        planes = [p.copy() for p in _planes(scaled)]
        self._cache[pid] = (frame, rect, planes)
        return planes

    def render(self, tiles: list[Tile]) -> av.VideoFrame:
        """One output frame (``yuv420p``) showing ``tiles`` in grid order."""
        # Drawn straight into the new frame's planes: no extra copy of the canvas.
        out = av.VideoFrame(self.width, self.height, "yuv420p")
        self._y, self._u, self._v = _planes(out)
        self._y[:] = BACKGROUND[0]
        self._u[:] = BACKGROUND[1]
        self._v[:] = BACKGROUND[2]
        cells = grid(len(tiles), self.width, self.height)
        for tile, cell in zip(tiles, cells, strict=True):
            if tile.frame is None or tile.frame.width <= 0 or tile.frame.height <= 0:
                self._fill(cell, NO_VIDEO)
                continue
            rect = fit(tile.frame.width, tile.frame.height, cell)
            y, u, v = self._scaled(tile.participant_id, tile.frame, rect)
            self._y[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = y
            cy, cx = rect.y // 2, rect.x // 2
            self._u[cy : cy + u.shape[0], cx : cx + u.shape[1]] = u
            self._v[cy : cy + v.shape[0], cx : cx + v.shape[1]] = v
        live = {t.participant_id for t in tiles}
        for pid in list(self._cache):
            if pid not in live:
                del self._cache[pid]
        return out
