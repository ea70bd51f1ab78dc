"""What the REST API needs from the room server: :class:`RoomPlane`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..control import Database
    from ..recording import RecordingOverride
    from ..registry import PluginRegistry


class RoomPlane(Protocol):
    """What the API needs from the room server (:class:`recfw.server.RoomServer`)."""

    plugins: PluginRegistry
    #: The organization's recording defaults (meetings' overrides are laid over them).
    defaults: RecordingOverride
    #: The key of signed download links (:mod:`recfw.api.links`).
    link_key: bytes
    clock: Callable[[], datetime]

    def control_db(self) -> Database:
        """The control plane's database."""
        ...

    def links(self, room: str) -> tuple[str, str]:
        """``(visitor link, host link)`` of a room."""
        ...

    def public_base(self) -> str:
        """The server's base URL as others reach it (no trailing slash)."""
        ...

    def room_in_use(self, name: str) -> bool:
        """Whether a room of that name is open (made without a meeting, say)."""
        ...

    async def end_room(self, name: str, message: str) -> None:
        """Close a room: tell and disconnect everyone, stop and store its recording."""
        ...


__all__ = ["RoomPlane"]
