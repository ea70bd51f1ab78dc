"""recfw-webm: the ``webm`` file format (VP8 or VP9 video, Opus audio) for recfw."""

from .encoder import WebmEncoder, WebmStream

__all__ = ["WebmEncoder", "WebmStream"]
__version__ = "0.1.0"
