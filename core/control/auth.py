"""One authentication middleware for every ``/v1`` route, with a request budget per key.

A request to ``/v1/...`` must carry ``Authorization: Bearer <key>``, where the
key is either

* a key made with ``recfw keys create`` (looked up by its prefix in the
  database, its SHA-256 compared in constant time; revoked keys are refused), or
* the bootstrap key, ``RECFW_API_KEY`` / ``[server] apiKey`` (compared in
  constant time), so a fresh installation can be used before any key exists.

Answers: ``503`` when no key can possibly match (no bootstrap key and no
database), ``401`` with ``WWW-Authenticate: Bearer`` for a missing or wrong
key, ``429`` with ``Retry-After`` (seconds) when a key has used up its budget
(``[server] apiRateLimit`` requests per minute, a token bucket per key: bursts
up to the whole minute's budget, refilled evenly). Handlers find who called in
``request[PRINCIPAL]``. Handlers never check keys themselves.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from ..secrets import Secret
    from .db import Database

log = logging.getLogger(__name__)

API_PREFIX = "/v1"
#: Paths under /v1 anyone may read (the API's description).
PUBLIC_PATHS = frozenset({"/v1/openapi.json"})
#: Requests per minute per key when ``[server] apiRateLimit`` is not set.
DEFAULT_RATE_LIMIT = 600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Principal:
    """Who made a request: an API key's id and name, or the bootstrap key."""

    key_id: str
    name: str
    admin: bool


#: Where a handler finds the caller: ``request[PRINCIPAL]``.
PRINCIPAL: Any = (
    web.RequestKey("recfw.principal", Principal)
    if hasattr(web, "RequestKey")  # aiohttp >= 3.12
    else "recfw.principal"
)

BOOTSTRAP = Principal("bootstrap", "RECFW_API_KEY / [server] apiKey", admin=True)


class TokenBucket:
    """``rate`` requests per minute, bursts up to ``rate``; ``clock`` in seconds."""

    def __init__(self, rate: int, clock: Callable[[], float]):
        self.capacity = float(rate)
        self.per_second = rate / 60.0
        self.clock = clock
        self.tokens = self.capacity
        self.stamp = clock()

    def take(self) -> float:
        """Take one token: ``0.0`` if there was one, else the seconds until there is."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.per_second


def bearer_token(header: str | None) -> str | None:
    """The key in ``Authorization: Bearer <key>`` (``None`` if there is none)."""
    if not header:
        return None
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    return given.strip()


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class ApiAuth:
    """The ``/v1`` middleware: who is calling (:class:`Principal`), and are they within budget.

    ``db`` ``None``: only the bootstrap key is known. ``rate_limit`` requests
    per minute per key (``0`` or ``None``: no limit). ``clock`` is for tests.
    """

    def __init__(
        self,
        db: Database | None,
        bootstrap_key: Secret | None = None,
        *,
        rate_limit: int | None = DEFAULT_RATE_LIMIT,
        public_paths: Iterable[str] = PUBLIC_PATHS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.db = db
        self.bootstrap_key = bootstrap_key
        self.rate_limit = rate_limit or 0
        self.public_paths = frozenset(public_paths)
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    @staticmethod
    def guards(path: str) -> bool:
        """Whether ``path`` is an API path (``/v1`` and below)."""
        return path == API_PREFIX or path.startswith(API_PREFIX + "/")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.guards(request.path) or request.path in self.public_paths:
            return await handler(request)
        if self.db is None and self.bootstrap_key is None:
            return _json_error(
                503,
                "the API is disabled: make a key with `recfw keys create`, or set "
                "RECFW_API_KEY (or [server] apiKey in the config file), and restart the server",
            )
        principal = await self.authenticate(request.headers.get("Authorization"))
        if principal is None:
            log.warning("API: a request with a missing or wrong API key was refused")
            return _json_error(
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": 'Bearer realm="recfw"'},
            )
        wait = self._spend(principal)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            log.info("API: key %s is over its request budget", principal.key_id)
            return _json_error(
                429,
                f"too many requests for this API key ({self.rate_limit} a minute): "
                f"retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
        request[PRINCIPAL] = principal
        return await handler(request)

    async def authenticate(self, header: str | None) -> Principal | None:
        """The principal whose key ``header`` carries, or ``None``."""
        token = bearer_token(header)
        if token is None:
            return None
        given = token.encode("utf-8", "surrogatepass")
        if self.bootstrap_key is not None and hmac.compare_digest(
            self.bootstrap_key.reveal().encode("utf-8", "surrogatepass"), given
        ):
            return BOOTSTRAP
        if self.db is None:
            return None
        return await asyncio.to_thread(self._lookup, token)

    def _lookup(self, token: str) -> Principal | None:
        from .keys import ApiKeyStore

        store = ApiKeyStore()
        with self.db.session(readonly=True) as s:  # type: ignore[union-attr]
            row = store.verify(s, token, touch=False)
            if row is None:
                return None
            principal = Principal(row.id, row.name, row.admin)
            stale = store.needs_touch(row)
        if stale:
            try:
                with self.db.session() as s:  # type: ignore[union-attr]
                    store.touch(s, principal.key_id)
            except Exception:  # bookkeeping only: never fail a request for it
                log.warning("API: could not record the last use of key %s", principal.key_id)
        return principal

    def _spend(self, principal: Principal) -> float:
        if not self.rate_limit:
            return 0.0
        bucket = self._buckets.get(principal.key_id)
        if bucket is None:
            bucket = self._buckets[principal.key_id] = TokenBucket(self.rate_limit, self.clock)
        return bucket.take()


__all__ = ["ApiAuth", "BOOTSTRAP", "DEFAULT_RATE_LIMIT", "PRINCIPAL", "Principal", "TokenBucket"]
