"""The active grid rule (pure, virtual clock): who gets a tile when not everyone fits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recfw.media.activegrid import (
    Candidate,
    GridChoice,
    GridPolicy,
    choose,
    level_dbfs,
    overflow_label,
    rank_key,
)


def people(n: int, spoke: dict[int, float] | None = None) -> list[Candidate]:
    spoke = spoke or {}
    return [Candidate(f"p{i}", i, spoke.get(i)) for i in range(n)]


def test_everyone_fits_in_join_order():
    choice = choose(people(16)[::-1], None, 0.0)
    assert choice.cells == tuple(f"p{i}" for i in range(16))
    assert choice.overflow == 0 and choice.cell_count == 16


def test_beyond_max_tiles_the_last_cell_says_how_many_more():
    choice = choose(people(25), None, 0.0)
    assert len(choice.cells) == 15 and choice.overflow == 10 and choice.cell_count == 16
    assert choice.cells == tuple(f"p{i}" for i in range(15))  # nobody spoke: join order
    assert overflow_label(choice.overflow) == "+10 more"


def test_a_speaker_replaces_the_least_active_tile_after_its_minimum_time():
    policy = GridPolicy(max_tiles=4, min_seconds=3.0)
    choice = choose(people(6), None, 0.0, policy)
    assert choice.cells == ("p0", "p1", "p2")
    # p5 speaks at 1 s: every tile is younger than 3 s, so p5 waits
    choice = choose(people(6, {5: 1.0}), choice, 1.0, policy)
    assert "p5" not in choice.cells
    # at 3 s the tiles may change: p5 takes the cell of the lowest-ranked (p2, joined last)
    choice = choose(people(6, {5: 2.9}), choice, 3.0, policy)
    assert choice.cells == ("p0", "p1", "p5")
    assert choice.since["p5"] == 3.0 and choice.since["p0"] == 0.0
    # p4 speaks right after: p5's tile stays 3 s even though p4 spoke more recently
    choice = choose(people(6, {5: 2.9, 4: 3.5}), choice, 3.5, policy)
    # ... and p4 takes the cell of p1 (past its time, no longer among the top 3)
    assert choice.cells == ("p0", "p4", "p5")


def test_someone_leaving_frees_a_cell_for_the_best_ranked_without_one():
    policy = GridPolicy(max_tiles=4, min_seconds=3.0)
    choice = choose(people(6), None, 0.0, policy)
    rest = [c for c in people(6, {4: 0.5, 5: 0.7}) if c.id != "p1"]
    choice = choose(rest, choice, 1.0, policy)
    assert choice.cells == ("p0", "p5", "p2")  # p5 spoke last; nobody else moved
    assert choice.overflow == 2


def test_growing_past_max_tiles_keeps_the_speakers():
    policy = GridPolicy(max_tiles=4, min_seconds=3.0)
    choice = choose(people(4, {0: 0.1}), None, 1.0, policy)
    assert choice.overflow == 0
    choice = choose(people(5, {0: 0.1}), choice, 1.5, policy)
    # 3 tiles + "+2 more": p3 (joined last, never spoke) and p4 (new) have no tile
    assert choice.cells == ("p0", "p1", "p2") and choice.overflow == 2


def test_policy_is_validated_with_field_names():
    with pytest.raises(ValueError, match="maxTiles"):
        GridPolicy(max_tiles=1)
    with pytest.raises(ValueError, match="maxTiles"):
        GridPolicy(max_tiles=50)
    with pytest.raises(ValueError, match="maxTiles"):
        GridPolicy(max_tiles=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="minTileSeconds"):
        GridPolicy(min_seconds=-1)
    with pytest.raises(ValueError, match="minTileSeconds"):
        GridPolicy(min_seconds=math.nan)
    with pytest.raises(ValueError, match="distinct"):
        choose([Candidate("a", 0), Candidate("a", 1)], None, 0.0)


def test_levels():
    assert level_dbfs(np.zeros((960, 2), np.float32)) == -math.inf
    assert level_dbfs(np.zeros((0, 2), np.float32)) == -math.inf
    assert level_dbfs(np.ones((960, 2), np.float32)) == pytest.approx(0.0)
    t = np.arange(4800) / 48000
    tone = (8000 / 32768) * np.sin(2 * np.pi * 440 * t)
    assert level_dbfs(tone) == pytest.approx(20 * math.log10(8000 / 32768 / math.sqrt(2)), abs=0.1)


# --- properties over random meetings, on a virtual clock -----------------------------

events = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.just(0)),
        st.tuples(st.just("leave"), st.integers(0, 40)),
        st.tuples(st.just("speak"), st.integers(0, 40)),
        st.tuples(st.just("wait"), st.integers(1, 40)),  # tenths of a second
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(
    start=st.integers(0, 12),
    ops=events,
    max_tiles=st.integers(2, 6),
    min_tenths=st.integers(0, 50),
)
def test_tiles_follow_the_rule_in_any_meeting(start, ops, max_tiles, min_tenths):
    policy = GridPolicy(max_tiles=max_tiles, min_seconds=min_tenths / 10)
    now = 0.0
    joined = 0
    here: dict[str, Candidate] = {}
    for _ in range(start):
        here[f"p{joined}"] = Candidate(f"p{joined}", joined)
        joined += 1
    choice: GridChoice | None = None
    top_since: tuple[str, float] | None = None
    for kind, arg in [("wait", 0), *ops]:
        if kind == "join":
            here[f"p{joined}"] = Candidate(f"p{joined}", joined)
            joined += 1
        elif kind == "leave" and here:
            here.pop(sorted(here)[arg % len(here)])
        elif kind == "speak" and here:
            c = here[sorted(here)[arg % len(here)]]
            here[c.id] = Candidate(c.id, c.order, now)
        elif kind == "wait":
            now += arg / 10
        before = choice
        choice = choose(list(here.values()), before, now, policy)
        cells = choice.cells
        n = len(here)

        # the shape: everyone, or max_tiles - 1 tiles and a "+K more" cell
        assert len(set(cells)) == len(cells) and set(cells) <= set(here)
        if n <= max_tiles:
            assert sorted(cells, key=lambda p: here[p].order) == list(cells)
            assert len(cells) == n and choice.overflow == 0
        else:
            assert len(cells) == max_tiles - 1 and choice.overflow == n - len(cells)
            assert choice.cell_count == max_tiles
        assert set(choice.since) == set(cells)
        assert all(s <= now for s in choice.since.values())

        if before is not None and n > max_tiles and before.overflow:
            # hysteresis: a tile younger than min_seconds stays, in its cell
            for i, pid in enumerate(before.cells):
                if pid in here and now - before.since[pid] < policy.min_seconds:
                    assert pid in cells, (pid, before, choice)
                    if len(before.cells) == len(cells):
                        assert cells[i] == pid
                    assert choice.since[pid] == before.since[pid]

        # the most recent speaker gets a tile within min_seconds (while they stay on top)
        if here:
            top = min(here.values(), key=rank_key).id
            if top_since is None or top_since[0] != top:
                top_since = (top, now)
            if now - top_since[1] >= policy.min_seconds:
                assert top in cells, (top, top_since, now, choice)
        else:
            top_since = None
