"""Events in the webhook envelope shape, and their signature.

Envelope: ``{id, apiVersion: "1.0", createdAt, type, data}``. ``data`` for
``room.client.joined`` / ``room.client.left`` carries ``meetingId, roomName,
roomSessionId, participantId, displayName, roleName, numClients,
numClientsByRoleName, metadata, externalId``.

``recording.finished`` carries Whereby's ``filename``, ``recordingId``,
``roomName`` and ``status: "completed"`` besides recfw's own fields.

Every delivery is signed twice (see docs/webhooks.md):

* ``Whereby-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``
  keyed with the endpoint's secret as written (:func:`sign`, :func:`verify`), so a
  Whereby customer's verifier works unchanged;
* Standard Webhooks headers ``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<ts>.<body>">``
  (:func:`standard_headers`), keyed with the bytes a ``whsec_<base64>`` secret
  encodes (any other secret: its UTF-8 bytes, i.e. verify with
  ``"whsec_" + base64(secret)``, see :func:`standard_secret`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .rooms import Participant, RoomState
from .secrets import Secret
from .times import iso_utc

API_VERSION = "1.0"
#: The Whereby-compatible signature header.
SIGNATURE_HEADER = "Whereby-Signature"
#: Standard Webhooks headers (https://www.standardwebhooks.com).
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
#: The prefix of Standard Webhooks secrets (``whsec_<base64 of the key bytes>``).
SECRET_PREFIX = "whsec_"

CLIENT_JOINED = "room.client.joined"
CLIENT_LEFT = "room.client.left"
RECORDING_STARTED = "recording.started"
RECORDING_FINISHED = "recording.finished"
RECORDING_FAILED = "recording.failed"
EVENT_TYPES = (CLIENT_JOINED, CLIENT_LEFT, RECORDING_STARTED, RECORDING_FINISHED, RECORDING_FAILED)


@dataclass(frozen=True)
class Event:
    """One webhook envelope.

    ``subject`` is what the event is about inside this process (the
    :class:`~recfw.session.RecordingSession` of a ``recording.*`` event): the
    control plane reads it to update the recording's row; it is never sent.
    """

    type: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    subject: Any = field(default=None, compare=False, repr=False)

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


# --- Standard Webhooks ---------------------------------------------------------


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _standard_key(secret: str | Secret) -> bytes:
    text = secret.reveal() if isinstance(secret, Secret) else secret
    if text.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(text[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            pass
    return text.encode()


def standard_secret(secret: str | Secret) -> str:
    """The ``whsec_…`` form of ``secret`` a Standard Webhooks verifier takes (itself, if it
    already is one)."""
    return SECRET_PREFIX + base64.b64encode(_standard_key(secret)).decode()


def standard_signature(msg_id: str, timestamp: int, body: bytes, secret: str | Secret) -> str:
    """``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``."""
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    mac = hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def standard_headers(
    msg_id: str, body: bytes, secret: str | Secret, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery of ``body``."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return {
        WEBHOOK_ID_HEADER: msg_id,
        WEBHOOK_TIMESTAMP_HEADER: str(t),
        WEBHOOK_SIGNATURE_HEADER: standard_signature(msg_id, t, body, secret),
    }


def signed_headers(
    msg_id: str, body: bytes, secret: str | Secret, timestamp: int | None = None
) -> dict[str, str]:
    """Every signature header of one delivery: Standard Webhooks and ``Whereby-Signature``
    (both with the same timestamp)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    headers = standard_headers(msg_id, body, secret, t)
    headers[SIGNATURE_HEADER] = sign(body, secret, t)
    return headers
