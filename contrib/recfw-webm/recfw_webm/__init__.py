"""recfw-webm: the ``webm`` file format (VP8 or VP9 video, Opus audio) for recfw."""

from importlib.metadata import PackageNotFoundError, version

from .encoder import WebmEncoder, WebmStream

__all__ = ["WebmEncoder", "WebmStream"]
try:
    __version__ = version("recfw-webm")  # the one version string is in pyproject.toml
except PackageNotFoundError:  # imported from a source checkout (the project's own tests)
    __version__ = "0+unknown"
