"""Outgoing connections only go where they should: no loopback, private or metadata hosts.

A meeting's ``destination.endpointUrl`` (or an fsspec URL, or a webhook URL)
is chosen by whoever calls the API. Without a guard, recfw's server would send
requests wherever that points: its own loopback services, the cloud's metadata
service (``169.254.169.254``, which hands out the machine's credentials), the
private network behind it (SSRF).

The rule: recfw connects only to *public* addresses. Refused are

* loopback (``127.0.0.0/8``, ``::1``) and the names ``localhost`` / ``*.localhost``,
* unspecified (``0.0.0.0/8``, ``::``),
* link-local (``169.254.0.0/16``, ``fe80::/10``), which holds the metadata services,
* private ranges (RFC 1918, CGNAT ``100.64.0.0/10``, ULA ``fc00::/7``, ...),
* multicast, broadcast, documentation, benchmarking and other reserved ranges,
* cloud metadata names (``metadata.google.internal``, ...) and ``fd00:ec2::254``,
* any of these written inside an IPv6 address (IPv4-mapped ``::ffff:127.0.0.1``,
  NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo).

A host name is checked by what it resolves to, **every** address of it. The
operator opens exceptions in the config file (:class:`Policy`)::

    [server]
    allowedDestinations = ["10.1.2.3", "10.20.0.0/16", "[fd00::5]:9000",
                           "minio.internal", "*.storage.corp:9000"]

An entry is an IP address or network (any port, or ``address:port``) or a host
name (exact, or ``*.suffix`` for its sub-domains; optionally ``:port``). A
name entry trusts the name whatever it resolves to.

Two moments are checked: when settings are validated (:func:`url_errors`, a
field-named :class:`~recfw.errors.FieldError`), and when a connection is
opened. The second closes DNS rebinding (a name that resolved to a public
address at validation and to ``127.0.0.1`` later): :func:`checked_addresses`
resolves, checks and returns the addresses to connect to, so the socket goes
to exactly the address that was checked. Ready-made for aiohttp (which
aiobotocore/s3fs use) is :class:`GuardedResolver` plus
:meth:`ConnectGuard.socket_factory` (:func:`aiohttp_connector_args`). Code
that opens sockets itself (a webhook sender) calls :func:`checked_addresses`
and connects to one of the returned addresses.

The policy is process-wide (:func:`set_policy`, from the config file at
start; :func:`policy_scope` for tests); so is the resolver
(:func:`resolver_scope` lets tests map names to addresses without touching
``/etc/hosts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import FieldError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The config key (under ``[server]``) that lists allowed destinations.
CONFIG_KEY = "allowedDestinations"
#: Seconds a validation-time DNS lookup may take before it is skipped (connect time still checks).
VALIDATION_LOOKUP_TIMEOUT = 3.0


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


#: (what it is, networks), most specific first: the first match names the refusal.
REFUSED_NETWORKS: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    (
        "a cloud metadata address",
        _nets(
            "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, ...
            "169.254.170.2/32",  # AWS ECS task metadata
            "fd00:ec2::254/128",  # AWS IMDS over IPv6
            "100.100.100.200/32",  # Alibaba Cloud
        ),
    ),
    ("an unspecified address", _nets("0.0.0.0/8", "::/128")),
    ("a loopback address", _nets("127.0.0.0/8", "::1/128")),
    ("a link-local address", _nets("169.254.0.0/16", "fe80::/10")),
    (
        "a private address",
        _nets(
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",  # carrier-grade NAT
            "fc00::/7",  # unique local
            "fec0::/10",  # site-local (deprecated, still routed privately)
        ),
    ),
    ("a multicast address", _nets("224.0.0.0/4", "ff00::/8")),
    (
        "a reserved address",
        _nets(
            "192.0.0.0/24",  # IETF protocol assignments
            "192.0.2.0/24",  # documentation
            "198.51.100.0/24",
            "203.0.113.0/24",
            "198.18.0.0/15",  # benchmarking
            "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
            "100::/64",  # discard
            "2001:db8::/32",  # documentation
            "2001:10::/28",  # ORCHID
            "3fff::/20",  # documentation (2024)
        ),
    ),
)

#: Names refused whatever they resolve to (the metadata services' well-known names).
REFUSED_NAMES = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)


class DestinationRefused(OSError):
    """A connection to a host that is not allowed; ``reason`` says why (no secret in it).

    An ``OSError`` so HTTP clients report it as a connection failure; recfw's
    own messages quote :attr:`reason`.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


# --- addresses --------------------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    packed = int(ip)
    if ip in ipaddress.ip_network("64:ff9b::/96") or ip in ipaddress.ip_network("64:ff9b:1::/48"):
        return ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    if ip in ipaddress.ip_network("::/96") and packed > 1:  # IPv4-compatible (deprecated)
        return ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress | str) -> str | None:
    """Why recfw does not connect to ``ip`` by default (``"a loopback address"``), or ``None``.

    ``None`` means a public address. IPv4 addresses written inside IPv6 ones
    get the IPv4 address' verdict; anything not globally routable is refused.
    """
    ip = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        inner = _embedded_ipv4(ip)
        if inner is not None:
            why = refusal(inner)
            return f"{why} (as {inner} inside an IPv6 address)" if why else None
    for what, networks in REFUSED_NETWORKS:
        if any(ip in net for net in networks if net.version == ip.version):
            return what
    if not ip.is_global:
        return "a reserved address"
    return None


def refused_name(host: str) -> str | None:
    """Why a host *name* is refused whatever it resolves to, or ``None``."""
    name = _normal_host(host)
    if name in REFUSED_NAMES:
        return "a cloud metadata host" if name != "localhost" else "a loopback host"
    if name.endswith(".localhost"):
        return "a loopback host"
    return None


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(_normal_host(host))
    except ValueError:
        return None


# --- the allow-list ---------------------------------------------------------


@dataclass(frozen=True)
class Allowed:
    """One ``allowedDestinations`` entry: a network or a host name, optionally one port."""

    text: str
    network: IPNetwork | None = None
    name: str | None = None  # exact name, or ".suffix" for "*.suffix"
    port: int | None = None

    def matches_host(self, host: str, port: int | None) -> bool:
        if self.name is None or not self._port_ok(port):
            return False
        host = _normal_host(host)
        if self.name.startswith("."):
            return host.endswith(self.name)
        return host == self.name

    def matches_ip(self, ip: IPAddress, port: int | None) -> bool:
        if self.network is None or not self._port_ok(port):
            return False
        if ip.version == self.network.version and ip in self.network:
            return True
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        return mapped is not None and self.network.version == 4 and mapped in self.network

    def _port_ok(self, port: int | None) -> bool:
        return self.port is None or port == self.port


def parse_allowed(entry: str) -> Allowed:
    """Read one allow-list entry; ``ValueError`` saying what is wrong with it."""
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError("must be a non-empty string")
    text = entry.strip()
    if "://" in text:
        raise ValueError(f"{entry!r} is a URL; give a host, address or network")
    host, port = text, None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"{entry!r}: missing ']'")
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{entry!r}: expected ':port' after ']'")
            port = _port(rest[1:], entry)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, entry)
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        network = None
    if network is not None:
        if "/" in host and ipaddress.ip_network(host, strict=False).network_address != (
            ipaddress.ip_address(host.split("/", 1)[0])
        ):
            raise ValueError(f"{entry!r}: host bits set; did you mean {network}?")
        return Allowed(text, network=network, port=port)
    if "/" in host:
        raise ValueError(f"{entry!r} is neither an IP network nor a host name")
    name = _normal_host(host)
    wildcard = name.startswith("*.")
    bare = name[2:] if wildcard else name
    labels = bare.split(".")
    if not bare or any(
        not label or len(label) > 63 or not all(c.isalnum() or c in "-_" for c in label)
        for label in labels
    ):
        raise ValueError(f"{entry!r} is not a host name, IP address or network")
    return Allowed(text, name=f".{bare}" if wildcard else bare, port=port)


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{entry!r}: the port must be 1..65535")
    return int(text)


@dataclass(frozen=True)
class Policy:
    """Where recfw may connect besides public addresses: the operator's allow-list."""

    allowed: tuple[Allowed, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> Policy:
        """A policy from ``allowedDestinations`` strings (``ValueError`` on a bad one)."""
        return cls(tuple(parse_allowed(e) for e in entries))

    def with_entries(self, entries: Iterable[str]) -> Policy:
        return Policy(self.allowed + tuple(parse_allowed(e) for e in entries))

    def name_allowed(self, host: str, port: int | None) -> bool:
        return any(a.matches_host(host, port) for a in self.allowed)

    def ip_allowed(self, ip: IPAddress, port: int | None) -> bool:
        return any(a.matches_ip(ip, port) for a in self.allowed)


def allowed_errors(value: Any, field: str = f"server.{CONFIG_KEY}") -> list[FieldError]:
    """The problems of a config file's ``allowedDestinations`` value, each naming its entry."""
    if not isinstance(value, list):
        return [FieldError(field, "must be a list of hosts, addresses or networks")]
    errors = []
    for i, entry in enumerate(value):
        try:
            parse_allowed(entry)
        except ValueError as exc:
            errors.append(FieldError(f"{field}[{i}]", str(exc)))
    return errors


_policy = Policy()
_policy_lock = threading.Lock()


def get_policy() -> Policy:
    """The process' policy (nothing allowed besides public addresses, unless configured)."""
    return _policy


def set_policy(policy: Policy | Iterable[str]) -> Policy:
    """Make ``policy`` (or a list of ``allowedDestinations`` entries) the process' policy."""
    global _policy
    if not isinstance(policy, Policy):
        policy = Policy.from_entries(policy)
    with _policy_lock:
        previous, _policy = _policy, policy
    return previous


@contextlib.contextmanager
def policy_scope(entries: Iterable[str] | Policy, *, extend: bool = True) -> Iterator[Policy]:
    """Within the block, also allow ``entries`` (or exactly them, ``extend=False``)."""
    new = entries if isinstance(entries, Policy) else None
    if new is None:
        new = get_policy().with_entries(entries) if extend else Policy.from_entries(entries)
    previous = set_policy(new)
    try:
        yield new
    finally:
        set_policy(previous)


def allow(entry: str) -> Callable[[], None]:
    """Add one entry to the process' policy; returns a function that removes it again.

    For test helpers such as :class:`recfw.testing.s3server.S3Server`, which
    allow their own loopback endpoint while they run.
    """
    added = parse_allowed(entry)
    global _policy
    with _policy_lock:
        _policy = Policy(_policy.allowed + (added,))

    def remove() -> None:
        global _policy
        with _policy_lock:
            items = list(_policy.allowed)
            if added in items:
                items.remove(added)
            _policy = Policy(tuple(items))

    return remove


# --- resolving --------------------------------------------------------------

#: ``resolver(host, port) -> addresses``; the default asks the system (getaddrinfo).
Resolver = Callable[[str, int], Sequence[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, as the system resolver answers (``OSError`` if none)."""
    infos = socket.getaddrinfo(host, port or None, type=socket.SOCK_STREAM)
    out: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if sockaddr[0] not in out:
            out.append(sockaddr[0])
    return out


_resolver: Resolver = system_resolver


def get_resolver() -> Resolver:
    return _resolver


@contextlib.contextmanager
def resolver_scope(resolver: Resolver | Mapping[str, Sequence[str] | str]) -> Iterator[None]:
    """Within the block, resolve names with ``resolver`` (a function or a ``{name: addresses}``).

    A mapping resolves only its names (others raise ``socket.gaierror``) and is
    read at each lookup, so a test can change what a name resolves to.
    """
    global _resolver
    if isinstance(resolver, Mapping):
        table = resolver

        def lookup(host: str, port: int) -> list[str]:
            found = table.get(_normal_host(host))
            if found is None:
                ip = _ip_literal(host)
                if ip is not None:
                    return [str(ip)]
                raise socket.gaierror(socket.EAI_NONAME, f"{host} is not in the test hosts")
            return [found] if isinstance(found, str) else list(found)

        function: Resolver = lookup
    else:
        function = resolver
    previous, _resolver = _resolver, function
    try:
        yield
    finally:
        _resolver = previous


# --- checks -----------------------------------------------------------------


def _shown(host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{host}:{port}" if port else host


def _advice() -> str:
    return f"recfw does not connect there unless the config file's [server] {CONFIG_KEY} lists it"


def check_ip(
    ip: IPAddress | str,
    port: int | None = None,
    *,
    host: str | None = None,
    policy: Policy | None = None,
) -> None:
    """Raise :class:`DestinationRefused` unless ``ip`` is public or allow-listed."""
    policy = policy or get_policy()
    ip = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    why = refusal(ip)
    if why is None or policy.ip_allowed(ip, port):
        return
    subject = _shown(str(ip), port)
    if host and _ip_literal(host) is None:
        subject = f"{_shown(host, port)} resolves to {ip}, which"
    raise DestinationRefused(f"{subject} is {why}; {_advice()}")


def checked_addresses(
    host: str, port: int | None = None, *, policy: Policy | None = None
) -> list[str]:
    """Resolve ``host`` and return its addresses if recfw may connect to every one of them.

    Connect to one of the returned addresses (not to ``host`` again: a second
    lookup may answer differently). Raises :class:`DestinationRefused` naming
    the host, the address and why; ``OSError`` (``socket.gaierror``) if the
    name does not resolve.
    """
    policy = policy or get_policy()
    name = _normal_host(host)
    ip = _ip_literal(name)
    if ip is not None:
        check_ip(ip, port, policy=policy)
        return [str(ip)]
    if policy.name_allowed(name, port):
        return list(_resolver(name, port or 0))
    why = refused_name(name)
    if why is not None:
        raise DestinationRefused(f"{_shown(name, port)} is {why}; {_advice()}")
    addresses = list(_resolver(name, port or 0))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{name} has no address")
    for address in addresses:
        check_ip(address, port, host=name, policy=policy)
    return addresses


def url_host_port(url: str) -> tuple[str, int | None]:
    """The host and port an ``scheme://[user@]host[:port]/...`` URL connects to (``ValueError``)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ValueError("has no host")
    port = parts.port  # ValueError for a bad port
    if port is None:
        port = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21, "sftp": 22}.get(
            parts.scheme.lower()
        )
    return host, port


_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="recfw-netguard")


def url_errors(
    url: str | None, field: str, *, policy: Policy | None = None, resolve: bool = True
) -> list[FieldError]:
    """Validation: a :class:`FieldError` on ``field`` if ``url`` points where recfw may not go.

    IP literals, refused names and (with ``resolve``) what the name resolves to
    now are checked; a name that does not resolve (or not within
    :data:`VALIDATION_LOOKUP_TIMEOUT`) passes, since the connection is checked
    again when it is opened. URLs without a host (``memory://``) pass. The
    message never contains the URL's credentials.
    """
    if not url or "://" not in url:
        return []
    try:
        host, port = url_host_port(url)
    except ValueError:
        return []  # the sink's own validation reports malformed URLs
    policy = policy or get_policy()
    name = _normal_host(host)
    try:
        if _ip_literal(name) is not None or policy.name_allowed(name, port):
            checked_addresses(name, port, policy=policy)
        elif refused_name(name):
            checked_addresses(name, port, policy=policy)
        elif resolve:
            future = _lookups.submit(checked_addresses, name, port, policy=policy)
            try:
                future.result(timeout=VALIDATION_LOOKUP_TIMEOUT)
            except FutureTimeout:
                log.info("looking up %s took too long; it is checked when connecting", name)
    except DestinationRefused as exc:
        return [FieldError(field, exc.reason)]
    except (OSError, ValueError) as exc:  # UnicodeError for names no resolver takes
        log.info("cannot resolve %s now (%s); it is checked when connecting", name, exc)
    return []


def destination_errors(
    destination: Any, prefix: str, existing: Iterable[FieldError] = ()
) -> list[FieldError]:
    """Validation hook for a recording destination: its ``endpointUrl`` must be allowed.

    ``prefix`` is the destination's field name (``recording.destination``);
    nothing is added when ``existing`` already has an error on the field.
    """
    url = getattr(destination, "endpoint_url", None)
    field = f"{prefix}.endpointUrl"
    if not url or any(e.field == field for e in existing):
        return []
    return url_errors(url, field)


def check_url(url: str, *, policy: Policy | None = None) -> list[str]:
    """Connect-time check of ``url``: its checked addresses, or :class:`DestinationRefused`."""
    host, port = url_host_port(url)
    return checked_addresses(host, port, policy=policy)


def create_connection(
    address: tuple[str, int],
    timeout: float | None = None,
    source_address: tuple[str, int] | None = None,
    *,
    policy: Policy | None = None,
) -> socket.socket:
    """:func:`socket.create_connection`, to a checked address only.

    For blocking HTTP clients: ``http.client.HTTPConnection`` (and
    ``HTTPSConnection``, which still verifies the certificate against the
    host name) connect through their ``_create_connection`` attribute, so
    ``conn._create_connection = netguard.create_connection`` guards them.
    Raises :class:`DestinationRefused` before any connection is attempted.
    """
    host, port = address
    last: OSError | None = None
    for ip in checked_addresses(host, port, policy=policy):
        try:
            return socket.create_connection((ip, port), timeout, source_address)
        except OSError as exc:
            last = exc
    raise last or OSError(f"cannot connect to {_shown(host, port)}")


# --- aiohttp (aiobotocore / s3fs, webhook senders) --------------------------


class ConnectGuard:
    """Checks every connection an aiohttp connector opens, by name and by address.

    :class:`GuardedResolver` checks names (and pins the checked addresses);
    :meth:`socket_factory` checks the address each socket is opened to, which
    also covers IP-literal URLs (aiohttp skips the resolver for those).
    Addresses of an allow-listed name are remembered so the socket factory
    lets them through.
    """

    def __init__(self, policy: Policy | None = None):
        self._policy = policy
        self._granted: set[str] = set()
        self._lock = threading.Lock()

    @property
    def policy(self) -> Policy:
        return self._policy or get_policy()

    def addresses(self, host: str, port: int | None) -> list[str]:
        policy = self.policy
        addresses = checked_addresses(host, port, policy=policy)
        if _ip_literal(host) is None and policy.name_allowed(host, port):
            with self._lock:
                self._granted.update(str(ipaddress.ip_address(a)) for a in addresses)
        return addresses

    def socket_factory(self, addr_info: tuple[Any, ...]) -> socket.socket:
        """For aiohttp's ``socket_factory``: refuse, or open the socket for ``addr_info``."""
        family, type_, proto, _canon, sockaddr = addr_info
        address = str(sockaddr[0]).split("%", 1)[0]
        port = int(sockaddr[1])
        with self._lock:
            granted = address in self._granted
        if not granted:
            check_ip(address, port, policy=self.policy)
        return socket.socket(family=family, type=type_, proto=proto)


def _aiohttp_resolver_base() -> type:
    from aiohttp.abc import AbstractResolver

    return AbstractResolver


class GuardedResolver(_aiohttp_resolver_base()):  # type: ignore[misc]
    """An aiohttp resolver that resolves through :func:`checked_addresses` (in a thread)."""

    def __init__(self, guard: ConnectGuard | None = None):
        self.guard = guard or ConnectGuard()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        addresses = await loop.run_in_executor(None, self.guard.addresses, host, port or None)
        out = []
        for address in addresses:
            ip = ipaddress.ip_address(address)
            fam = socket.AF_INET if ip.version == 4 else socket.AF_INET6
            if family not in (socket.AF_UNSPEC, 0, fam):
                continue
            out.append(
                {
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": fam,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                }
            )
        if not out:
            raise OSError(f"{host} has no address of the wanted family")
        return out

    async def close(self) -> None:
        return None


def aiohttp_connector_args(policy: Policy | None = None) -> dict[str, Any]:
    """``resolver`` and ``socket_factory`` for an ``aiohttp.TCPConnector`` (or aiobotocore's
    ``AioConfig(connector_args=...)``) that only connects where the policy allows."""
    guard = ConnectGuard(policy)
    return {"resolver": GuardedResolver(guard), "socket_factory": guard.socket_factory}


def find_refusal(exc: BaseException | None) -> DestinationRefused | None:
    """The :class:`DestinationRefused` somewhere in ``exc``'s chain (causes, contexts,
    botocore's ``error`` keyword, aiohttp's ``os_error``), or ``None``."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc] if exc is not None else []
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, DestinationRefused):
            return e
        for nxt in (
            e.__cause__,
            e.__context__,
            getattr(e, "os_error", None),
            (getattr(e, "kwargs", None) or {}).get("error")
            if isinstance(getattr(e, "kwargs", None), dict)
            else None,
            *(getattr(e, "exceptions", ()) or ()),
        ):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return None


__all__ = [
    "Allowed",
    "ConnectGuard",
    "DestinationRefused",
    "GuardedResolver",
    "Policy",
    "aiohttp_connector_args",
    "allow",
    "allowed_errors",
    "check_ip",
    "check_url",
    "destination_errors",
    "checked_addresses",
    "create_connection",
    "find_refusal",
    "get_policy",
    "parse_allowed",
    "policy_scope",
    "refusal",
    "refused_name",
    "resolver_scope",
    "set_policy",
    "system_resolver",
    "url_errors",
]
