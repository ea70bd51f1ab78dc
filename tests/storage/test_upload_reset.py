"""A connection reset in the middle of an upload: one StorageError line, the file kept.

A TCP proxy on 127.0.0.1 in front of the moto server resets the connections
(RST, not FIN) once a given number of request bytes went through, mid-body of
an S3 part. Nothing may be left behind as "Task exception was never retrieved"
or "Future exception was never retrieved" (asyncio's words for a failed task
nobody awaited), in the log or on stderr.
"""

from __future__ import annotations

import gc
import logging
import socket
import struct
import threading
from dataclasses import replace

import pytest
from recfw import hookimpl
from recfw.errors import StorageError
from recfw.manager import Plugins
from recfw.netguard import policy_scope
from recfw.plugins.sinks import S3Sink
from recfw.storing import store_recording
from storage_helpers import MiB, make_file


class ResettingProxy:
    """Forwards to ``port``; after ``reset_after`` request bytes, resets connections.

    ``once``: only the connection that crossed the limit is reset (a retry works);
    else every connection from then on.
    """

    def __init__(self, port: int, reset_after: int, once: bool):
        self.port_to, self.reset_after, self.once = port, reset_after, once
        self.sent = 0
        self.resets = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.port_to))
        self._sockets += [client, upstream]

        def back() -> None:
            try:
                while data := upstream.recv(65536):
                    client.sendall(data)
            except OSError:
                pass

        threading.Thread(target=back, daemon=True).start()
        try:
            while data := client.recv(65536):
                with self._lock:
                    self.sent += len(data)
                    reset = self.sent > self.reset_after and not (self.once and self.resets)
                    self.resets += reset
                if reset:
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    client.close()
                    upstream.close()
                    return
                upstream.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._listener.close()
        for s in self._sockets:
            s.close()


def _plugins_with(sink: S3Sink) -> Plugins:
    class _Plugin:
        @hookimpl
        def recfw_register_sinks(self, register):
            register(sink)

    plugins = Plugins(environ={})
    plugins.register(_Plugin(), name="test-s3")
    return plugins


@pytest.mark.parametrize(
    "reset_after", [1 * MiB, 11 * MiB], ids=["in-the-first-part", "in-a-later-part"]
)
def test_a_reset_mid_upload_is_one_clear_error(
    s3_server, s3_bucket, tmp_path, caplog, capfd, reset_after
):
    caplog.set_level(logging.INFO)  # libraries log tracebacks at DEBUG; that is theirs
    spool = tmp_path / "spool" / "standup.mkv"
    make_file(spool, 24 * MiB)  # 3 parts of 8 MiB, uploaded concurrently
    port = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    proxy = ResettingProxy(port, reset_after, once=False)
    destination = replace(
        s3_server.destination(s3_bucket), endpoint_url=f"http://127.0.0.1:{proxy.port}"
    )
    try:
        with policy_scope([f"127.0.0.1:{proxy.port}"]), pytest.raises(StorageError) as exc_info:
            store_recording(spool, "standup.mkv", destination, _plugins_with(S3Sink()))
        gc.collect()  # asyncio reports unretrieved task exceptions when they are collected
    finally:
        proxy.close()
    assert proxy.resets >= 1
    message = str(exc_info.value)
    assert "cannot reach the S3 endpoint" in message and "\n" not in message
    assert spool.exists() and str(spool) in message
    assert s3_server.secret_access_key not in caplog.text
    _assert_nothing_unretrieved(caplog, capfd)


def test_one_reset_is_retried_and_the_file_stored(s3_server, s3_bucket, tmp_path, caplog, capfd):
    caplog.set_level(logging.INFO)
    spool = tmp_path / "spool" / "standup.mkv"
    make_file(spool, 24 * MiB)
    port = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    proxy = ResettingProxy(port, 11 * MiB, once=True)
    destination = replace(
        s3_server.destination(s3_bucket), endpoint_url=f"http://127.0.0.1:{proxy.port}"
    )
    try:
        with policy_scope([f"127.0.0.1:{proxy.port}"]):
            stored = store_recording(spool, "standup.mkv", destination, _plugins_with(S3Sink()))
        gc.collect()
    finally:
        proxy.close()
    assert proxy.resets == 1
    assert stored.size == 24 * MiB and not spool.exists()
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="standup.mkv")
    assert head["ContentLength"] == 24 * MiB
    _assert_nothing_unretrieved(caplog, capfd)


def _assert_nothing_unretrieved(caplog, capfd) -> None:
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err):
        assert "never retrieved" not in text
        assert "Traceback" not in text
