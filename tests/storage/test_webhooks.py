"""Signed webhooks to a real HTTP receiver on 127.0.0.1: signature, filtering, retries."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from recfw.config import Config, WebhookEndpoint
from recfw.events import RECORDING_FINISHED, SIGNATURE_HEADER, Event, verify
from recfw.plugins import webhooks
from recfw.plugins.webhooks import WebhookDispatcher, safe_url
from recfw.secrets import Secret
from storage_helpers import closed_port

SECRET = "whsec-test-0123456789abcdef"


class Receiver:
    """An HTTP server that records POSTs and answers with scripted status codes."""

    def __init__(self, statuses=(), *, hold: threading.Event | None = None):
        self.statuses = list(statuses)
        self.hold = hold
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path="/hooks") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(*statuses, hold=None):
        r = Receiver(statuses, hold=hold)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def fast_global_dispatcher():
    """The plugin's process-wide dispatcher with short backoff for the test."""
    dispatcher = webhooks.get_dispatcher()
    saved = (dispatcher.backoff, dispatcher.max_attempts)
    dispatcher.backoff = 0.01
    yield dispatcher
    assert dispatcher.flush(30)
    dispatcher.backoff, dispatcher.max_attempts = saved


def _event(type_=RECORDING_FINISHED) -> Event:
    return Event(type_, {"roomName": "/standup", "location": "s3://b/k.mkv", "size": 12})


def _endpoint(url, events=None, secret=SECRET) -> WebhookEndpoint:
    return WebhookEndpoint(url, Secret(secret), tuple(events) if events is not None else None)


def test_signed_delivery_through_the_plugin(receiver, builtin_plugins, fast_global_dispatcher):
    r = receiver()
    other = receiver()
    config = Config(
        webhooks=(
            _endpoint(r.url()),
            _endpoint(other.url(), events=["room.client.joined"], secret="other-secret"),
        )
    )
    event = _event()

    builtin_plugins.emit(event, config)
    assert webhooks.flush(30)

    assert len(r.requests) == 1
    headers, body = r.requests[0]
    assert body == event.body()
    assert headers["Content-Type"] == "application/json"
    assert verify(body, headers[SIGNATURE_HEADER], SECRET)
    assert not verify(body, headers[SIGNATURE_HEADER], "wrong-secret")
    assert json.loads(body)["type"] == RECORDING_FINISHED
    assert other.requests == [], "an endpoint gets only the event types it asked for"


def test_hook_does_not_block_on_a_slow_endpoint(receiver, builtin_plugins, fast_global_dispatcher):
    hold = threading.Event()
    r = receiver(hold=hold)
    config = Config(webhooks=(_endpoint(r.url()),))

    builtin_plugins.emit(_event(), config)
    builtin_plugins.emit(_event("recording.failed"), config)

    assert fast_global_dispatcher.pending == 2  # the hook returned while the receiver holds
    hold.set()
    assert webhooks.flush(30)
    assert [json.loads(b)["type"] for _, b in r.requests] == [
        RECORDING_FINISHED,
        "recording.failed",
    ]


def test_retries_on_5xx_with_fresh_valid_signatures(receiver):
    r = receiver(503, 500, 200)
    dispatcher = WebhookDispatcher(max_attempts=5, backoff=0.01)
    event = _event()

    dispatcher.submit(_endpoint(r.url()), event)
    assert dispatcher.flush(30)

    assert len(r.requests) == 3
    for headers, body in r.requests:
        assert body == event.body()
        assert verify(body, headers[SIGNATURE_HEADER], SECRET)
    [result] = dispatcher.results
    assert result.ok and result.attempts == 3 and result.status == 200


def test_client_errors_are_not_retried(receiver, caplog):
    r = receiver(400)
    dispatcher = WebhookDispatcher(max_attempts=5, backoff=0.01)
    dispatcher.submit(_endpoint(r.url()), _event())
    assert dispatcher.flush(30)
    assert len(r.requests) == 1
    [result] = dispatcher.results
    assert not result.ok and result.status == 400 and result.attempts == 1
    assert "HTTP 400" in caplog.text


def test_gives_up_after_bounded_retries_and_logs_safely(receiver, caplog):
    caplog.set_level(logging.DEBUG, logger="recfw.plugins.webhooks")
    port = closed_port()
    url = f"http://user:p4ssw0rd@127.0.0.1:{port}/hooks?token=query-secret-123"
    dispatcher = WebhookDispatcher(max_attempts=3, backoff=0.01)

    dispatcher.submit(_endpoint(url), _event())
    assert dispatcher.flush(30)

    [result] = dispatcher.results
    assert not result.ok and result.attempts == 3 and result.status is None
    assert f"http://127.0.0.1:{port}/hooks" in caplog.text
    assert "failed after 3 attempt(s)" in caplog.text
    for secret in ("p4ssw0rd", "query-secret-123", SECRET):
        assert secret not in caplog.text


def test_keeps_order_per_endpoint_through_retries(receiver):
    r = receiver(502, 502)  # the first event needs three attempts
    dispatcher = WebhookDispatcher(max_attempts=5, backoff=0.01)
    events = [_event(), _event("room.client.left"), _event("recording.failed")]
    for e in events:
        dispatcher.submit(_endpoint(r.url()), e)
    assert dispatcher.flush(30)
    delivered = [json.loads(b)["id"] for _, b in r.requests[2:]]
    assert delivered == [e.id for e in events]


def test_flush_times_out_while_a_delivery_hangs(receiver):
    hold = threading.Event()
    r = receiver(hold=hold)
    dispatcher = WebhookDispatcher(max_attempts=1)
    dispatcher.submit(_endpoint(r.url()), _event())
    try:
        assert dispatcher.flush(0.05) is False
        assert dispatcher.pending == 1
    finally:
        hold.set()
    assert dispatcher.flush(30)


def test_safe_url():
    assert safe_url("https://u:p@example.com:8443/a/b?x=1#f") == "https://example.com:8443/a/b"
    assert safe_url("http://[::1]:9000/h") == "http://[::1]:9000/h"


def test_exit_flush_reports_dropped_deliveries(caplog):
    url = f"http://hookuser:HOOKPASSWORD@127.0.0.1:{closed_port()}/hooks?token=QSECRET"
    # Retries keep the deliveries pending much longer than the exit wait.
    dispatcher = WebhookDispatcher(max_attempts=5, backoff=5.0)
    events = [_event(), _event("room.client.joined")]
    for event in events:
        dispatcher.submit(_endpoint(url), event)
    caplog.set_level(logging.INFO, logger="recfw")
    try:
        dropped = webhooks.flush_at_exit(dispatcher, timeout=0.05)
    finally:
        dispatcher._closed.set()  # end the backoff waits: the worker finishes at once
    assert dropped == [(e.type, e.id) for e in events]
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    text = warning.getMessage()
    assert "2 webhook deliveries dropped at exit" in text
    for event in events:
        assert f"{event.type} {event.id}" in text
    assert "RECFW_WEBHOOK_EXIT_WAIT" in text
    for secret in (SECRET, "HOOKPASSWORD", "QSECRET"):
        assert secret not in caplog.text
    assert dispatcher.flush(30) and dispatcher.pending_deliveries() == []


def test_exit_flush_reports_nothing_when_all_were_delivered(receiver, caplog):
    r = receiver()
    dispatcher = WebhookDispatcher(max_attempts=1)
    dispatcher.submit(_endpoint(r.url()), _event())
    caplog.set_level(logging.WARNING, logger="recfw")
    assert webhooks.flush_at_exit(dispatcher, timeout=30) == []
    assert len(r.requests) == 1 and caplog.records == []


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, 30.0),
        ("", 30.0),
        ("2.5", 2.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("1e9", 600.0),
        ("soon", 30.0),
        ("nan", 30.0),
    ],
)
def test_exit_wait_is_configurable_and_bounded(value, seconds):
    environ = {} if value is None else {"RECFW_WEBHOOK_EXIT_WAIT": value}
    assert webhooks.exit_wait(environ) == seconds


def test_the_atexit_hook_waits_as_configured_and_reports(tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "exiting.py"
    script.write_text(
        "import logging, sys\n"
        "logging.basicConfig(level=logging.WARNING, stream=sys.stderr)\n"
        "from recfw.config import WebhookEndpoint\n"
        "from recfw.events import Event\n"
        "from recfw.plugins import webhooks\n"
        "from recfw.secrets import Secret\n"
        f"endpoint = WebhookEndpoint({f'http://127.0.0.1:{closed_port()}/h'!r},"
        f" Secret({SECRET!r}), None)\n"
        "event = Event('recording.finished', {})\n"
        "webhooks.get_dispatcher().submit(endpoint, event)\n"
        "print(event.id)\n"
    )
    env = dict(os.environ, RECFW_WEBHOOK_EXIT_WAIT="0.2")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    event_id = done.stdout.strip()
    assert "1 webhook deliveries dropped at exit, still pending after 0.2s" in done.stderr
    assert f"recording.finished {event_id}" in done.stderr
    assert SECRET not in done.stderr
