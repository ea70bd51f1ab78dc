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


def test_one_reformatter_per_participant_for_every_picture():
    comp = Compositor(1280, 720)
    seen = []
    for i in range(5):  # a new picture of each participant every time
        comp.render([Tile("a", solid(640, 480, 50 + i)), Tile("b", solid(320, 240, 150 + i))])
        seen.append(dict(comp.scalers))
    assert set(seen[0]) == {"a", "b"}
    for scalers in seen[1:]:
        assert all(scalers[p] is seen[0][p] for p in "ab")
    comp.render([Tile("b", solid(320, 240, 90))])
    assert set(comp.scalers) == {"b"} and comp.scalers["b"] is seen[0]["b"]


def test_reused_canvases_always_show_the_current_pictures():
    # The ring of canvases repaints only what changed: every output must still be
    # exactly what a fresh compositor draws for the same tiles.
    comp = Compositor(1280, 720)
    a1, a2, b = solid(640, 480, 60), solid(640, 480, 200), solid(640, 360, 120)
    script = [
        [Tile("a", a1), Tile("b", b)],
        [Tile("a", a2), Tile("b", b)],  # a new picture of a, b held
        [Tile("a", a2), Tile("b", b)],  # nothing new
        [Tile("a", a1), Tile("b", None)],  # b's camera off
        [Tile("b", b)],  # a left: a new layout
        [Tile("c", a1), Tile("b", b)],  # a new participant in a's old cell
        [Tile("b", b), Tile("c", a1)],  # the order changed
    ]
    for tiles in script:
        want = luma(Compositor(1280, 720).render(tiles)).copy()
        assert np.array_equal(luma(comp.render(tiles)), want)


def test_a_frame_kept_by_its_reader_is_not_drawn_over():
    comp = Compositor(1280, 720)
    kept = comp.render([Tile("a", solid(640, 480, 60))])
    before = luma(kept).copy()
    for y in (100, 150, 200):
        comp.render([Tile("a", solid(640, 480, y))])
    assert np.array_equal(luma(kept), before)
