"""The media pipeline: participants' tracks -> timeline -> 720p grid + audio mix -> encoder.

Other parts call one class, :class:`CompositeRecorder`; :mod:`.layout` holds the
pure grid functions.
"""

from .layout import Rect, fit, grid, grid_shape
from .recorder import CompositeRecorder, RecordingStats

__all__ = ["CompositeRecorder", "RecordingStats", "Rect", "fit", "grid", "grid_shape"]
