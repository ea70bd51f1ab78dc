"""Which addresses ICE may use: the server's own candidates and the peers' it accepts.

aiortc gathers host candidates through :func:`aioice.ice.get_host_addresses`,
which lists every interface (and never loopback). The room server must offer
only the addresses of ``[server] iceAddresses``; :func:`restrict_host_addresses`
replaces that function for this process. There is no STUN or TURN server:
aiortc is given an empty ``iceServers`` list.

When every configured address is loopback the server can only be reached from
this machine, so remote candidates on other addresses are dropped from the
peer's SDP as well (:func:`filter_sdp`), and connectivity checks that arrive
from a non-loopback source address are ignored (a browser pairs its other
interfaces with our 127.0.0.1 candidate; those pairs must fail). Tests rely on
this to keep ICE and media on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

import aioice.ice

from . import consent

log = logging.getLogger(__name__)

_original_get_host_addresses = aioice.ice.get_host_addresses
_original_request_received = aioice.ice.Connection.request_received
_allowed: tuple[str, ...] | None = None


def _guarded_request_received(self, message, addr, protocol, *args, **kwargs):
    if _allowed is not None and is_loopback_only(_allowed) and not _is_loopback(addr[0]):
        log.debug("ignored an ICE check from %s (loopback-only server)", addr[0])
        return None
    return _original_request_received(self, message, addr, protocol, *args, **kwargs)


def restrict_host_addresses(addresses: Iterable[str]) -> None:
    """Make aiortc in this process gather host candidates on ``addresses`` only."""
    global _allowed
    _allowed = tuple(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        out = []
        for address in _allowed or ():
            version = ipaddress.ip_address(address).version
            if (version == 4 and use_ipv4) or (version == 6 and use_ipv6):
                out.append(address)
        return out

    aioice.ice.get_host_addresses = get_host_addresses
    # A deliberate patch of aioice's method, for this process (see the module docstring).
    aioice.ice.Connection.request_received = _guarded_request_received  # type: ignore[method-assign]
    # Consent checks that a busy machine's late answers do not fail (recfw.server.consent).
    consent.install()
    log.info("ICE host candidates restricted to %s", ", ".join(_allowed))


def unrestrict_host_addresses() -> None:
    """Undo :func:`restrict_host_addresses`."""
    global _allowed
    _allowed = None
    aioice.ice.get_host_addresses = _original_get_host_addresses
    aioice.ice.Connection.request_received = _original_request_received  # type: ignore[method-assign]
    consent.uninstall()


def is_loopback_only(addresses: Iterable[str]) -> bool:
    addresses = list(addresses)
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def candidate_address(line: str) -> str | None:
    """The connection address of an ``a=candidate:`` SDP line (or ``None``)."""
    parts = line.split()
    if len(parts) < 6 or not parts[0].startswith(("a=candidate:", "candidate:")):
        return None
    return parts[4]


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # mDNS names (xxx.local) and anything else
        return False


def filter_sdp(sdp: str, loopback_only: bool) -> str:
    """Drop candidates a loopback-only server cannot reach (and mDNS names, never resolved)."""
    kept = []
    dropped = 0
    for line in sdp.splitlines():
        address = candidate_address(line)
        if address is not None and (
            address.endswith(".local") or (loopback_only and not _is_loopback(address))
        ):
            dropped += 1
            continue
        kept.append(line)
    if dropped:
        log.debug("dropped %d unreachable ICE candidates from a peer's SDP", dropped)
    return "\r\n".join(kept) + "\r\n"
