"""The control plane's tables (SQLAlchemy 2, typed declarative).

Every table is created by the Alembic migrations in ``recfw/control/migrations``
(never by ``create_all``); a test checks that the migrations and these models
agree. Times are timezone-aware UTC (:class:`UTCDateTime`) on SQLite and
PostgreSQL alike. Secret values live only in ``Encrypted*`` columns.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ..secrets import Secret
from .crypto import EncryptedJSON, EncryptedString
from .split import join_secrets, split_secrets

#: Status of a recording (``recording`` from its first byte to ``stored`` or ``kept``).
RECORDING_STATUSES = ("recording", "uploading", "stored", "failed", "kept")
#: Status of one event's delivery to one endpoint.
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back timezone-aware (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, not {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: give a timezone-aware one (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: JSON on SQLite, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")
#: An auto-incrementing 64-bit key (SQLite's INTEGER PRIMARY KEY is 64-bit already).
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The declarative base of every control-plane table."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class OrgSettings(Base):
    """The organization's recording defaults: one row (``id = 1``).

    ``recording`` is the REST ``recording`` object without secrets; ``secrets``
    holds them encrypted by path (see :mod:`recfw.control.split`). The config
    file's ``[recording]`` seeds the row (``seeded_from`` names it) until the
    defaults are edited through the API/dashboard (``seeded_from`` ``None``);
    from then on the row wins.
    ``key_check`` is a known value encrypted with the secret key, so a wrong key
    is noticed at start, not at the first upload.
    """

    __tablename__ = "org_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    recording: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    secrets: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, nullable=True, default=dict)
    key_check: Mapped[Any] = mapped_column(EncryptedString, nullable=True)
    seeded_from: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def recording_revealed(self) -> dict[str, Any] | None:
        """The ``recording`` object with its secrets (for a sink; never for an answer)."""
        return join_secrets(self.recording, self.secrets)

    def set_recording(self, recording: Any) -> None:
        """Store a ``recording`` object (REST shape; secrets go to the encrypted column)."""
        self.recording, self.secrets = split_secrets(recording)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; ``prefix`` identifies it in lists."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class Meeting(Base):
    """A meeting made through the API, kept after DELETE (``deleted_at``) so its room
    name is never reused and a second DELETE still answers 204."""

    __tablename__ = "meetings"

    meeting_id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    room_name: Mapped[str] = mapped_column(String(200), unique=True)
    room_url: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[datetime] = mapped_column(default=utcnow)
    end_date: Mapped[datetime]
    room_name_prefix: Mapped[str | None] = mapped_column(String(200))
    room_name_pattern: Mapped[str | None] = mapped_column(String(40))
    room_mode: Mapped[str | None] = mapped_column(String(40))
    is_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    fields: Mapped[list[str] | None] = mapped_column(JSONType)
    template_type: Mapped[str | None] = mapped_column(String(80))
    #: The meeting's ``recording`` override (REST shape) without secrets; ``None``: none.
    recording: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    recording_secrets: Mapped[dict[str, Any]] = mapped_column(
        EncryptedJSON, nullable=True, default=dict
    )
    #: Request fields stored but not acted on yet (``streaming``, ``liveTranscription``),
    #: each as JSON text, encrypted whole (they may hold a stream key or credentials).
    options_secret: Mapped[dict[str, Any]] = mapped_column(
        EncryptedJSON, nullable=True, default=dict
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    deleted_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    __table_args__ = (Index(None, "end_date"),)

    def recording_revealed(self) -> dict[str, Any] | None:
        """The meeting's ``recording`` override with its secrets (``None``: no override)."""
        return join_secrets(self.recording, self.recording_secrets)

    def set_recording(self, recording: Any) -> None:
        """Store the ``recording`` override (REST shape; secrets go to the encrypted column)."""
        self.recording, self.recording_secrets = split_secrets(recording)


class Recording(Base):
    """One recording, from its first byte: where it is meant to go (its own copy of the
    destination, credentials encrypted), where it is now, and why."""

    __tablename__ = "recordings"

    recording_id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    meeting_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("meetings.meeting_id", ondelete="SET NULL"), index=True
    )
    room_name: Mapped[str] = mapped_column(String(200))
    room_session_id: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(Text)
    file_format: Mapped[str | None] = mapped_column(String(16))
    #: The REST ``destination`` this recording goes to, without secrets.
    destination: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    destination_secrets: Mapped[dict[str, Any]] = mapped_column(
        EncryptedJSON, nullable=True, default=dict
    )
    status: Mapped[str] = mapped_column(String(16), default="recording")
    start_date: Mapped[datetime] = mapped_column(default=utcnow)
    end_date: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    #: The machine whose spool holds the file (several may share a PostgreSQL).
    node: Mapped[str | None] = mapped_column(String(255))
    spool_path: Mapped[str | None] = mapped_column(Text)
    #: Where the file is stored (a URL such as ``s3://bucket/key``), once stored.
    location: Mapped[str | None] = mapped_column(Text)
    #: Why the file is kept or failed (an error message without secrets).
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]

    __table_args__ = (
        Index(None, "room_name", "start_date"),
        Index(None, "start_date"),
        Index(None, "status", "next_attempt_at"),
    )

    def destination_revealed(self) -> dict[str, Any] | None:
        """This recording's own ``destination`` with its credentials (for the sink only)."""
        return join_secrets(self.destination, self.destination_secrets)

    def set_destination(self, destination: Any) -> None:
        """Store the ``destination`` (REST shape; credentials go to the encrypted column)."""
        self.destination, self.destination_secrets = split_secrets(destination)


class WebhookEndpoint(Base):
    """A URL that receives signed events; ``events`` ``None`` means every type."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str] | None] = mapped_column(JSONType)
    secret: Mapped[Secret] = mapped_column(EncryptedString)
    #: Where it came from: ``"config"`` (a ``[[webhooks]]`` entry) or ``"api"``.
    source: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]

    def wants(self, event_type: str) -> bool:
        return self.disabled_at is None and (self.events is None or event_type in self.events)


class OutboxEvent(Base):
    """An event envelope, written in the same transaction as the state it describes.

    ``seq`` orders events; it is assigned in commit order (see
    :meth:`recfw.control.outbox.Outbox.add`), so per-endpoint delivery in ``seq``
    order is delivery in the order things happened.
    """

    __tablename__ = "outbox_events"

    seq: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = {"sqlite_autoincrement": True}


class WebhookDelivery(Base):
    """One event to one endpoint: ``pending`` until ``delivered`` or (permanently) ``failed``."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("outbox_events.id", ondelete="CASCADE")
    )
    endpoint_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    #: The event's ``seq``, copied: deliveries to one endpoint go in this order.
    seq: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index(None, "endpoint_id", "status", "seq"),
        Index(None, "status", "next_attempt_at"),
    )


class DashboardSession(Base):
    """A dashboard login: the cookie holds a random token, the row only its SHA-256 (``id``).

    The session is valid while the row exists, ``expires_at`` is in the future and
    its admin API key is neither revoked nor demoted; logging out deletes the row.
    ``csrf_token`` is the token every form of the session must carry.
    """

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


__all__ = [
    "ApiKey",
    "Base",
    "DashboardSession",
    "DELIVERY_STATUSES",
    "Meeting",
    "OrgSettings",
    "OutboxEvent",
    "RECORDING_STATUSES",
    "Recording",
    "UTCDateTime",
    "WebhookDelivery",
    "WebhookEndpoint",
    "new_id",
    "utcnow",
]
