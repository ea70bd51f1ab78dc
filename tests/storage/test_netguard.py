"""The network guard: which addresses recfw connects to, the allow-list, validation errors."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from recfw import netguard
from recfw.config import parse_config
from recfw.errors import FieldError, SettingsError
from recfw.netguard import (
    DestinationRefused,
    Policy,
    checked_addresses,
    parse_allowed,
    policy_scope,
    refusal,
    resolver_scope,
    url_errors,
)
from recfw.secrets import Secret
from recfw.settings import Destination as Dest
from recfw.settings import RecordingSettings, validate

# Ranges recfw must never reach unless allow-listed, with the word the refusal uses.
REFUSED = [
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("0.0.0.0/8", "unspecified"),
    ("::/128", "unspecified"),
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "private"),
    ("fc00::/7", "private"),
    ("224.0.0.0/4", "multicast"),
    ("ff00::/8", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("192.0.2.0/24", "reserved"),
    ("198.18.0.0/15", "reserved"),
    ("2001:db8::/32", "reserved"),
]
METADATA = ["169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"]
# Public ranges object storage lives in (AWS S3 us-east-1, Cloudflare, Google).
PUBLIC = ["52.216.0.0/15", "3.5.0.0/19", "104.16.0.0/13", "2600:1f18::/33", "2606:4700::/32"]


@st.composite
def address_in(draw, cidr: str):
    net = ipaddress.ip_network(cidr)
    offset = draw(st.integers(0, net.num_addresses - 1))
    return net.network_address + offset


@st.composite
def refused_address(draw):
    cidr, word = draw(st.sampled_from(REFUSED))
    ip = draw(address_in(cidr))
    if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:0:0/96 sits inside ::/8
        word = None
    return ip, word


@given(refused_address())
def test_refused_ranges_are_refused_and_named(pair):
    ip, word = pair
    why = refusal(ip)
    assert why is not None
    if word and str(ip) not in METADATA:
        assert word in why
    with pytest.raises(DestinationRefused, match=word or "address"):
        checked_addresses(str(ip), 443, policy=Policy())


@given(st.sampled_from(PUBLIC).flatmap(address_in))
def test_public_storage_addresses_are_allowed(ip):
    assert refusal(ip) is None
    assert checked_addresses(str(ip), 443, policy=Policy()) == [str(ip)]


@given(st.integers(0, 2**32 - 1))
def test_ipv4_inside_ipv6_gets_the_ipv4_verdict(n):
    v4 = ipaddress.IPv4Address(n)
    expected = refusal(v4) is None
    for v6 in (
        ipaddress.IPv6Address(f"::ffff:{v4}"),  # IPv4-mapped
        ipaddress.IPv6Address((0x0064FF9B << 96) | n),  # NAT64
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80)),  # 6to4
    ):
        assert (refusal(v6) is None) == expected, (v4, v6)


@pytest.mark.parametrize("ip", METADATA)
def test_metadata_addresses(ip):
    assert "metadata" in refusal(ip)


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST.",
        "db.localhost",
        "metadata.google.internal",
        "metadata.google.internal.",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data.ec2.internal",
    ],
)
def test_refused_names_whatever_they_resolve_to(host):
    with resolver_scope({host.lower().rstrip("."): "8.8.8.8"}):
        with pytest.raises(DestinationRefused):
            checked_addresses(host, 80, policy=Policy())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000",
        "http://[::1]:9000/",
        "http://0.0.0.0",
        "http://[::]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://localhost:9000",
        "http://10.1.2.3",
        "http://100.64.0.1",
        "http://user:pw-secret@192.168.1.1/",
    ],
)
def test_validation_names_the_field(url):
    errors = url_errors(url, "recording.destination.endpointUrl", policy=Policy())
    assert [e.field for e in errors] == ["recording.destination.endpointUrl"]
    assert "allowedDestinations" in errors[0].message
    assert "pw-secret" not in errors[0].message


def test_numeric_host_spellings_are_resolved_before_the_check():
    # getaddrinfo reads these as 127.0.0.1 (no DNS involved).
    with resolver_scope(netguard.system_resolver):
        for url in ("http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/"):
            [error] = url_errors(url, "f", policy=Policy())
            assert "127.0.0.1" in error.message and "loopback" in error.message


def test_a_name_is_checked_by_every_address_it_resolves_to():
    with resolver_scope({"s3.example.test": ["52.216.8.8", "10.0.0.7"]}):
        with pytest.raises(DestinationRefused, match=r"s3\.example\.test.*10\.0\.0\.7.*private"):
            checked_addresses("s3.example.test", 443, policy=Policy())
    with resolver_scope({"s3.example.test": ["52.216.8.8"]}):
        assert checked_addresses("s3.example.test", 443, policy=Policy()) == ["52.216.8.8"]


def test_an_unresolvable_name_passes_validation_and_fails_at_connect_time():
    with resolver_scope({}):
        assert url_errors("https://nowhere.example.test/", "f", policy=Policy()) == []
        with pytest.raises(socket.gaierror):
            checked_addresses("nowhere.example.test", 443, policy=Policy())


# --- the allow-list -------------------------------------------------------------


@given(refused_address(), st.integers(1, 65535))
def test_an_allow_listed_network_opens_exactly_itself(pair, port):
    ip, _ = pair
    net = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 120}", strict=False)
    policy = Policy.from_entries([str(net)])
    assert checked_addresses(str(ip), port, policy=policy) == [str(ip)]
    for n in (int(net.network_address) - 1, int(net.broadcast_address) + 1):
        if 0 <= n < 2**ip.max_prefixlen:
            neighbour = type(ip)(n)
            if refusal(neighbour) is not None:
                with pytest.raises(DestinationRefused):
                    checked_addresses(str(neighbour), port, policy=policy)


def test_allow_entries_with_ports_and_names():
    policy = Policy.from_entries(
        ["127.0.0.1:9000", "[::1]:9001", "minio.internal", "*.storage.corp:9443"]
    )
    assert checked_addresses("127.0.0.1", 9000, policy=policy)
    with pytest.raises(DestinationRefused):
        checked_addresses("127.0.0.1", 9002, policy=policy)
    assert checked_addresses("::1", 9001, policy=policy)
    with resolver_scope({"minio.internal": "10.1.1.1", "eu.storage.corp": "10.2.2.2"}):
        assert checked_addresses("minio.internal", 80, policy=policy) == ["10.1.1.1"]
        assert checked_addresses("eu.storage.corp", 9443, policy=policy) == ["10.2.2.2"]
        with pytest.raises(DestinationRefused):
            checked_addresses("eu.storage.corp", 443, policy=policy)


@pytest.mark.parametrize(
    "entry",
    ["", "http://10.0.0.1", "10.0.0.1/8", "10.0.0.0/33", "host:0", "host:99999", "a b", "[::1"],
)
def test_bad_allow_entries_are_refused(entry):
    with pytest.raises(ValueError):
        parse_allowed(entry)


def test_config_file_allowed_destinations_errors_name_the_entry():
    with pytest.raises(SettingsError) as exc_info:
        parse_config({"server": {"allowedDestinations": ["10.0.0.0/8", "http://x"]}}, environ={})
    assert [e.field for e in exc_info.value.errors] == ["server.allowedDestinations[1]"]
    config = parse_config({"server": {"allowedDestinations": ["10.0.0.0/8"]}}, environ={})
    assert config.server.allowed_destinations == ("10.0.0.0/8",)


def _cloud(endpoint: str) -> RecordingSettings:
    return RecordingSettings(
        type="cloud",
        destination=Dest(
            provider="s3",
            bucket="acme-rec",
            access_key_id="AKIAEXAMPLE000000000",
            access_key_secret=Secret("sekret-value-1234"),
            file_format="mkv",
            endpoint_url=endpoint,
        ),
        start_trigger="automatic",
        max_duration=60.0,
    )


def test_settings_validation_hooks_the_guard(builtin_plugins):
    with policy_scope([], extend=False):
        errors = validate(_cloud("http://169.254.169.254"), builtin_plugins)
        assert [e.field for e in errors] == ["recording.destination.endpointUrl"]
        assert isinstance(errors[0], FieldError)
    with policy_scope(["169.254.169.254"], extend=False):
        assert validate(_cloud("http://169.254.169.254"), builtin_plugins) == []
    with policy_scope([], extend=False), resolver_scope({"s3.example.test": "52.216.1.2"}):
        assert validate(_cloud("https://s3.example.test"), builtin_plugins) == []


def test_fsspec_urls_with_a_host_are_checked(builtin_plugins):
    settings = RecordingSettings(
        type="cloud",
        destination=Dest(provider="fsspec", bucket="ftp://10.0.0.5/rec", file_format="mkv"),
        start_trigger="automatic",
        max_duration=60.0,
    )
    with policy_scope([], extend=False):
        errors = validate(settings, builtin_plugins)
    assert [e.field for e in errors] == ["recording.destination.bucket"]
    assert "private" in errors[0].message
    memory = RecordingSettings(
        type="cloud",
        destination=Dest(provider="fsspec", bucket="memory://rec", file_format="mkv"),
        start_trigger="automatic",
        max_duration=60.0,
    )
    with policy_scope([], extend=False):
        assert validate(memory, builtin_plugins) == []
