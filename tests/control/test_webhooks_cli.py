"""``recfw webhooks``: endpoints from the config file and the CLI, deliveries, replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from recfw.cli import main
from recfw.config import parse_config
from recfw.control import Database, Outbox
from recfw.control.crypto import new_key
from recfw.control.models import WebhookDelivery, WebhookEndpoint
from recfw.events import Event
from sqlalchemy import select

CONFIG = """
[[webhooks]]
url = "https://hooks.example.com/recfw"
secret = "config-secret"
events = ["recording.finished"]
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recfw.toml").write_text(CONFIG)
    values = {"RECFW_DATA_DIR": str(tmp_path / "data"), "RECFW_SECRET_KEY": new_key()}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def open_db(env) -> Database:
    return Database.open(parse_config({}, environ={}), env)


def test_config_endpoints_are_synced_and_cli_ones_added(env):
    listed = run("webhooks", "list", "--config", "recfw.toml")
    assert listed.exit_code == 0, listed.output
    assert "https://hooks.example.com/recfw" in listed.output
    assert "recording.finished" in listed.output and "config" in listed.output
    assert "config-secret" not in listed.output
    added = run("webhooks", "add", "https://other.example.com/x", "--event", "room.client.left")
    assert added.exit_code == 0, added.output
    assert "secret (shown once): whsec_" in added.output
    db = open_db(env)
    with db.session(readonly=True) as s:
        urls = sorted(e.url for e in s.scalars(select(WebhookEndpoint)))
    db.dispose()
    assert urls == ["https://hooks.example.com/recfw", "https://other.example.com/x"]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://metadata.google.internal/",
    ],
)
def test_a_url_the_guard_refuses_is_not_added(env, url):
    result = CliRunner().invoke(main, ["webhooks", "add", url])
    assert result.exit_code == 2
    assert "URL" in result.output
    db = open_db(env)
    with db.session(readonly=True) as s:
        assert s.scalar(select(WebhookEndpoint).where(WebhookEndpoint.url == url)) is None
    db.dispose()


def test_deliveries_are_listed_and_failed_ones_replayed(env):
    run("webhooks", "list", "--config", "recfw.toml")  # sync the config's endpoint
    db = open_db(env)
    with db.session() as s:
        Outbox.add(s, Event("recording.finished", {"filename": "a.mkv"}).to_dict())
    with db.session() as s:
        row = s.scalar(select(WebhookDelivery))
        delivery_id = row.id
    Outbox(db).failed(delivery_id, status_code=410, error="HTTP 410: refused by the receiver")
    listed = run("webhooks", "deliveries", "--config", "recfw.toml", "--status", "failed")
    assert listed.exit_code == 0
    assert (
        f"{delivery_id}  failed HTTP 410" in listed.output and "recording.finished" in listed.output
    )
    replay = run("webhooks", "retry", "--config", "recfw.toml", "--failed")
    assert replay.exit_code == 0 and "1 deliveries queued again" in replay.output
    with db.session(readonly=True) as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert row.status == "pending"
        assert row.next_attempt_at <= datetime.now(UTC) + timedelta(seconds=1)
    missing = CliRunner().invoke(main, ["webhooks", "retry", "99999"])
    assert missing.exit_code == 2 and "no delivery 99999" in missing.output
    db.dispose()
