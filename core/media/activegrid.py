"""The active grid: who gets a tile when more people are in the room than tiles fit.

Pure functions of (who is here, who spoke when, what was shown, the time): no
media, no clock of their own, so tests drive them with a virtual clock.

The rule (docs/architecture.md, "The composite"):

* Up to ``max_tiles`` people: everyone has a tile, in join order.
* More: ``max_tiles - 1`` people have a tile and the last cell says "+K more"
  (K: the people without a tile). Who has a tile is decided by recent
  activity: whoever spoke most recently first, then who joined first (people
  who have not spoken yet are ranked by join order).
* Hysteresis: a tile stays at least ``min_seconds`` (unless its person leaves,
  or the grid shrinks from "everyone" to the overflow layout). A person who
  should be shown takes the cell of the lowest-ranked person whose tile is past
  that time and who should no longer be shown; tiles keep their cells (no
  reshuffling when someone is replaced), and a free cell goes to the
  highest-ranked person without a tile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Default most tiles of the composite (4x4 at 1280x720: 312x174 pixels each).
MAX_TILES = 16
#: Default least seconds a tile stays once shown.
MIN_TILE_SECONDS = 3.0
#: Highest ``max_tiles`` (7x7: 176x98 pixels per tile at 720p).
MAX_TILES_LIMIT = 49
#: Audio at or above this level (RMS, dB below full scale) counts as speaking.
SPEAKING_DBFS = -45.0


@dataclass(frozen=True)
class GridPolicy:
    """How many tiles the composite has and how long a tile stays (validated)."""

    max_tiles: int = MAX_TILES
    min_seconds: float = MIN_TILE_SECONDS
    speaking_dbfs: float = SPEAKING_DBFS

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_tiles, bool)
            or not isinstance(self.max_tiles, int)
            or not 2 <= self.max_tiles <= MAX_TILES_LIMIT
        ):
            raise ValueError(
                f"maxTiles must be an integer from 2 to {MAX_TILES_LIMIT}, got {self.max_tiles!r}"
            )
        if (
            isinstance(self.min_seconds, bool)
            or not isinstance(self.min_seconds, int | float)
            or not 0 <= self.min_seconds <= 60
            or math.isnan(self.min_seconds)
        ):
            raise ValueError(
                f"minTileSeconds must be a number from 0 to 60, got {self.min_seconds!r}"
            )
        if not isinstance(self.speaking_dbfs, int | float) or not -120 <= self.speaking_dbfs <= 0:
            raise ValueError(
                f"speaking level must be from -120 to 0 dBFS, got {self.speaking_dbfs!r}"
            )

    @classmethod
    def from_layout(cls, layout: Mapping[str, Any] | None) -> GridPolicy:
        """From ``{"maxTiles": .., "minTileSeconds": ..}`` (``[server]`` settings, a job's
        ``layout``); missing keys take the defaults, unknown keys are an error."""
        layout = dict(layout or {})
        unknown = sorted(set(layout) - {"maxTiles", "minTileSeconds"})
        if unknown:
            raise ValueError(f"layout: unknown field(s) {', '.join(unknown)}")
        return cls(
            max_tiles=layout.get("maxTiles", MAX_TILES),
            min_seconds=layout.get("minTileSeconds", MIN_TILE_SECONDS),
        )


@dataclass(frozen=True)
class Candidate:
    """A person in the room: id, join order (lower: earlier), when they last spoke."""

    id: str
    order: int
    last_spoke: float | None = None


@dataclass(frozen=True)
class GridChoice:
    """Who is in which cell, since when each is shown, and how many have no tile."""

    cells: tuple[str, ...] = ()
    since: Mapping[str, float] = field(default_factory=dict)
    #: People without a tile (the "+K more" cell when > 0).
    overflow: int = 0

    @property
    def cell_count(self) -> int:
        """Cells of the grid: the people's tiles plus the overflow cell if any."""
        return len(self.cells) + (1 if self.overflow else 0)


def rank_key(c: Candidate) -> tuple[int, float, int]:
    """Sort key: most recent speaker first, then people who never spoke, by join order."""
    if c.last_spoke is None:
        return (1, 0.0, c.order)
    return (0, -c.last_spoke, c.order)


def choose(
    candidates: Sequence[Candidate],
    previous: GridChoice | None,
    now: float,
    policy: GridPolicy = GridPolicy(),  # noqa: B008 - frozen dataclass
) -> GridChoice:
    """The cells at ``now`` given who is here and what was shown (``previous``)."""
    ids = [c.id for c in candidates]
    if len(set(ids)) != len(ids):
        raise ValueError("candidates must have distinct ids")
    before = previous or GridChoice()
    present = {c.id: c for c in candidates}

    def since_of(pid: str) -> float:
        return before.since.get(pid, now) if pid in before.cells else now

    if len(candidates) <= policy.max_tiles:
        order = [c.id for c in sorted(candidates, key=lambda c: c.order)]
        return GridChoice(tuple(order), {pid: since_of(pid) for pid in order}, 0)

    slots = policy.max_tiles - 1
    ranked = sorted(candidates, key=rank_key)
    position = {c.id: i for i, c in enumerate(ranked)}
    desired = {c.id for c in ranked[:slots]}

    def protected(pid: str) -> bool:
        return now - since_of(pid) < policy.min_seconds

    cells: list[str | None]
    kept = [pid for pid in before.cells if pid in present]
    if len(before.cells) == slots and before.overflow:
        cells = [pid if pid in present else None for pid in before.cells]
    else:  # the layout changes: keep who was shown (the best of them if too many)
        if len(kept) > slots:
            drop = sorted(kept, key=lambda p: (p in desired, protected(p), -position[p]))
            gone = set(drop[: len(kept) - slots])
            kept = [pid for pid in kept if pid not in gone]
        cells = [*kept, *([None] * (slots - len(kept)))]
    since = {pid: since_of(pid) for pid in cells if pid is not None}

    shown = {pid for pid in cells if pid is not None}
    waiting = [c.id for c in ranked if c.id not in shown]
    # free cells: the best-ranked people without a tile
    for i, pid in enumerate(cells):
        if pid is None and waiting:
            cells[i] = newcomer = waiting.pop(0)
            since[newcomer] = now
            shown.add(newcomer)
    # people who should be shown take the cells of those who should not (past their time)
    for pid in [p for p in waiting if p in desired]:
        evictable = [
            i
            for i, other in enumerate(cells)
            if other is not None and other not in desired and not protected(other)
        ]
        if not evictable:
            break
        worst = max(evictable, key=lambda i: position[cells[i]])  # type: ignore[index]
        del since[cells[worst]]  # type: ignore[arg-type]
        cells[worst] = pid
        since[pid] = now
    final = tuple(pid for pid in cells if pid is not None)
    return GridChoice(final, since, len(candidates) - len(final))


def overflow_label(count: int) -> str:
    """The overflow cell's text: ``"+K more"``."""
    return f"+{count} more"


def level_dbfs(pcm: np.ndarray) -> float:
    """RMS level of float samples (full scale 1.0) in dB below full scale (-inf: silence)."""
    if pcm.size == 0:
        return -math.inf
    power = float(np.mean(np.square(pcm, dtype=np.float64)))
    if power <= 0:
        return -math.inf
    return 10 * math.log10(power)
