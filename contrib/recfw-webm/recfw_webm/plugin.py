"""The entry point recfw loads: registers the ``webm`` encoder."""

from __future__ import annotations

from recfw import hookimpl

from .encoder import WebmEncoder


@hookimpl
def recfw_register_encoders(register) -> None:
    """Register ``fileFormat = "webm"``."""
    register(WebmEncoder())
