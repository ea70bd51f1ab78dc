"""Webhook envelopes and their signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from recfw.events import (
    API_VERSION,
    CLIENT_JOINED,
    CLIENT_LEFT,
    Event,
    client_event,
    sign,
    verify,
)
from recfw.rooms import Participant, Role, RoomState
from recfw.secrets import Secret

SECRET = "whsec_7f3a9b2c"
T = 1_795_000_000


def test_sign_matches_the_documented_scheme():
    body = b'{"type":"recording.finished"}'
    header = sign(body, SECRET, T)
    mac = hmac.new(SECRET.encode(), f"{T}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={mac}"


@given(body=st.binary(max_size=500), secret=st.text(min_size=1, max_size=40))
def test_sign_verify_round_trip(body, secret):
    assert verify(body, sign(body, secret, T), secret, now=T + 10)


def test_tampered_body_fails():
    body = json.dumps({"type": "recording.finished", "data": {"size": 100}}).encode()
    header = sign(body, SECRET, T)
    assert verify(body, header, SECRET, now=T)
    assert not verify(body.replace(b"100", b"101"), header, SECRET, now=T)
    assert not verify(body, header, "another-secret", now=T)


def test_timestamp_outside_tolerance_fails():
    body = b"{}"
    header = sign(body, SECRET, T)
    assert verify(body, header, SECRET, now=T + 299)
    assert not verify(body, header, SECRET, now=T + 301)
    assert not verify(body, header, SECRET, now=T - 301)  # from the future
    assert verify(body, header, SECRET, now=T + 3000, tolerance=3600)


def test_tampered_timestamp_fails():
    body = b"{}"
    mac = sign(body, SECRET, T).split("v1=")[1]
    assert not verify(body, f"t={T + 1},v1={mac}", SECRET, now=T)


@pytest.mark.parametrize(
    "header",
    ["", "garbage", "t=abc,v1=00", "v1=00", f"t={T}", f"t={T},v1=é", f"t={T},v1"],
)
def test_malformed_headers_are_invalid_not_errors(header):
    assert verify(b"{}", header, SECRET, now=T) is False


def test_whitespace_and_rotated_signatures():
    body = b"{}"
    good = sign(body, SECRET, T).split("v1=")[1]
    assert verify(body, f"t={T}, v1=deadbeef, v1={good}", SECRET, now=T)


def test_sign_accepts_a_secret_object():
    body = b"{}"
    assert sign(body, Secret(SECRET), T) == sign(body, SECRET, T)
    assert verify(body, sign(body, SECRET, T), Secret(SECRET), now=T)


def test_envelope_shape():
    created = datetime(2026, 11, 23, 19, 40, 5, 123000, tzinfo=UTC)
    event = Event("recording.finished", {"size": 1}, id="e1", created_at=created)
    assert event.to_dict() == {
        "id": "e1",
        "apiVersion": API_VERSION,
        "createdAt": "2026-11-23T19:40:05.123Z",
        "type": "recording.finished",
        "data": {"size": 1},
    }
    assert API_VERSION == "1.0"
    assert json.loads(event.body()) == event.to_dict()


@pytest.mark.parametrize("type_", [CLIENT_JOINED, CLIENT_LEFT])
def test_client_event_carries_every_design_field(type_):
    rec = Participant("rec-1", "Recorder", Role.RECORDER)
    host = Participant("h1", "Ada", Role.HOST, external_id="ext-9", metadata='{"team":"a"}')
    state = RoomState("standup", participants=(host, Participant("v1", "Bo"), rec))
    event = client_event(type_, state, rec, meeting_id="m-1", room_session_id="s-1")
    assert event.type == type_
    assert set(event.data) == {
        "meetingId",
        "roomName",
        "roomSessionId",
        "participantId",
        "displayName",
        "roleName",
        "numClients",
        "numClientsByRoleName",
        "metadata",
        "externalId",
    }
    assert event.data["roleName"] == "recorder"
    assert event.data["roomName"] == "/standup"
    assert event.data["numClients"] == 3
    assert event.data["numClientsByRoleName"] == {"host": 1, "visitor": 1, "recorder": 1}
    host_event = client_event(type_, state, host, meeting_id="m-1", room_session_id="s-1")
    assert host_event.data["externalId"] == "ext-9"
    assert host_event.data["metadata"] == '{"team":"a"}'
    assert host_event.data["displayName"] == "Ada"
    assert host_event.data["roleName"] == "host"
    # The body is plain JSON (roles serialise as their names).
    assert json.loads(host_event.body())["data"]["roleName"] == "host"
