"""recfw.testing.netns: hosts reach each other, the root namespace is never touched,
and nothing is left behind (after a failing test, or a run killed before its teardown)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from recfw.testing import netns
from recfw.testing.netns import NetnsError, Network

pytestmark = pytest.mark.skipif(
    netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason())
)

ECHO_SERVER = textwrap.dedent(
    """
    import socket, sys
    server = socket.create_server((sys.argv[1], 0))
    print("listening", server.getsockname()[1], flush=True)
    conn, peer = server.accept()
    data = conn.recv(100)
    conn.sendall(b"echo " + data + b" from " + peer[0].encode())
    conn.close()
    """
)
CLIENT = textwrap.dedent(
    """
    import socket, sys
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as conn:
        conn.sendall(b"hello")
        print(conn.recv(100).decode(), flush=True)
    """
)


def root_namespace() -> dict[str, str]:
    """What the test's own namespace has: links, addresses, routes, rules."""
    views = {
        "links": ["ip", "-o", "link"],
        "addresses": ["ip", "-o", "addr"],
        "routes": ["ip", "route", "show", "table", "all"],
        "routes6": ["ip", "-6", "route", "show", "table", "all"],
        "rules": ["ip", "rule"],
    }
    return {
        name: subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        for name, argv in views.items()
    }


def ours(prefix: str) -> list[str]:
    return [n for n in netns.namespaces() if n.startswith(prefix)]


def test_two_hosts_talk_tcp_through_processes(netns_network: Network):
    a = netns_network.add_host("alpha")
    b = netns_network.add_host("beta")
    assert a.address != b.address
    server = b.popen([sys.executable, "-c", ECHO_SERVER, b.address])
    port = server.wait_for(r"listening (\d+)", 30).group(1)
    client = a.run([sys.executable, "-c", CLIENT, b.address, port], timeout=30)
    assert client.returncode == 0, client.stderr
    assert client.stdout.strip() == f"echo hello from {a.address}"
    assert server.wait(30) == 0


def test_hosts_have_their_own_address_and_only_their_subnet(netns_network: Network):
    a = netns_network.add_host("alpha")
    addresses = a.run(["ip", "-o", "-4", "addr"], check=True).stdout
    assert f"inet {a.address}/24" in addresses and "inet 127.0.0.1/8" in addresses
    assert len(addresses.splitlines()) == 2
    routes = [r.strip() for r in a.run(["ip", "route"], check=True).stdout.splitlines()]
    assert routes == [f"10.213.0.0/24 dev eth0 proto kernel scope link src {a.address}"]
    assert "inet6" not in a.run(["ip", "-o", "addr"], check=True).stdout  # IPv6 off inside
    # its own machine name, and the root namespace's stays as it was
    assert a.run(["hostname"], check=True).stdout.strip() == "recfw-alpha"
    assert socket.gethostname() != "recfw-alpha"


def test_entered_thread_sockets_belong_to_the_host(netns_network: Network):
    a = netns_network.add_host("alpha")
    b = netns_network.add_host("beta")
    with b.entered():
        listener = socket.create_server((b.address, 0))
        udp_b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp_b.bind((b.address, 0))
    with a.entered():
        conn = socket.create_connection(listener.getsockname(), timeout=10)
        udp_a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp_a.bind((a.address, 0))
    # Back in the root namespace, the sockets keep working (they stay the hosts').
    with listener, conn, udp_a, udp_b:
        accepted, peer = listener.accept()
        with accepted:
            assert peer[0] == a.address
            conn.sendall(b"tcp")
            assert accepted.recv(10) == b"tcp"
        udp_a.sendto(b"udp", udp_b.getsockname())
        udp_b.settimeout(10)
        data, sender = udp_b.recvfrom(10)
        assert (data, sender[0]) == (b"udp", a.address)
    # The thread is back home: the hosts' addresses are not ours.
    with socket.socket() as home, pytest.raises(OSError):
        home.bind((a.address, 0))


def test_root_namespace_untouched_and_nothing_left():
    before = root_namespace()
    with Network() as net:
        prefix = net.prefix
        a = net.add_host("alpha")
        net.add_host("beta")
        a.popen(["sleep", "300"])
        assert len(ours(prefix)) == 3  # switch + 2 hosts
        assert root_namespace() == before
    assert ours(prefix) == []
    assert root_namespace() == before


def test_teardown_after_a_failing_test_kills_everything():
    with pytest.raises(RuntimeError, match="the test failed"):
        with Network() as net:
            prefix = net.prefix
            host = net.add_host("alpha")
            sleeper = host.popen(["sleep", "300"])
            # a grandchild the harness did not start itself (a server's own worker)
            nested = host.popen(["sh", "-c", "sleep 301 & echo child $!; wait"])
            child = int(nested.wait_for(r"child (\d+)", 30).group(1))
            raise RuntimeError("the test failed")
    assert ours(prefix) == []
    assert sleeper.returncode is not None
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text()


KILLED_RUN = textwrap.dedent(
    """
    from recfw.testing.netns import Network
    net = Network()
    host = net.add_host("alpha")
    sleeper = host.popen(["sleep", "600"])
    print(net.prefix, sleeper.pid, flush=True)
    import time
    time.sleep(600)
    """
)


def test_leftovers_of_a_killed_run_are_removed():
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN], stdout=subprocess.PIPE, text=True)
    try:
        prefix, pid = run.stdout.readline().split()
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert len(ours(prefix)) == 2, "the killed run left its namespaces"
    assert Path(f"/proc/{pid}").exists()
    with Network() as net:
        assert ours(prefix) == [], "a new network removes a dead run's namespaces"
        assert ours(net.prefix)  # and keeps its own
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the leftover's process was killed"


def test_a_live_runs_namespaces_are_kept(netns_network: Network):
    netns_network.add_host("alpha")
    assert netns.remove_leftovers() == []
    assert len(ours(netns_network.prefix)) == 2


def test_process_output_errors_name_the_host(netns_network: Network):
    a = netns_network.add_host("alpha")
    quick = a.popen(["sh", "-c", "echo one; echo two >&2; exit 3"])
    with pytest.raises(NetnsError, match=r"alpha: sh ended \(status 3\) before printing 'never'"):
        quick.wait_for("never", 30)
    assert quick.lines == ["one", "two"]
    slow = a.popen(["sleep", "30"])
    with pytest.raises(NetnsError, match=r"alpha: sleep did not print 'x' within 0.2 s"):
        slow.wait_for("x", 0.2)


def test_bad_host_names_and_subnets_are_refused(netns_network: Network):
    netns_network.add_host("alpha")
    with pytest.raises(NetnsError, match="already taken"):
        netns_network.add_host("alpha")
    with pytest.raises(NetnsError, match="lower-case"):
        netns_network.add_host("Bad-Name")
    with pytest.raises(NetnsError, match="private IPv4"):
        Network("8.8.8.0/24")


def test_unavailable_without_capabilities(monkeypatch):
    monkeypatch.setattr(netns, "_capabilities", lambda: 0)
    reason = netns.unavailable_reason()
    assert reason is not None and "CAP_NET_ADMIN" in reason and "root" in reason
    with pytest.raises(NetnsError, match="CAP_NET_ADMIN"):
        Network()
    assert os.geteuid() == 0  # (this test module only runs as root)
