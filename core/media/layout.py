"""Grid layout of the composite: where each participant's tile goes.

Pure functions, no media: ``grid(n, width, height)`` gives the ``n`` cells of a
meeting-style grid, ``fit(src_w, src_h, cell)`` the letterboxed picture inside a
cell. All coordinates and sizes are even, so they can be used directly on
``yuv420p`` planes (chroma is subsampled by 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Gap between tiles and around the grid, in pixels (even).
GAP = 4


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle in output pixels."""

    x: int
    y: int
    w: int
    h: int


def _even(v: float) -> int:
    return max(2, int(v) // 2 * 2)


def grid_shape(n: int) -> tuple[int, int]:
    """(columns, rows) for ``n`` tiles: 1 -> 1x1, 2 -> 2x1, 3-4 -> 2x2, 5-9 -> 3x3, ..."""
    if n < 0:
        raise ValueError(f"number of tiles must be >= 0, got {n}")
    if n <= 1:
        return (1, 1)
    if n == 2:
        return (2, 1)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    return (cols, rows)


def grid(n: int, width: int, height: int, gap: int = GAP) -> list[Rect]:
    """The cells of ``n`` tiles on a ``width`` x ``height`` canvas, row by row.

    A last row that is not full is centred, like meeting products do.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"canvas size must be positive, got {width}x{height}")
    if n == 0:
        return []
    cols, rows = grid_shape(n)
    cell_w = _even((width - gap * (cols + 1)) / cols)
    cell_h = _even((height - gap * (rows + 1)) / rows)
    used_h = rows * cell_h + (rows - 1) * gap
    top = _even((height - used_h) / 2) if height > used_h else 0
    cells: list[Rect] = []
    for r in range(rows):
        in_row = min(cols, n - r * cols)
        used_w = in_row * cell_w + (in_row - 1) * gap
        left = _even((width - used_w) / 2) if width > used_w else 0
        for c in range(in_row):
            cells.append(Rect(left + c * (cell_w + gap), top + r * (cell_h + gap), cell_w, cell_h))
    return cells


def fit(src_w: int, src_h: int, cell: Rect) -> Rect:
    """The largest rectangle with ``src_w:src_h``'s aspect ratio centred in ``cell`` (letterbox)."""
    if src_w <= 0 or src_h <= 0:
        raise ValueError(f"source size must be positive, got {src_w}x{src_h}")
    scale = min(cell.w / src_w, cell.h / src_h)
    w = min(cell.w, _even(src_w * scale))
    h = min(cell.h, _even(src_h * scale))
    x = cell.x + (cell.w - w) // 2 // 2 * 2
    y = cell.y + (cell.h - h) // 2 // 2 * 2
    return Rect(x, y, w, h)
