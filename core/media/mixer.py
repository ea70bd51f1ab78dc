"""Audio mix of all participants, without clipping."""

from __future__ import annotations

import numpy as np

#: Peak level the mix is limited to (full scale is 1.0).
CEILING = 0.97
#: How fast the limiter's gain recovers, per second.
RELEASE_PER_S = 2.0


class Mixer:
    """Sums float tracks and applies a limiter so the sum never clips.

    The gain drops at once when the sum would exceed :data:`CEILING` and
    recovers smoothly (a linear ramp within each block), so quiet passages keep
    their level and loud overlaps are not distorted.
    """

    def __init__(self, sample_rate: int, channels: int):
        self.rate = sample_rate
        self.channels = channels
        self.gain = 1.0

    def mix(self, tracks: list[np.ndarray], samples: int) -> np.ndarray:
        """Mix ``tracks`` (float32, shape ``(samples, channels)``) into int16 samples."""
        if tracks:
            total = np.sum(tracks, axis=0, dtype=np.float32)
        else:
            total = np.zeros((samples, self.channels), np.float32)
        peak = float(np.max(np.abs(total))) if total.size else 0.0
        target = min(1.0, CEILING / peak) if peak > 0 else 1.0
        release = RELEASE_PER_S * samples / self.rate
        new_gain = min(target, self.gain + release)
        if self.gain == new_gain == 1.0:  # nothing to limit: no ramp
            pass
        elif total.size:
            ramp = np.linspace(self.gain, new_gain, samples, dtype=np.float32)
            ramp = np.minimum(ramp, target)[:, None]
            total *= ramp
        self.gain = new_gain
        return np.clip(np.rint(total * 32767.0), -32768, 32767).astype(np.int16)
