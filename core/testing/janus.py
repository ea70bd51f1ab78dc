"""A real Janus WebRTC server (Debian's ``janus`` package) confined to loopback, for tests.

:class:`JanusServer` writes ``janus.jcfg``, ``janus.transport.websockets.jcfg``
and ``janus.plugin.videoroom.jcfg`` into a temporary folder and starts
``janus -F <folder> -C <folder>/janus.jcfg``:

* only the VideoRoom plugin and the WebSocket transport are loaded (every
  other plugin, transport, logger and event handler is disabled), so the only
  TCP port Janus listens on is its WebSocket API, on ``127.0.0.1`` and an
  ephemeral port; the HTTP and admin APIs are off;
* ICE gathers on the loopback interface only (``ice_enforce_list = "lo"``),
  without STUN/TURN, IPv6 or mDNS, with RTP ports from a small range: media
  never leaves 127.0.0.1. Janus itself never gathers on a loopback interface
  (``src/ice.c`` skips ``IFF_LOOPBACK``; with nothing left, libnice would
  gather on every other interface, and ``nat_1_1_mapping = "127.0.0.1"`` would
  only rewrite the advertised address of a socket bound elsewhere). So the
  fixture compiles a ten-line ``getifaddrs`` shim (``cc``) that clears the
  ``IFF_LOOPBACK`` flag and starts Janus with it in ``LD_PRELOAD``: then
  ``lo`` is the one interface Janus may use, and its sockets are bound to
  127.0.0.1;
* every request needs the random ``api_secret`` (the browser never talks to
  Janus; recfw does).

``JanusServer(host=ADDRESS)`` runs it on a test network's address instead (a
network namespace of :mod:`recfw.testing.netns`, started from a thread that
entered it): WebSocket API and ICE on that address only (``ice_enforce_list``
names it), no shim needed.

``with JanusServer() as janus: janus.url`` (``ws://127.0.0.1:PORT``),
``janus.api_secret``, ``janus.pid``. Janus's log goes to ``janus.log`` in
the folder (printed in the error when it does not come up).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

JANUS = "/usr/bin/janus"
LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
#: Seconds Janus gets to listen.
START_TIMEOUT = 20.0


#: Why a test that needs Janus cannot run here.
JANUS_MISSING = "Janus is not installed: run `make system-deps` (apt-get install janus)"


def janus_available() -> bool:
    """Whether Debian's janus (with the VideoRoom plugin and WebSocket transport) is here."""
    return (
        shutil.which("janus") is not None
        and (LIB / "plugins" / "libjanus_videoroom.so").exists()
        and (LIB / "transports" / "libjanus_websockets.so").exists()
    )


def _others(folder: Path, keep: str) -> str:
    """Every ``.so`` in ``folder`` but ``keep``, comma-separated (Janus's ``disable`` list)."""
    if not folder.is_dir():
        return ""
    names = sorted(p.name for p in folder.glob("*.so") if p.name != keep)
    return ",".join(names)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _free_udp_range(size: int = 200, host: str = "127.0.0.1") -> tuple[int, int]:
    """A random UDP port range (Janus's RTP ports) whose first port is free now."""
    import random

    for _ in range(50):
        start = random.randrange(20000, 60000 - size)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((host, start))
            except OSError:
                continue
        return start, start + size
    return 20000, 20000 + size


#: Janus skips interfaces flagged IFF_LOOPBACK; this shim (LD_PRELOAD) clears the flag.
SHIM_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **) = 0;
    if (!real) real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int result = real(ifap);
    if (result == 0)
        for (struct ifaddrs *i = *ifap; i; i = i->ifa_next) i->ifa_flags &= ~IFF_LOOPBACK;
    return result;
}
"""


def build_shim(folder: Path) -> Path:
    """Compile :data:`SHIM_SOURCE` into ``folder/loopback-shim.so``."""
    source = folder / "loopback-shim.c"
    source.write_text(SHIM_SOURCE)
    library = folder / "loopback-shim.so"
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("a C compiler (cc) is needed to confine Janus to loopback")
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
        check=True,
        capture_output=True,
    )
    return library


def janus_config(
    folder: Path, port: int, api_secret: str, rtp: tuple[int, int], host: str = "127.0.0.1"
) -> None:
    """Write the three config files of a Janus confined to ``host`` (loopback) into ``folder``."""
    enforce = "lo" if host == "127.0.0.1" else host
    (folder / "janus.jcfg").write_text(
        f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{LIB / "plugins"}"
    transports_folder = "{LIB / "transports"}"
    events_folder = "{LIB / "events"}"
    loggers_folder = "{LIB / "loggers"}"
    debug_level = 4
    debug_timestamps = true
    interface = "{host}"
    api_secret = "{api_secret}"
    session_timeout = 60
    hide_dependencies = true
    protected_folders = ["/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr"]
}}
certificates: {{
}}
media: {{
    ipv6 = false
    rtp_port_range = "{rtp[0]}-{rtp[1]}"
}}
nat: {{
    nice_debug = false
    ice_enforce_list = "{enforce}"
    ignore_mdns = true
    full_trickle = false
}}
plugins: {{
    disable = "{_others(LIB / "plugins", "libjanus_videoroom.so")}"
}}
transports: {{
    disable = "{_others(LIB / "transports", "libjanus_websockets.so")}"
}}
loggers: {{
    disable = "{_others(LIB / "loggers", "")}"
}}
events: {{
    broadcast = false
    disable = "{_others(LIB / "events", "")}"
}}
"""
    )
    (folder / "janus.transport.websockets.jcfg").write_text(
        f"""general: {{
    json = "plain"
    ws = true
    ws_port = {port}
    ws_ip = "{host}"
    wss = false
    ws_logging = "err,warn"
}}
admin: {{
    admin_ws = false
    admin_wss = false
}}
"""
    )
    # No static rooms: recfw creates and destroys its rooms.
    (folder / "janus.plugin.videoroom.jcfg").write_text(
        """general: {
    string_ids = true
}
"""
    )


class JanusServer:
    """Janus on loopback in a temporary folder (see the module docstring)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.folder: Path | None = None
        self.port: int | None = None
        self.api_secret = secrets.token_urlsafe(18)
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_text(self) -> str:
        if self.folder is None:
            return ""
        path = self.folder / "janus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> JanusServer:
        for attempt in range(3):
            try:
                self._start()
                return self
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise
        return self

    def _start(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="recfw-janus-"))
        self.port = _free_port(self.host)
        rtp = _free_udp_range(host=self.host)
        janus_config(self.folder, self.port, self.api_secret, rtp, self.host)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if self.host == "127.0.0.1":
            env["LD_PRELOAD"] = str(build_shim(self.folder))
        self._log = open(self.folder / "janus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [JANUS, "-F", str(self.folder), "-C", str(self.folder / "janus.jcfg"), "-o"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.folder,
            env=env,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"janus exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.5),
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"janus did not listen within {START_TIMEOUT:g} s:\n{self.log_text()}")

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> JanusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
