"""The compositor on its own: tiles placed, letterboxed, placeholders for no video."""

from __future__ import annotations

import av
import numpy as np
from recfw.media import fit, grid
from recfw.media.compositor import BACKGROUND, NO_VIDEO, Compositor, Tile


def solid(w: int, h: int, y: int) -> av.VideoFrame:
    data = np.full((h * 3 // 2, w), 128, np.uint8)
    data[:h] = y
    return av.VideoFrame.from_ndarray(data, format="yuv420p")


def luma(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray()[: frame.height]


def test_tiles_letterboxed_in_their_cells():
    comp = Compositor(1280, 720)
    a, b = solid(640, 480, 200), solid(1280, 720, 100)
    out = comp.render([Tile("a", a), Tile("b", b)])
    assert (out.width, out.height, out.format.name) == (1280, 720, "yuv420p")
    y = luma(out)
    ca, cb = grid(2, 1280, 720)
    ra, rb = fit(640, 480, ca), fit(1280, 720, cb)
    assert np.all(y[ra.y + 2 : ra.y + ra.h - 2, ra.x + 2 : ra.x + ra.w - 2] == 200)
    assert np.all(y[rb.y + 2 : rb.y + rb.h - 2, rb.x + 2 : rb.x + rb.w - 2] == 100)
    # letterbox bars above and below the 4:3 picture in its 16:9-ish cell are background
    assert ra.y > ca.y
    assert np.all(y[ca.y : ra.y, ca.x : ca.x + ca.w] == BACKGROUND[0])
    assert abs(ra.w / ra.h - 4 / 3) < 0.02


def test_participant_without_video_gets_a_placeholder():
    comp = Compositor(1280, 720)
    out = comp.render([Tile("a", solid(320, 240, 200)), Tile("cam-off", None)])
    cell = grid(2, 1280, 720)[1]
    y = luma(out)
    assert np.all(y[cell.y : cell.y + cell.h, cell.x : cell.x + cell.w] == NO_VIDEO[0])


def test_layout_follows_the_tiles_given():
    comp = Compositor(1280, 720)
    f = solid(640, 360, 180)
    one = luma(comp.render([Tile("a", f)]))
    four = luma(comp.render([Tile(p, f) for p in "abcd"]))
    assert (one == 180).mean() > 0.95  # one person fills the frame
    assert 0.8 < (four == 180).mean() < 0.97  # four tiles with gaps between them
    empty = luma(comp.render([]))
    assert np.all(empty == BACKGROUND[0])
