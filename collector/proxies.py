"""Which address is the client's: the TCP peer, or what a trusted proxy says.

Used for one thing only: the key of the rate limit, which hashes it at once
(collector/ratelimit.py). The address is never stored, logged or passed on.

Behind a reverse proxy or CDN every request comes from the proxy, so all
visitors would share one rate-limit bucket. BINOME_TRUSTED_PROXY_HEADER names
the header the proxy sets. Anyone can send that header too, so only the part
the trusted proxies wrote is believed: X-Forwarded-For is appended to by each
proxy, so with N trusted proxies the client is the N-th entry from the right
(what the left-most entries say is whatever the client wrote). With
BINOME_TRUSTED_PROXIES, the header is read only when the peer itself is a
trusted proxy, and the client is the right-most entry outside those networks
(the rule of nginx's real_ip_recursive).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ClientAddress:
    def __init__(self, header: str = "", hops: int = 1, trusted_networks: str = "") -> None:
        self._header = header.strip().lower()
        self._hops = max(1, hops)
        self._networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(n.strip(), strict=False)
            for n in trusted_networks.split(",") if n.strip()
        )

    @property
    def enabled(self) -> bool:
        return bool(self._header)

    def resolve(self, peer: str, headers: Mapping[str, str]) -> str:
        """The client's address, as a string to hash."""
        if not self._header:
            return peer
        if self._networks and not self._trusted(peer):
            return peer  # a direct client: its header says whatever it likes
        value = headers.get(self._header)
        if not value:
            return peer
        entries = _entries(value, forwarded=self._header == "forwarded")
        if self._networks:
            for entry in reversed(entries):
                if not self._trusted(entry):
                    return entry
            return entries[0] if entries else peer
        if len(entries) < self._hops:
            # Fewer entries than trusted proxies: the request bypassed some of them.
            return peer
        return entries[-self._hops]

    def _trusted(self, address: str) -> bool:
        parsed = _parse(address)
        return parsed is not None and any(parsed in network for network in self._networks)


def _entries(value: str, *, forwarded: bool) -> list[str]:
    """The addresses of a header, left to right, normalised; junk kept as-is so
    that a forged entry still counts as one entry."""
    if forwarded:
        # RFC 7239: Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"
        raw = []
        for element in value.split(","):
            for pair in element.split(";"):
                name, _, token = pair.strip().partition("=")
                if name.strip().lower() == "for":
                    raw.append(token.strip().strip('"'))
    else:
        raw = [part.strip() for part in value.split(",")]
    return [_normalise(entry) for entry in raw if entry]


def _normalise(entry: str) -> str:
    host = entry
    if host.startswith("["):  # [2001:db8::1]:4711
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # 192.0.2.60:4711
        host = host.partition(":")[0]
    parsed = _parse(host)
    return str(parsed) if parsed is not None else entry


def _parse(address: str) -> _Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def untrusted_hops_problem(header: str, trusted_networks: str, host: str) -> str | None:
    """Why `binome serve` must not start, or None. Counting hops believes the
    header from whichever peer sends it: fine when only the proxy can connect (a
    loopback bind), a bypass of the rate limit for anyone who reaches a public
    bind directly (issue 20). BINOME_TRUSTED_PROXIES makes the peer be checked."""
    if not header.strip() or trusted_networks.strip() or is_loopback(host):
        return None
    return (f"BINOME_TRUSTED_PROXY_HEADER without BINOME_TRUSTED_PROXIES on {host}: any "
            "client reaching it could choose its rate-limit address; set "
            "BINOME_TRUSTED_PROXIES to the proxies' networks (CIDR) or bind a loopback address")


def is_loopback(host: str) -> bool:
    """An address or name that only this machine reaches: `localhost`, 127.0.0.0/8, ::1."""
    host = host.strip().lower()
    if host == "localhost":
        return True
    parsed = _parse(host.strip("[]"))
    return parsed is not None and parsed.is_loopback
