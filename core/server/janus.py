"""A small async client of the Janus WebRTC server's API over its WebSocket transport.

Only what recfw needs: a session (with keep-alives), plugin handles, requests
and their answers, and the events Janus sends on its own. It knows nothing
about VideoRoom (see :mod:`recfw.server.videoroom`).

Janus's WebSocket API (``janus-protocol`` subprotocol): every request carries
a ``transaction``; Janus answers ``success`` / ``error`` at once, or ``ack`` and
later an ``event`` with the same transaction (a plugin's asynchronous answer).
Anything without a pending transaction (``webrtcup``, ``hangup``, ``media``,
plugin events) goes to the handle's :attr:`JanusHandle.on_event` callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp

from ..errors import RecfwError
from ..secrets import Secret

log = logging.getLogger(__name__)

#: Seconds Janus gets to answer a request (an asynchronous one: its event).
REQUEST_TIMEOUT = 15.0
#: Seconds between keep-alives (Janus drops a session idle for 60 s).
KEEPALIVE_EVERY = 20.0
#: Requests Janus answers with an ``ack`` only.
ACK_IS_ANSWER = ("trickle", "keepalive")


class JanusError(RecfwError):
    """Janus refused a request (``code`` is Janus's or the plugin's error code)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class JanusHandle:
    """One plugin handle (one WebRTC peer in Janus) of a :class:`JanusSession`."""

    def __init__(self, session: JanusSession, handle_id: int, plugin: str):
        self.session = session
        self.id = handle_id
        self.plugin = plugin
        #: ``callback(message)`` for each event Janus sends on its own for this handle.
        self.on_event: list[Callable[[dict[str, Any]], None]] = []
        self.detached = False

    async def message(
        self, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Send ``body`` (and ``jsep``) to the plugin; return its answer's data and jsep.

        Raises :class:`JanusError` when Janus or the plugin says ``error``.
        """
        request: dict[str, Any] = {"janus": "message", "handle_id": self.id, "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        reply = await self.session.request(request)
        data = (reply.get("plugindata") or {}).get("data") or {}
        if "error" in data or "error_code" in data:
            raise JanusError(
                f"Janus {self.plugin}: {body.get('request')}: {data.get('error')}",
                data.get("error_code"),
            )
        return data, reply.get("jsep")

    async def trickle_completed(self) -> None:
        """Tell Janus this peer has no more ICE candidates (they were all in its SDP)."""
        await self.session.request(
            {"janus": "trickle", "handle_id": self.id, "candidate": {"completed": True}}
        )

    async def hangup(self) -> None:
        with contextlib.suppress(RecfwError):
            await self.session.request({"janus": "hangup", "handle_id": self.id})

    async def detach(self) -> None:
        """Drop the handle (its peer connection in Janus goes with it); idempotent."""
        if self.detached:
            return
        self.detached = True
        self.session.handles.pop(self.id, None)
        with contextlib.suppress(RecfwError):
            await self.session.request({"janus": "detach", "handle_id": self.id})

    def _event(self, message: dict[str, Any]) -> None:
        for callback in list(self.on_event):
            try:
                callback(message)
            except Exception:
                log.exception("Janus handle %s: an event callback failed", self.id)


class JanusSession:
    """One Janus session over one WebSocket. ``await JanusSession.connect(url, secret)``."""

    def __init__(self, url: str, api_secret: Secret | None = None):
        self.url = url
        self._secret = api_secret
        self.id: int | None = None
        self.handles: dict[int, JanusHandle] = {}
        self.closed = asyncio.Event()
        #: Why the connection ended (``None`` while it is up or after :meth:`close`).
        self.error: str | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ack_final: set[str] = set()
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def connect(cls, url: str, api_secret: Secret | None = None) -> JanusSession:
        """Connect to Janus at ``url`` (``ws://host:port``) and create a session."""
        session = cls(url, api_secret)
        try:
            await session._connect()
        except BaseException:
            await session.close()
            raise
        return session

    async def _connect(self) -> None:
        self._http = aiohttp.ClientSession()
        try:
            self._ws = await asyncio.wait_for(
                self._http.ws_connect(self.url, protocols=("janus-protocol",), heartbeat=None),
                REQUEST_TIMEOUT,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise RecfwError(f"cannot reach Janus at {self.url}: {exc!r}") from None
        self._tasks.append(asyncio.ensure_future(self._read()))
        reply = await self.request({"janus": "create"})
        self.id = int(reply["data"]["id"])
        self._tasks.append(asyncio.ensure_future(self._keepalive()))
        log.info("Janus session %s on %s", self.id, self.url)

    async def attach(self, plugin: str = "janus.plugin.videoroom") -> JanusHandle:
        reply = await self.request({"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, int(reply["data"]["id"]), plugin)
        self.handles[handle.id] = handle
        return handle

    async def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a request; return Janus's ``success`` or (after an ``ack``) its ``event``."""
        if self._ws is None or self._ws.closed or self.closed.is_set():
            raise RecfwError(f"the connection to Janus at {self.url} is closed: {self.error}")
        transaction = secrets.token_hex(8)
        message = {**payload, "transaction": transaction}
        if self.id is not None and payload.get("janus") != "create":
            message["session_id"] = self.id
        if self._secret is not None:
            message["apisecret"] = self._secret.reveal()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        if payload.get("janus") in ACK_IS_ANSWER:
            self._ack_final.add(transaction)
        try:
            await self._ws.send_json(message)
            reply = await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError:
            raise RecfwError(
                f"Janus at {self.url} did not answer {payload.get('janus')!r} "
                f"within {REQUEST_TIMEOUT:g} s"
            ) from None
        except (ConnectionError, RuntimeError) as exc:
            raise RecfwError(f"the connection to Janus at {self.url} failed: {exc!r}") from None
        finally:
            self._pending.pop(transaction, None)
            self._ack_final.discard(transaction)
        if reply.get("janus") == "error":
            error = reply.get("error") or {}
            raise JanusError(
                f"Janus: {payload.get('janus')}: {error.get('reason')}", error.get("code")
            )
        return reply

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    message = msg.json()
                except ValueError:
                    log.warning("Janus sent something that is not JSON: %.80r", msg.data)
                    continue
                if isinstance(message, dict):
                    self._dispatch(message)
            self.error = self.error or "Janus closed the connection"
        except Exception as exc:  # noqa: BLE001 - the reason the session ended
            self.error = f"reading from Janus failed: {exc!r}"
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(
                        RecfwError(f"the connection to Janus at {self.url} closed: {self.error}")
                    )

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        transaction = message.get("transaction")
        future = self._pending.get(transaction) if isinstance(transaction, str) else None
        if future is not None and not future.done():
            if kind == "ack":
                # An asynchronous request: its answer comes as an event. A keepalive
                # or trickle is answered by the ack itself.
                if transaction in self._ack_final:
                    future.set_result(message)
                return
            if kind in ("success", "error", "event"):
                future.set_result(message)
                return
        sender = message.get("sender")
        handle = self.handles.get(sender) if isinstance(sender, int) else None
        if handle is not None:
            handle._event(message)
        elif kind not in ("ack", "keepalive"):
            log.debug("Janus: unhandled %s", kind)

    async def _keepalive(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(KEEPALIVE_EVERY)
            try:
                await self._fire({"janus": "keepalive"})
            except RecfwError as exc:
                log.warning("Janus keep-alive failed: %s", exc)
                return

    async def _fire(self, payload: dict[str, Any]) -> None:
        """Send a request whose ``ack`` is its whole answer (keepalive, trickle)."""
        if self._ws is None or self._ws.closed:
            raise RecfwError("the connection to Janus is closed")
        message = {**payload, "transaction": secrets.token_hex(8), "session_id": self.id}
        if self._secret is not None:
            message["apisecret"] = self._secret.reveal()
        try:
            await self._ws.send_json(message)
        except (ConnectionError, RuntimeError) as exc:
            raise RecfwError(f"the connection to Janus failed: {exc!r}") from None

    async def close(self) -> None:
        """Destroy the session (its handles go with it) and close the WebSocket."""
        for task in self._tasks:
            task.cancel()
        if self._ws is not None and not self._ws.closed and self.id is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._fire({"janus": "destroy"}), 2)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._http is not None:
            await self._http.close()
        self.closed.set()
