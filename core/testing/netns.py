"""Several machines on one: network namespaces for tests ("hosts" on a private switch).

::

    with Network() as net:
        a = net.add_host("control")          # 10.213.0.2
        b = net.add_host("worker")           # 10.213.0.3
        server = a.popen(["recfw", "run", ...])   # a process inside a's namespace
        with b.entered():                    # this thread's new sockets are b's
            socket.create_connection((a.address, 8080))

Each host is a network namespace with ``lo`` up and one interface, ``eth0``,
holding its private address. The ``eth0`` ends are veth pairs whose other ends
sit on a Linux bridge in a separate *switch* namespace, so every host reaches
every other one and nothing else. Everything is created inside those
namespaces: no address, route or interface is ever added to the namespace the
test runs in (the veth pairs are created in the switch namespace and their
peers moved straight into the host's), and IPv6 is switched off inside them so
no host sends router solicitations or uses link-local addresses.

Processes run in a host with ``ip netns exec`` (:meth:`Host.popen`,
:meth:`Host.run`), their output captured line by line (:class:`HostProcess`);
each also gets its own UTS namespace whose host name is :attr:`Host.hostname`
(``recfw-NAME``), so "machines" have different names as real ones do.
:meth:`Host.entered` moves *the calling thread* into the host's namespace for a
block (``setns(2)``): sockets created there stay in that namespace afterwards,
and threads started there inherit it, so a test can run an in-process server
(an S3 endpoint, a webhook receiver) or client "on" a host.

Teardown (:meth:`Network.close`, or leaving the ``with``) stops every process
it started, kills whatever else still runs inside its namespaces (e.g. a
process a server started itself), and deletes the namespaces, which removes the
veth pairs and the bridge with them. It runs when a test fails, too. Every
namespace name starts with ``recfwt-<pid>-<start time>-``; a new
:class:`Network` removes leftovers of a run whose process no longer exists
(a test run killed before its teardown).

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2's ``ip``;
:func:`unavailable_reason` says why not, and the pytest fixture
``netns_network`` skips with that reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

#: Every namespace this module creates has a name starting with this.
PREFIX = "recfwt-"
#: The default private network (only ever inside the namespaces).
DEFAULT_SUBNET = "10.213.0.0/24"
#: Where ``ip netns`` keeps its named namespaces.
NETNS_DIR = Path("/run/netns")

_CLONE_NEWNET = 0x40000000
_CAP_NET_ADMIN = 12
_CAP_SYS_ADMIN = 21
_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_OWNER = re.compile(rf"^{re.escape(PREFIX)}(\d+)-(\d+)-")


class NetnsError(RuntimeError):
    """A namespace, interface or process of the harness could not be set up."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def _capabilities() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def unavailable_reason() -> str | None:
    """Why network namespaces cannot be used here (``None``: they can)."""
    if not hasattr(os, "geteuid") or not Path("/proc/self/ns/net").exists():
        return "network namespaces need Linux"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    caps = _capabilities()
    for bit, name in ((_CAP_NET_ADMIN, "CAP_NET_ADMIN"), (_CAP_SYS_ADMIN, "CAP_SYS_ADMIN")):
        if not caps & (1 << bit):
            return f"network namespaces need root ({name} is missing; uid {os.geteuid()})"
    probe = f"{PREFIX}{os.getpid()}-0-probe{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _libc_setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise NetnsError(f"setns failed: {os.strerror(errno)}")


def _setns(fd: int) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12+
    if setns is not None:
        setns(fd, _CLONE_NEWNET)
    else:
        _libc_setns(fd)


def namespaces() -> list[str]:
    """The names of every named network namespace on this machine."""
    result = _ip("netns", "list", check=False)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def _pids_in(netns: str) -> list[int]:
    result = _ip("netns", "pids", netns, check=False)
    return [int(p) for p in result.stdout.split() if p.isdigit()]


def _remove_namespace(netns: str) -> None:
    """Kill what still runs in ``netns`` (started there by this harness), then delete it."""
    for _ in range(50):
        pids = _pids_in(netns)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    _ip("netns", "del", netns, check=False)


def remove_leftovers() -> list[str]:
    """Delete the namespaces of earlier runs whose process is gone; return their names."""
    removed = []
    for netns in namespaces():
        match = _OWNER.match(netns)
        if not match:
            continue
        pid, started = int(match.group(1)), int(match.group(2))
        alive = _start_time(pid)
        if (started == 0 and alive is not None) or (started and alive == started):
            continue  # a live run's (started 0: a probe, made and deleted at once)
        log.warning("removing network namespace %s left over by a killed run", netns)
        _remove_namespace(netns)
        removed.append(netns)
    return removed


class HostProcess:
    """A process started in a host; its output (stdout and stderr) read into :attr:`lines`."""

    def __init__(self, host: Host, argv: Sequence[str], popen: subprocess.Popen[bytes]):
        self.host = host
        self.argv = list(argv)
        self.popen = popen
        #: Every line it printed so far (stdout and stderr together), without newlines.
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(
            target=self._read, name=f"netns-{host.name}-{popen.pid}", daemon=True
        )
        self._reader.start()

    def _read(self) -> None:
        stream: IO[bytes] | None = self.popen.stdout
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        stream.close()
        with self._changed:
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def find(self, pattern: str, start: int = 0) -> re.Match[str] | None:
        """The first match of the regular expression ``pattern`` in a line from ``start`` on."""
        regex = re.compile(pattern)
        for line in self.lines[start:]:
            match = regex.search(line)
            if match:
                return match
        return None

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
        """Block until a line matches ``pattern`` (a regex); raise if it ends or times out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = self.find(pattern, start)
                if match:
                    return match
                if not self._reader.is_alive():
                    raise NetnsError(
                        f"{self.host.name}: {self.argv[0]} ended (status {self.popen.wait()}) "
                        f"before printing {pattern!r}:\n{self.output[-3000:]}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NetnsError(
                        f"{self.host.name}: {self.argv[0]} did not print {pattern!r} "
                        f"within {timeout:g} s:\n{self.output[-3000:]}"
                    )
                self._changed.wait(min(left, 1.0))

    async def await_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
        """:meth:`wait_for` for coroutines (waits in a thread)."""
        import asyncio

        return await asyncio.to_thread(self.wait_for, pattern, timeout, start)

    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL (as the OOM killer or a pulled plug would)."""
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(10)
        return code

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; return the exit status."""
        if self.popen.poll() is None:
            self.send_signal(signal.SIGTERM)
            try:
                return self.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.wait(30)


class Host:
    """One "machine": a network namespace with ``lo`` and ``eth0`` (:attr:`address`)."""

    def __init__(self, network: Network, name: str, netns: str, address: str):
        self.network = network
        self.name = name
        #: The namespace's name (``ip netns exec NETNS ...``).
        self.netns = netns
        #: Its private address on the network.
        self.address = address
        #: The machine name its processes see (``socket.gethostname()``).
        self.hostname = f"recfw-{name}"
        self.processes: list[HostProcess] = []

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.address} ({self.netns})>"

    def _argv(self, argv: Sequence[str]) -> list[str]:
        # Its own UTS namespace too, so the process sees the host's name as the
        # machine's (recfw names a spool's machine by it). Each step execs the
        # next one: the pid is the command's own.
        return [
            "ip", "netns", "exec", self.netns,
            "unshare", "--uts", "--",
            "sh", "-c", 'hostname "$0" && exec "$@"', self.hostname,
            *[str(a) for a in argv],
        ]  # fmt: skip

    def run(
        self, argv: Sequence[str], timeout: float = 60, check: bool = False, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in this host and wait for it (output captured as text)."""
        return subprocess.run(
            self._argv(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            **kwargs,
        )

    def popen(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
    ) -> HostProcess:
        """Start a command in this host; its output is captured (:class:`HostProcess`)."""
        popen = subprocess.Popen(
            self._argv(argv),
            env=env,
            cwd=cwd,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = HostProcess(self, argv, popen)
        self.processes.append(process)
        log.info("%s (%s): started %s as %d", self.name, self.address, argv[0], popen.pid)
        return process

    @contextlib.contextmanager
    def entered(self) -> Iterator[Host]:
        """Move the calling thread into this host's namespace for the block.

        Sockets created inside the block (and threads started inside it) belong
        to this host for good; the thread goes back to its own namespace at the
        end, even on an error.
        """
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(NETNS_DIR / self.netns, os.O_RDONLY)
            try:
                _setns(target)
                try:
                    yield self
                finally:
                    _setns(own)
            finally:
                os.close(target)
        finally:
            os.close(own)

    def pids(self) -> list[int]:
        """Every process running in this host's namespace now."""
        return _pids_in(self.netns)


class Network:
    """A private network of :class:`Host` namespaces on one bridge (see the module docs).

    ``subnet`` is the hosts' network (the first address is left free as a
    "gateway" nobody holds; hosts get the following ones in order).
    """

    def __init__(self, subnet: str = DEFAULT_SUBNET):
        reason = unavailable_reason()
        if reason is not None:
            raise NetnsError(reason)
        self.subnet = ipaddress.ip_network(subnet)
        if not self.subnet.is_private or self.subnet.version != 4:
            raise NetnsError(f"subnet {subnet}: must be a private IPv4 network")
        started = _start_time(os.getpid())
        self.prefix = f"{PREFIX}{os.getpid()}-{started}-{uuid.uuid4().hex[:6]}-"
        self.hosts: dict[str, Host] = {}
        self._addresses = self.subnet.hosts()
        next(self._addresses)  # .1 stays free
        self._created: list[str] = []
        self._closed = False
        remove_leftovers()
        self.switch = self._namespace("switch")
        try:
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def _namespace(self, name: str) -> str:
        netns = self.prefix + name
        _ip("netns", "add", netns)
        self._created.append(netns)
        for key in ("all", "default"):
            sysctl = f"net.ipv6.conf.{key}.disable_ipv6=1"
            subprocess.run(
                ["ip", "netns", "exec", netns, "sysctl", "-qw", sysctl],
                capture_output=True,
                timeout=30,
                check=False,
            )
        _ip("-n", netns, "link", "set", "lo", "up")
        return netns

    def add_host(self, name: str) -> Host:
        """A new host (``name``: lower-case letters and digits, up to 12) on the switch."""
        if self._closed:
            raise NetnsError("the network is closed")
        if not _NAME.match(name):
            raise NetnsError(f"host name {name!r}: use 1-12 lower-case letters/digits")
        if name in self.hosts or name == "switch":
            raise NetnsError(f"host name {name!r}: already taken")
        try:
            address = str(next(self._addresses))
        except StopIteration:
            raise NetnsError(f"subnet {self.subnet} is full") from None
        netns = self._namespace(name)
        port = f"p{len(self.hosts) + 1}"
        _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", netns)  # fmt: skip
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", netns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        host = Host(self, name, netns, address)
        self.hosts[name] = host
        log.info("netns host %s at %s (%s)", name, address, netns)
        return host

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def close(self) -> None:
        """Stop every process, kill what is left inside, delete every namespace."""
        if self._closed:
            return
        self._closed = True
        for host in self.hosts.values():
            for process in host.processes:
                with contextlib.suppress(Exception):
                    process.stop(grace=5)
        for netns in reversed(self._created):
            _remove_namespace(netns)
        left = [n for n in namespaces() if n.startswith(self.prefix)]
        if left:
            raise NetnsError(f"could not delete the namespaces {', '.join(left)}")

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
