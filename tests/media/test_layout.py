"""The grid layout (pure functions) and who gets a tile."""

from __future__ import annotations

import io
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from recfw.media import CompositeRecorder, fit, grid, grid_shape
from recfw.media.layout import Rect
from recfw.plugins.encoders import MkvEncoder
from recfw.plugins.sources.synthetic import SyntheticSource
from recfw.rooms import Participant, Role


@pytest.mark.parametrize(
    ("n", "shape"),
    [
        (1, (1, 1)),
        (2, (2, 1)),
        (3, (2, 2)),
        (4, (2, 2)),
        (5, (3, 2)),
        (6, (3, 2)),
        (7, (3, 3)),
        (9, (3, 3)),
        (10, (4, 3)),
        (16, (4, 4)),
    ],
)
def test_grid_shapes_like_meeting_products(n, shape):
    assert grid_shape(n) == shape
    assert len(grid(n, 1280, 720)) == n


def test_one_person_fills_the_frame():
    [cell] = grid(1, 1280, 720)
    r = fit(1280, 720, cell)
    assert r.w >= 1260 and r.h >= 700


def _overlap(a: Rect, b: Rect) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


@given(
    n=st.integers(1, 25),
    src=st.tuples(st.integers(16, 3840), st.integers(16, 2160)),
)
def test_tiles_inside_disjoint_even_and_keep_aspect(n, src):
    cells = grid(n, 1280, 720)
    for c in cells:
        assert c.x >= 0 and c.y >= 0 and c.x + c.w <= 1280 and c.y + c.h <= 720
        assert c.x % 2 == c.y % 2 == c.w % 2 == c.h % 2 == 0
        r = fit(*src, c)
        assert c.x <= r.x and r.x + r.w <= c.x + c.w and c.y <= r.y and r.y + r.h <= c.y + c.h
        # aspect ratio kept (within the rounding to even pixels)
        assert abs(r.w / r.h - src[0] / src[1]) <= (src[0] / src[1]) * (2 / min(r.w, r.h)) + 0.02
        # and the picture touches the cell on one axis (letterbox, not shrunk)
        assert r.w >= c.w - 4 or r.h >= c.h - 4
    for a, b in itertools.combinations(cells, 2):
        assert not _overlap(a, b)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="canvas size"):
        grid(2, 0, 720)
    with pytest.raises(ValueError, match="source size"):
        fit(0, 10, Rect(0, 0, 10, 10))


async def test_recorder_role_never_becomes_a_tile():
    src = SyntheticSource()
    rec = CompositeRecorder(MkvEncoder(), io.BytesIO(), realtime=False)
    rec.add(src.create(Participant("rec-1", role=Role.RECORDER), {"realtime": False}))
    rec.add(src.create(Participant("p1", role=Role.HOST), {"realtime": False}))
    await rec.start()
    await rec.wait_until(0.2)
    assert rec.tiles == ["p1"]
    rec.add(src.create(Participant("rec-2", role=Role.RECORDER), {"realtime": False}))
    assert rec.tiles == ["p1"]
    rec.remove("p1")
    assert rec.tiles == []
    stats = await rec.stop()
    assert stats.video_frames == 6
