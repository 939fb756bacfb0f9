"""The address that keys the rate limit (collector/proxies.py): the peer, or a proxy's header."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from collector.proxies import ClientAddress, untrusted_hops_problem


def test_off_by_default_the_peer_is_the_client() -> None:
    client = ClientAddress()
    assert not client.enabled
    assert client.resolve("192.0.2.1", {"x-forwarded-for": "198.51.100.7"}) == "192.0.2.1"


@pytest.mark.parametrize(
    ("header", "hops", "value", "client"),
    [
        ("X-Forwarded-For", 1, "198.51.100.7", "198.51.100.7"),
        # what the client wrote itself stays on the left, the proxy appends on the right
        ("X-Forwarded-For", 1, "203.0.113.9, 198.51.100.7", "198.51.100.7"),
        ("X-Forwarded-For", 2, "203.0.113.9, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
        # fewer entries than trusted hops: the request went around a proxy
        ("X-Forwarded-For", 2, "198.51.100.7", "192.0.2.1"),
        ("X-Forwarded-For", 1, "198.51.100.7:4711", "198.51.100.7"),
        ("X-Forwarded-For", 1, "[2001:db8::7]:4711", "2001:db8::7"),
        ("X-Forwarded-For", 1, "2001:DB8:0:0::7", "2001:db8::7"),
        ("X-Real-IP", 1, "198.51.100.7", "198.51.100.7"),
        ("CF-Connecting-IP", 1, "2001:db8::7", "2001:db8::7"),
        ("Forwarded", 1, 'for=203.0.113.9;proto=https, for="[2001:db8::7]:4711"', "2001:db8::7"),
        ("Forwarded", 1, "for=198.51.100.7;by=10.0.0.1", "198.51.100.7"),
    ],
)
def test_trusted_hops(header: str, hops: int, value: str, client: str) -> None:
    resolver = ClientAddress(header, hops)
    assert resolver.resolve("192.0.2.1", {header.lower(): value}) == client


def test_missing_header_falls_back_to_the_peer() -> None:
    resolver = ClientAddress("X-Forwarded-For")
    assert resolver.resolve("192.0.2.1", {}) == "192.0.2.1"
    assert resolver.resolve("192.0.2.1", {"x-forwarded-for": ""}) == "192.0.2.1"


def test_trusted_networks() -> None:
    resolver = ClientAddress("X-Forwarded-For", trusted_networks="10.0.0.0/8, 192.0.2.0/24")
    headers = {"x-forwarded-for": "203.0.113.9, 198.51.100.7, 10.1.2.3"}
    # from a trusted proxy: the right-most address outside the trusted networks
    assert resolver.resolve("192.0.2.1", headers) == "198.51.100.7"
    # from anyone else, the header is the client's own word: ignored
    assert resolver.resolve("203.0.113.50", headers) == "203.0.113.50"
    # every entry trusted: the left-most
    assert resolver.resolve("10.0.0.1", {"x-forwarded-for": "10.9.9.9, 10.1.1.1"}) == "10.9.9.9"


def test_a_forged_entry_is_never_the_client_with_one_trusted_hop() -> None:
    resolver = ClientAddress("X-Forwarded-For", 1)
    keys = {resolver.resolve("192.0.2.1", {"x-forwarded-for": f"{i}.{i}.{i}.{i}, 198.51.100.7"})
            for i in range(1, 50)}
    assert keys == {"198.51.100.7"}


@pytest.mark.parametrize(
    ("header", "networks", "host", "refused"),
    [
        ("X-Forwarded-For", "", "0.0.0.0", True),
        ("X-Forwarded-For", "", "::", True),
        ("X-Forwarded-For", "", "192.0.2.10", True),
        ("X-Forwarded-For", "", "127.0.0.1", False),  # only a local proxy can connect
        ("X-Forwarded-For", "", "::1", False),
        ("X-Forwarded-For", "", "localhost", False),
        ("X-Forwarded-For", "172.30.0.0/24", "0.0.0.0", False),  # the peer is checked
        ("", "", "0.0.0.0", False),  # the header is not read at all
    ],
)
def test_hops_mode_needs_a_loopback_bind_or_trusted_proxies(
        header: str, networks: str, host: str, refused: bool) -> None:
    assert (untrusted_hops_problem(header, networks, host) is not None) is refused


def test_serve_refuses_hops_mode_on_a_public_bind() -> None:
    env = {**os.environ, "BINOME_TRUSTED_PROXY_HEADER": "X-Forwarded-For",
           "BINOME_TRUSTED_PROXY_HOPS": "1", "BINOME_TRUSTED_PROXIES": "",
           "BINOME_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = subprocess.run([sys.executable, "-m", "collector.cli", "serve", "--host", "0.0.0.0"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "BINOME_TRUSTED_PROXIES" in result.stderr
