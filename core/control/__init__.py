"""The control plane: recfw's state in a database that survives restarts.

SQLite by default (a file in the data folder, no set-up), PostgreSQL for real
deployments; the schema is migrated with Alembic at start. See docs/database.md.

::

    from recfw.control import Database, MeetingStore, RecordingStore, Outbox

    db = Database.open(config)
    with db.session() as s:
        meeting = MeetingStore().create(s, room_name=..., end_date=...)
        Outbox.add(s, envelope)          # same transaction: both or neither
"""

from .crypto import EncryptedJSON, EncryptedString, SecretKeyError
from .db import Database, locate
from .endpoints import EndpointStore
from .keys import ApiKeyStore, NewKey
from .meetings import MeetingStore, RoomNameTaken
from .models import (
    ApiKey,
    Meeting,
    OrgSettings,
    OutboxEvent,
    Recording,
    WebhookDelivery,
    WebhookEndpoint,
)
from .org import OrgSettingsStore
from .outbox import ClaimedDelivery, Outbox
from .pagination import Page
from .recordings import RecordingStore

__all__ = [
    "ApiKey",
    "ApiKeyStore",
    "ClaimedDelivery",
    "Database",
    "EncryptedJSON",
    "EncryptedString",
    "EndpointStore",
    "Meeting",
    "MeetingStore",
    "NewKey",
    "OrgSettings",
    "OrgSettingsStore",
    "Outbox",
    "OutboxEvent",
    "Page",
    "Recording",
    "RecordingStore",
    "RoomNameTaken",
    "SecretKeyError",
    "WebhookDelivery",
    "WebhookEndpoint",
    "locate",
]
