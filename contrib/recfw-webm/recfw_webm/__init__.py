"""recfw-webm: the ``webm`` file format (VP8 or VP9 video, Opus audio) for recfw."""

from importlib.metadata import version

from .encoder import WebmEncoder, WebmStream

__all__ = ["WebmEncoder", "WebmStream"]
__version__ = version("recfw-webm")  # the one version string is in pyproject.toml
