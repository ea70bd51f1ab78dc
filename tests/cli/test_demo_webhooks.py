"""``recfw demo`` records into the embedded SQLite: the recording's row, and webhooks a
receiver that is down could not take wait in the database after the demo exits."""

from __future__ import annotations

import socket

from recfw.config import parse_config
from recfw.control import Database, Recording
from recfw.control.crypto import new_key
from recfw.control.models import OutboxEvent, WebhookDelivery
from sqlalchemy import select

from .test_demo import run_demo


def test_demo_leaves_undelivered_webhooks_waiting_in_the_database(tmp_path):
    with socket.socket() as s:  # a loopback port nothing listens on: the receiver is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "recfw.toml").write_text(
        f"""
[server]
allowedDestinations = ["127.0.0.1:{port}"]

[[webhooks]]
url = "http://127.0.0.1:{port}/hooks"
secret = "demo-secret"
"""
    )
    env = {"RECFW_SECRET_KEY": new_key(), "RECFW_WEBHOOK_EXIT_WAIT": "1"}
    result = run_demo(tmp_path, "--config", "recfw.toml", "--people", "1", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "webhook deliveries wait in the database" in result.stdout
    config = parse_config({"server": {"dataDir": str(tmp_path / ".recfw")}}, environ={})
    db = Database.open(config, env, upgrade=False)
    with db.session(readonly=True) as s:
        [row] = s.scalars(select(Recording)).all()
        assert row.status == "stored" and row.location and row.size_bytes > 0
        types = [e.type for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))]
        deliveries = s.scalars(select(WebhookDelivery)).all()
    db.dispose()
    assert types[-1] == "recording.finished" and "recording.started" in types
    assert len(deliveries) == len(types)
    assert {d.status for d in deliveries} == {"pending"}
    assert any(d.last_error for d in deliveries)  # it was tried, and will be again
