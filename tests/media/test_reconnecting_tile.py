"""A participant whose media stopped: their tile holds the last picture under a RECONNECTING
label, and new tracks (a reconnection) take the same tile in the same place."""

from __future__ import annotations

import av
import numpy as np
from recfw.media import CompositeRecorder
from recfw.media.compositor import Compositor, Tile
from recfw.media.layout import fit, grid
from recfw.testing.media import has_reconnecting_label

from .conftest import ENCODERS, synthetic

RED, BLUE = (220, 30, 30), (30, 30, 220)


def _picture(colour, w=320, h=240) -> av.VideoFrame:
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = colour
    rgb[:, ::8] = 0  # some detail
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


def test_the_label_is_drawn_on_the_held_picture_and_goes_again():
    compositor = Compositor(1280, 720)
    cells = grid(2, 1280, 720)
    red, blue = _picture(RED), _picture(BLUE)
    for _ in range(3):  # every canvas of the ring
        out = compositor.render([Tile("a", red, reconnecting=True), Tile("b", blue)]).to_ndarray(
            format="rgb24"
        )
        assert has_reconnecting_label(out, cells[0])
        assert not has_reconnecting_label(out, cells[1])
        # The held picture is still there, dimmed, above and below the band.
        r = fit(320, 240, cells[0])
        above = out[r.y + 20 : r.y + 60, r.x + 40 : r.x + 200]
        assert 40 < above[..., 0].mean() < 150 and above[..., 0].mean() > above[..., 2].mean()
    for _ in range(3):  # live again: the same picture, clean, on every canvas
        out = compositor.render([Tile("a", red), Tile("b", blue)]).to_ndarray(format="rgb24")
        assert not has_reconnecting_label(out, cells[0])
        mid = out[cells[0].y + cells[0].h // 2, cells[0].x + 20 : cells[0].x + 300]
        assert mid[..., 0].max() > 180  # red, undimmed


def test_a_participant_without_video_is_labelled_too():
    compositor = Compositor(1280, 720)
    out = compositor.render([Tile("a", None, reconnecting=True)]).to_ndarray(format="rgb24")
    assert has_reconnecting_label(out, grid(1, 1280, 720)[0])


async def test_new_tracks_take_the_same_tile_and_the_label_shows_while_away(tmp_path):
    path = tmp_path / "out.mkv"
    with open(path, "wb") as out:
        rec = CompositeRecorder(ENCODERS["mkv"], out, realtime=False)
        rec.add(synthetic("a", color=list(RED)))
        rec.add(synthetic("b", color=list(BLUE)))
        await rec.start()
        await rec.wait_until(1.0)
        rec.set_reconnecting("a", True)
        await rec.wait_until(2.0)
        rec.add(synthetic("a", color=list(RED)))  # a reconnected: new tracks
        rec.set_reconnecting("a", False)
        assert rec.tiles == ["a", "b"]  # the same place in the grid
        await rec.wait_until(3.0)
        await rec.stop()
    cells = grid(2, 1280, 720)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    labelled = [n for n, f in enumerate(frames) if has_reconnecting_label(f, cells[0])]
    assert labelled and not any(has_reconnecting_label(f, cells[1]) for f in frames)
    # From 1 s until the new video's first picture (a little after 2 s), never after.
    assert 29 <= labelled[0] <= 31 and 59 <= labelled[-1] <= 70, labelled
    assert labelled == list(range(labelled[0], labelled[-1] + 1))
    for n in (10, len(frames) - 10):  # a is red in tile 0 before and after
        tile = frames[n][cells[0].y + 200 : cells[0].y + 300, cells[0].x + 100 : cells[0].x + 300]
        assert tile[..., 0].mean() > 150 and tile[..., 2].mean() < 100, n
