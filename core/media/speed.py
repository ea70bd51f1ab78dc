"""When a live recording's encoder should trade quality for speed, and back.

:class:`SpeedGovernor` is pure: it is told, per output frame, its time (seconds
of output) and whether that frame's picture was dropped because the encoder was
behind (the bounded queue between compositor and encoder was full), and answers
with the speed step to use from now on (0: the configured x264 preset; higher:
faster presets, see ``speed_steps()`` of the built-in encoders' streams).

* **Down**: a dropped picture steps one preset faster, at most once per
  :attr:`SpeedGovernor.down_hold` seconds of output. After a step up, the first
  dropped picture steps back down at once. (The recorder only consults it once
  a picture made after the last change has been encoded: drops while the
  encoder works off the pictures queued before it say nothing about the new
  preset.)
* **Up**: :attr:`SpeedGovernor.up_after` seconds of output without a dropped picture step
  one preset slower (better quality), again and again until the configured one.
* **No see-saw**: when pictures are dropped within :attr:`SpeedGovernor.up_after`
  of a step up, that step up was too early: the wait before the next one doubles
  (up to :attr:`SpeedGovernor.max_up_after`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Seconds between two steps down.
DOWN_HOLD = 1.0
#: Seconds without a dropped picture before stepping back up.
UP_AFTER = 10.0
#: The longest wait before stepping up after see-sawing.
MAX_UP_AFTER = 160.0


@dataclass
class SpeedGovernor:
    """Chooses the encoder's speed step from dropped pictures (see the module docstring).

    ``steps`` is how many steps there are (``len(speed_steps())``); with one
    there is nothing to choose and :meth:`observe` always answers ``None``.
    """

    steps: int
    down_hold: float = DOWN_HOLD
    up_after: float = UP_AFTER
    max_up_after: float = MAX_UP_AFTER
    #: The step in use.
    step: int = 0
    #: Every change made: ``(time, step)``.
    changes: list[tuple[float, int]] = field(default_factory=list)
    _last_change: float = float("-inf")
    _last_drop: float = float("-inf")
    _last_down: float = float("-inf")
    _last_up: float = float("-inf")

    def observe(self, t: float, dropped: bool) -> int | None:
        """Frame at recording time ``t`` (its picture ``dropped`` or not): the new step
        if it changes now, else ``None``."""
        if self.steps < 2:
            return None
        if dropped:
            self._last_drop = t
            if t - self._last_up < self.up_after:
                # The last step up came too early: wait longer next time (once per step up).
                self.up_after = min(self.up_after * 2, self.max_up_after)
                self._last_up = float("-inf")
            if self.step < self.steps - 1 and t - self._last_down >= self.down_hold:
                self._last_down = t
                return self._change(t, self.step + 1)
            return None
        quiet_since = max(self._last_drop, self._last_change)
        if self.step > 0 and t - quiet_since >= self.up_after:
            self._last_up = t
            return self._change(t, self.step - 1)
        return None

    def _change(self, t: float, step: int) -> int:
        self.step = step
        self._last_change = t
        self.changes.append((t, step))
        return step
