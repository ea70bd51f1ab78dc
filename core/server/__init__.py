"""The room server of ``recfw run``: room pages, signalling, and recording real meetings.

See docs/rooms.md for the topology and the protocol.
"""

from .app import RoomServer, web_dir
from .ice import filter_sdp, restrict_host_addresses
from .room import Client, Room

__all__ = ["Client", "Room", "RoomServer", "filter_sdp", "restrict_host_addresses", "web_dir"]
