"""Cut a live WebRTC connection's incoming traffic, for tests of media that stops.

:func:`cut_incoming` makes the aiortc peer connection ``pc`` (on this process's
event loop, e.g. the room server's end of a participant) drop what arrives:

* ``"media"``: DTLS, RTP and RTCP are dropped, ICE (STUN) still answered: the
  connection stays "connected" while no media arrives (a stalled sender);
* ``"all"``: every datagram is dropped, STUN too, so the consent checks
  (RFC 7675) get no answers and aioice gives up ("Consent to send expired"):
  the connection fails, as when a browser's network goes away.

Test-only: it reaches into aioice's private objects (``RTCIceTransport._connection``,
its ``_protocols``) and patches instances, never classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cut:
    """A cut in place: ``dropped`` counts the datagrams thrown away; :meth:`restore` ends it."""

    mode: str
    dropped: int = 0
    _undo: list[tuple[Any, str]] = field(default_factory=list)

    def restore(self) -> None:
        for owner, name in self._undo:
            owner.__dict__.pop(name, None)
        self._undo.clear()


def _ice_connections(pc: Any) -> list[Any]:
    connections = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is None:
            continue
        connection = dtls.transport._connection
        if connection not in connections:
            connections.append(connection)
    return connections


def cut_incoming(pc: Any, mode: str = "media") -> Cut:
    """Drop what reaches ``pc`` from now on (see the module doc for ``mode``)."""
    if mode not in ("media", "all"):
        raise ValueError(f"mode must be 'media' or 'all', not {mode!r}")
    cut = Cut(mode)
    connections = _ice_connections(pc)
    if not connections:
        raise ValueError("the peer connection has no ICE transport yet")

    def drop(*_args: Any) -> None:
        cut.dropped += 1

    for connection in connections:
        if mode == "media":
            connection.data_received = drop
            cut._undo.append((connection, "data_received"))
        else:
            for protocol in connection._protocols:
                protocol.datagram_received = drop
                cut._undo.append((protocol, "datagram_received"))
    return cut
