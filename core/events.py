"""Events in the webhook envelope shape, and their signature.

Envelope: ``{id, apiVersion: "1.0", createdAt, type, data}``. ``data`` for
``room.client.joined`` / ``room.client.left`` carries ``meetingId, roomName,
roomSessionId, participantId, displayName, roleName, numClients,
numClientsByRoleName, metadata, externalId``.

Signature header (``Recfw-Signature``): ``t=<unix seconds>,v1=<hex HMAC-SHA256
of "<t>.<raw body>">`` keyed with the endpoint's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .rooms import Participant, RoomState
from .secrets import Secret
from .times import iso_utc

API_VERSION = "1.0"
SIGNATURE_HEADER = "Recfw-Signature"

CLIENT_JOINED = "room.client.joined"
CLIENT_LEFT = "room.client.left"
RECORDING_STARTED = "recording.started"
RECORDING_FINISHED = "recording.finished"
RECORDING_FAILED = "recording.failed"
EVENT_TYPES = (CLIENT_JOINED, CLIENT_LEFT, RECORDING_STARTED, RECORDING_FINISHED, RECORDING_FAILED)


@dataclass(frozen=True)
class Event:
    """One webhook envelope."""

    type: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "apiVersion": API_VERSION,
            "createdAt": iso_utc(self.created_at),
            "type": self.type,
            "data": self.data,
        }

    def body(self) -> bytes:
        """The raw JSON body, exactly as sent and signed."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()


def client_event(
    type_: str,
    state: RoomState,
    participant: Participant,
    *,
    meeting_id: str,
    room_session_id: str,
) -> Event:
    """A ``room.client.joined`` / ``room.client.left`` event; counts are after the change."""
    return Event(
        type_,
        {
            "meetingId": meeting_id,
            "roomName": "/" + state.name.lstrip("/"),
            "roomSessionId": room_session_id,
            "participantId": participant.id,
            "displayName": participant.display_name,
            "roleName": str(participant.role),
            "numClients": len(state.participants),
            "numClientsByRoleName": state.count_by_role(),
            "metadata": participant.metadata,
            "externalId": participant.external_id,
        },
    )


def _key(secret: str | Secret) -> bytes:
    return (secret.reveal() if isinstance(secret, Secret) else secret).encode()


def sign(body: bytes, secret: str | Secret, timestamp: int | None = None) -> str:
    """The signature header value for ``body``."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(_key(secret), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(
    body: bytes,
    header: str,
    secret: str | Secret,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """True when ``header`` is a valid signature of ``body`` no older than ``tolerance``.

    Never raises on a malformed header; it is simply not valid. Several ``v1=``
    values (a secret being rotated) are accepted if any one matches.
    """
    t: int | None = None
    given: list[bytes] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            try:
                t = int(value)
            except ValueError:
                return False
        elif key == "v1":
            given.append(value.strip().encode("utf-8", errors="replace"))
    if t is None or not given:
        return False
    now = time.time() if now is None else now
    if abs(now - t) > tolerance:
        return False
    expected = sign(body, secret, t).split("v1=", 1)[1].encode()
    return any(hmac.compare_digest(expected, g) for g in given)
