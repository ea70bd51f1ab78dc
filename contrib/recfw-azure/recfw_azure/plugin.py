"""The entry point recfw loads: registers the ``azure`` sink."""

from __future__ import annotations

from recfw import hookimpl

from .sink import AzureSink


@hookimpl
def recfw_register_sinks(register) -> None:
    """Register ``destination.provider = "azure"``."""
    register(AzureSink())
