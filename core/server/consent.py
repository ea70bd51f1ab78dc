"""ICE consent freshness that a busy machine does not break (RFC 7675).

aioice sends a consent check every 4-6 s as **one** STUN request with a 0.5 s
deadline (``retransmissions=0``) and closes the connection after 6 checks in a
row without an answer in that time. On a loaded machine the answers come, only
later: the answer sits in the socket behind the media packets the event loop
has still to handle, or the browser's network thread was not scheduled for a
while. Six late answers in a row and aioice logs ``Consent to send expired``
and closes a connection whose two ends are alive: what dropped the Chromium
peers of a 5-person 720p room on the loaded 2-core build box 8-60 s after they
joined. RFC 7675 only asks that consent expires when no answer came for 30 s.

:func:`install` replaces ``aioice.Connection.query_consent`` (for this
process) with :func:`patient_query_consent`: each check is retransmitted as
STUN does (after 0.5, 1 and 2 s: an answer that comes up to 3.5 s late
counts) and consent expires when no check has been answered for
:data:`CONSENT_TIMEOUT` seconds; that is logged as a WARNING with how long.
aioice's internals that it uses are checked at install time: if they changed,
:func:`install` raises instead of silently keeping the strict behaviour.
"""

from __future__ import annotations

import asyncio
import logging
import random

import aioice.ice
from aioice import stun

from ..errors import RecfwError

log = logging.getLogger(__name__)

#: Seconds without an answer to any consent check after which consent expires (RFC 7675).
CONSENT_TIMEOUT = 30.0
#: Retransmissions of each check (deadlines 0.5, 1.5, 3.5 s: less than the interval).
CONSENT_RETRANSMISSIONS = 2

_original = aioice.ice.Connection.query_consent


class ConsentPatchError(RecfwError):
    """aioice's consent code is not what :mod:`recfw.server.consent` was written against."""


def _check_internals() -> None:
    init_names = aioice.ice.Connection.__init__.__code__.co_names
    missing = [n for n in ("_nominated", "_query_consent_task") if n not in init_names]
    missing += [n for n in ("build_request", "close") if not hasattr(aioice.ice.Connection, n)]
    if not hasattr(aioice.ice, "CONSENT_INTERVAL"):
        missing.append("CONSENT_INTERVAL")
    if missing:
        raise ConsentPatchError(
            f"aioice {getattr(aioice, '__version__', '?')} changed: its consent checks "
            f"cannot be made patient (missing {', '.join(missing)}); see recfw.server.consent"
        )


async def patient_query_consent(self: aioice.ice.Connection) -> None:
    """``Connection.query_consent`` with retransmitted checks and a 30 s expiry."""
    assert self.remote_password is not None
    loop = asyncio.get_running_loop()
    answered = loop.time()
    while True:
        interval = aioice.ice.CONSENT_INTERVAL
        await asyncio.sleep(interval * (0.8 + 0.4 * random.random()))
        for pair in list(self._nominated.values()):
            request = self.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request,
                    pair.remote_addr,
                    integrity_key=self.remote_password.encode("utf8"),
                    retransmissions=CONSENT_RETRANSMISSIONS,
                )
                answered = loop.time()
            except stun.TransactionError:
                pass
        silent = loop.time() - answered
        if silent >= CONSENT_TIMEOUT:
            log.warning(
                "ICE consent expired: no answer to consent checks for %.1f s; "
                "the connection is closed",
                silent,
            )
            self._query_consent_task = None
            await self.close()
            return


def install() -> None:
    """Make aioice's consent checks in this process patient (see the module docstring)."""
    _check_internals()
    aioice.ice.Connection.query_consent = patient_query_consent  # type: ignore[method-assign]


def uninstall() -> None:
    """Back to aioice's own consent checks."""
    aioice.ice.Connection.query_consent = _original  # type: ignore[method-assign]
