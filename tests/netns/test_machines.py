"""recfw across machines, shown on one box with network namespaces (issue 11).

The control plane, the customer's S3 bucket and webhook receiver, and the
people in the meeting are each on their own "machine" (a network namespace
with a private address, see :mod:`recfw.testing.netns`); they reach each other
only over the private switch, and WebRTC runs between those addresses (the
room server offers its own address only: ``[server] iceAddresses``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from netns_machines import WEBHOOK_SECRET, Deployment, wait_for
from recfw.control import Recording
from recfw.control.models import OutboxEvent
from recfw.events import SIGNATURE_HEADER, verify
from recfw.manager import load_plugins
from recfw.rooms import Participant
from recfw.server.client import HeadlessParticipant
from recfw.server.ice import restrict_host_addresses, unrestrict_host_addresses
from recfw.testing import netns
from recfw.testing.media import decode_file
from recfw.testing.netns import Network
from recfw.testing.processes import RECFW
from sqlalchemy import select

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason())
    ),
]


def recordings(deployment: Deployment) -> list[Recording]:
    with deployment.database().session(readonly=True) as s:
        return list(s.scalars(select(Recording).order_by(Recording.start_date)))


def check_every_event_delivered(deployment: Deployment) -> list[dict]:
    """Every event in the outbox reached the receiver, signed; returns them in outbox order."""
    assert deployment.receiver is not None
    with deployment.database().session(readonly=True) as s:
        ids = [e.id for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))]
    by_id: dict[str, dict] = {}
    for headers, body in deployment.receiver.posts:
        envelope = json.loads(body)
        assert headers["webhook-id"] == envelope["id"]
        assert verify(body, headers[SIGNATURE_HEADER], WEBHOOK_SECRET)
        assert by_id.setdefault(envelope["id"], envelope) == envelope  # a repeat is the same
    assert set(ids) <= set(by_id), "an event in the outbox never reached the receiver"
    return [by_id[i] for i in ids]


def delivered(deployment: Deployment, kind: str, recording_id: str) -> bool:
    assert deployment.receiver is not None
    return any(
        e["type"] == kind and e["data"].get("recordingId") == recording_id
        for e in deployment.receiver.events
    )


def fetch_and_decode(deployment: Deployment, key: str, folder: Path):
    assert deployment.s3 is not None
    target = folder / key
    deployment.s3.client().download_file(deployment.bucket, key, str(target))
    return decode_file(target)


async def test_built_in_room_recorded_across_machines(netns_network: Network, tmp_path: Path):
    """The embedded default with the room server on its own machine, listening on every
    address as docs/rooms.md advises: the participant joins from the customer's machine
    (WebRTC between the two private addresses; the server offers only its
    ``iceAddresses``), the recorder process on the control machine reaches the server at
    127.0.0.1 yet connects its media to the ``iceAddresses``, and the file lands in the
    customer's bucket; every event is delivered."""
    deployment = Deployment(netns_network, tmp_path)
    customer = deployment.customer
    with customer.entered():
        restrict_host_addresses([customer.address])  # this process's WebRTC: the customer's
        try:
            await deployment.start_customer()
            deployment.write_config(listen="0.0.0.0")
            base = await deployment.start_control()
            control = deployment.control
            assert base.startswith(f"http://{control.address}:")
            run = deployment.run
            assert run is not None
            await run.await_for(rf"ICE addresses offered: {re.escape(control.address)}$", 30)
            meeting = await deployment.create_meeting()
            room = meeting["roomName"].lstrip("/")
            source = load_plugins().get("sources", "synthetic")
            media = source.create(Participant(id="synthetic-guest", display_name="Syn"), {})
            async with HeadlessParticipant(f"{base}/{room}", media, name="Syn") as guest:
                assert guest.backend != "janus"

                def recording_with_bytes():
                    rows = recordings(deployment)
                    if not rows or not rows[0].spool_path:
                        return None
                    path = Path(rows[0].spool_path)
                    return rows[0] if path.exists() and path.stat().st_size > 30_000 else None

                row = await wait_for(recording_with_bytes, 120, "a recording")
                assert row.node == control.hostname
                started = run.find(r"recorder process (\d+) started")
                assert started, run.output
                assert int(started.group(1)) in control.pids(), "the recorder runs on control"

            def stored():
                rows = recordings(deployment)
                return rows if [r.status for r in rows] == ["stored"] else None

            (row,) = await wait_for(stored, 120, "the file stored")
            assert deployment.s3.keys(deployment.bucket) == [row.filename]
            decoded = fetch_and_decode(deployment, row.filename, tmp_path)
            assert decoded.video_count > 10 and decoded.audio_end > 1.0
            events = await wait_for(
                lambda: (
                    _quietly(check_every_event_delivered, deployment)
                    if delivered(deployment, "recording.finished", row.recording_id)
                    else None
                ),
                60,
                "every event",
            )
            types = [e["type"] for e in events]
            assert types.count("recording.started") == types.count("recording.finished") == 1
            assert "recording.failed" not in types
            run.send_signal(signal.SIGINT)
            assert await _exit_code(run) == 0, run.output
        finally:
            unrestrict_host_addresses()
            await deployment.close()


def _quietly(check, *args):
    try:
        return check(*args)
    except AssertionError:
        return None


async def _exit_code(process) -> int:
    import asyncio

    return await asyncio.to_thread(process.wait, 60)


QUEUE_CONFIG = """
[workers]
queue = "{queue}"
heartbeat = 0.5
deadAfter = 4
admissionTimeout = 60
"""


async def test_worker_machine_killed_mid_recording_records_on_another(
    netns_network: Network, tmp_path: Path
):
    """Issue 11's several machines: ``recfw run`` (control), PostgreSQL, Redis, Janus
    (the room's media) and two ``recfw worker --queue`` machines, each its own namespace;
    people join from the customer's. The machine of the worker that records is killed
    (every process on it SIGKILLed) mid-recording: the other worker records on into a new
    file, the lost part is reported failed, and its spool file is stored once that machine
    starts a worker again. Every file ends up in the bucket and decodes; every event is
    delivered."""
    pytest.importorskip("redis")
    from recfw.testing.janus import JANUS_MISSING, JanusServer, janus_available
    from recfw.testing.postgres import PostgresServer, PostgresUnavailable, find_bin_dir
    from recfw.testing.pytest_plugin import service_missing
    from recfw.testing.redis import RedisServer, RedisUnavailable, find_redis_server

    try:
        find_bin_dir()
        find_redis_server()
    except (PostgresUnavailable, RedisUnavailable) as exc:
        service_missing(str(exc))
    if not janus_available():
        service_missing(JANUS_MISSING)
    deployment = Deployment(netns_network, tmp_path)
    customer = deployment.customer
    db_host = netns_network.add_host("db")
    redis_host = netns_network.add_host("redis")
    janus_host = netns_network.add_host("janus")
    machines = {name: netns_network.add_host(name) for name in ("workera", "workerb")}
    postgres: PostgresServer | None = None
    redis: RedisServer | None = None
    janus: JanusServer | None = None
    workers: dict[str, list] = {name: [] for name in machines}

    def start_worker(name: str):
        host = machines[name]
        config = deployment.write_config(
            QUEUE_CONFIG.format(queue=redis.url),
            path=tmp_path / name / "recfw.toml",
            data_dir=tmp_path / name / "data",
            host=host,
        )
        process = host.popen(
            [RECFW, "worker", "--config", str(config), "--capacity", "1.6"],
            env=deployment.env(),
            cwd=config.parent,
        )
        workers[name].append(process)
        return process

    with customer.entered():
        restrict_host_addresses([customer.address])
        try:
            await deployment.start_customer()
            with db_host.entered():  # pg_ctl (and so the server) start on the db machine
                postgres = PostgresServer(
                    host=db_host.address, trusted_networks=(str(netns_network.subnet),)
                ).start()
            deployment.shared_env["RECFW_DATABASE_URL"] = postgres.create_database()
            with redis_host.entered():
                redis = RedisServer(host=redis_host.address).start()
            with janus_host.entered():
                janus = JanusServer(host=janus_host.address).start()
            rooms = f'\n[rooms]\nbackend = "janus"\njanusUrl = "{janus.url}"\n'
            deployment.write_config(QUEUE_CONFIG.format(queue=redis.url) + rooms)
            # Only the control plane talks to Janus's API: only it gets the secret.
            base = await deployment.start_control(
                deployment.env(RECFW_JANUS_API_SECRET=janus.api_secret)
            )
            for name in machines:
                await start_worker(name).await_for(r"taking jobs from", 90)
            listed = deployment.control.run(
                [RECFW, "workers", "--config", str(deployment.config_path)],
                env=deployment.env(),
                timeout=60,
            )
            assert listed.returncode == 0, listed.stdout + listed.stderr
            for name in machines:
                assert f"recfw-{name}" in listed.stdout, listed.stdout

            meeting = await deployment.create_meeting()
            room = meeting["roomName"].lstrip("/")
            source = load_plugins().get("sources", "synthetic")
            media = source.create(Participant(id="synthetic-guest", display_name="Syn"), {})
            async with HeadlessParticipant(f"{base}/{room}", media, name="Syn") as guest:

                def recording_with_bytes(index: int):
                    rows = recordings(deployment)
                    if len(rows) <= index or not rows[index].spool_path:
                        return None
                    path = Path(rows[index].spool_path)
                    ok = path.exists() and path.stat().st_size > 50_000
                    return rows[index] if ok else None

                assert guest.backend == "janus"
                first = await wait_for(lambda: recording_with_bytes(0), 120, "a recording")
                victim = next(n for n in machines if first.node == f"worker/recfw-{n}")
                survivor = next(n for n in machines if n != victim)
                assert first.spool_path.startswith(str(tmp_path / victim)), "its own disk"
                # The machine goes down: every process on it dies at once.
                doomed = machines[victim].pids()
                assert workers[victim][0].pid in doomed and len(doomed) >= 2  # + its recorder
                for pid in doomed:
                    os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
                second = await wait_for(
                    lambda: recording_with_bytes(1), 120, "the other worker recording on"
                )
                # A figure, not a bound: kill to the new part's row (deadAfter 4 s + a join).
                print(f"record-on row {time.monotonic() - killed:.1f} s after the kill")
                assert second.node == f"worker/recfw-{survivor}"
                assert second.filename != first.filename
                assert Path(first.spool_path).exists(), "the lost part's file stays on its disk"
                assert recordings(deployment)[0].status != "stored"
                # The machine comes back: its worker stores what its dead recorder left.
                await start_worker(victim).await_for(r"taking jobs from", 90)

                def first_stored():
                    return recordings(deployment)[0].status == "stored"

                await wait_for(first_stored, 120, "the lost part's file stored")
            # The person left: the record-on part is finished and stored too.

            def both_stored():
                rows = recordings(deployment)
                return rows if [r.status for r in rows] == ["stored", "stored"] else None

            rows = await wait_for(both_stored, 120, "both files stored")
            assert sorted(deployment.s3.keys(deployment.bucket)) == sorted(r.filename for r in rows)
            for row in rows:
                decoded = fetch_and_decode(deployment, row.filename, tmp_path)
                assert decoded.video_count > 10 and decoded.audio_end > 1.0
                assert not Path(row.spool_path).exists(), "a stored file leaves the spool"
            await wait_for(
                lambda: (
                    delivered(deployment, "recording.finished", rows[1].recording_id)
                    and delivered(deployment, "recording.finished", rows[0].recording_id)
                    and delivered(deployment, "recording.failed", rows[0].recording_id)
                ),
                60,
                "the events",
            )
            events = await wait_for(
                lambda: _quietly(check_every_event_delivered, deployment), 60, "every event"
            )
            types = [e["type"] for e in events]
            assert types.count("recording.started") == 2
            failed = [e["data"] for e in events if e["type"] == "recording.failed"]
            assert [f["recordingId"] for f in failed] == [rows[0].recording_id]
            finished = [e["data"] for e in events if e["type"] == "recording.finished"]
            assert sorted(f["recordingId"] for f in finished) == sorted(
                r.recording_id for r in rows
            )
            for name in machines:
                workers[name][-1].send_signal(signal.SIGTERM)
                assert await _exit_code(workers[name][-1]) == 0, workers[name][-1].output
        finally:
            unrestrict_host_addresses()
            await deployment.close()
            if postgres is not None:
                with db_host.entered():
                    postgres.stop()
            if redis is not None:
                redis.stop()
            if janus is not None:
                janus.stop()
