"""What settings validation and storing need from the installed plugins, and no more.

:class:`PluginRegistry` is a small protocol: the names of the installed
triggers, encoders and sinks, and one object by name. The plugin manager
(:class:`recfw.manager.Plugins`) fits it; so does any stand-in a test or an
embedding program builds. Code that only needs these (``recfw.settings``,
``recfw.storing``) depends on this protocol, not on the manager.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .encoding import Encoder
    from .storage import Sink


class PluginRegistry(Protocol):
    """The installed plugins' names, and a sink or encoder by name."""

    def trigger_names(self) -> list[str]:
        """The ``startTrigger`` values installed, sorted."""
        ...

    def encoder_names(self) -> list[str]:
        """The ``fileFormat`` values installed, sorted."""
        ...

    def sink_names(self) -> list[str]:
        """The ``destination.provider`` values installed, sorted."""
        ...

    def encoder(self, name: str) -> Encoder:
        """The encoder called ``name``; :class:`recfw.errors.PluginError` if none is."""
        ...

    def sink(self, name: str) -> Sink:
        """The sink called ``name``; :class:`recfw.errors.PluginError` if none is."""
        ...

    def provided_by(self, kind: str, name: str) -> str | None:
        """The name of the plugin that registered the ``kind`` (``"sinks"``, ...) in use
        as ``name``, or ``None`` when unknown (for messages about a broken plugin)."""
        ...


__all__ = ["PluginRegistry"]
