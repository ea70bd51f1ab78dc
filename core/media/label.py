"""The "RECONNECTING" label drawn over a tile whose participant's media stopped.

The letters come from :mod:`.glyphs` (the composite's one tiny 5x7 bitmap font):
no font files, no per-pixel Python. :func:`mark_tile`
dims the tile (the held last picture stays visible underneath) and draws the
label in a dark band across its middle, on ``yuv420p`` planes.
"""

from __future__ import annotations

import numpy as np

from .glyphs import render
from .layout import Rect

#: What a tile shows while its participant reconnects.
RECONNECTING = "RECONNECTING"


def mark_tile(planes: list[np.ndarray], rect: Rect, text: str = RECONNECTING) -> None:
    """Dim ``rect`` of a ``yuv420p`` picture and write ``text`` across its middle."""
    y, u, v = planes
    region = y[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w]
    region //= 3
    region += 11  # limited range: black stays black, white becomes mid grey
    cy, cx, ch, cw = rect.y // 2, rect.x // 2, rect.h // 2, rect.w // 2
    for plane in (u, v):
        chroma = plane[cy : cy + ch, cx : cx + cw]
        chroma //= 2
        chroma += 64  # halfway to neutral grey
    scale = max(1, min(rect.w // (6 * len(text) + 8), rect.h // 20))
    mask = render(text, scale)
    mh, mw = mask.shape
    if mw + 4 * scale > rect.w or mh + 4 * scale > rect.h:
        return  # a tile too small for the label: dimmed only
    band_h = mh + 4 * scale
    top = rect.y + (rect.h - band_h) // 2 // 2 * 2
    region = y[top : top + band_h, rect.x : rect.x + rect.w]
    region[:] = 24
    left = rect.x + (rect.w - mw) // 2
    glyphs = y[top + 2 * scale : top + 2 * scale + mh, left : left + mw]
    glyphs[mask] = 235
    ct = top // 2
    for plane in (u, v):
        plane[ct : ct + band_h // 2, cx : cx + cw] = 128
