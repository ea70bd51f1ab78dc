"""Built-in sources: ``synthetic`` (test participants) and ``file`` (a media file)."""

from __future__ import annotations

from recfw import hookimpl

from .file import FileSource
from .synthetic import SyntheticSource


@hookimpl
def recfw_register_sources(register) -> None:
    register(SyntheticSource())
    register(FileSource())


__all__ = ["FileSource", "SyntheticSource"]
