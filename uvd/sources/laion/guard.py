"""Which network destinations a LAION download may reach: public addresses only, by default.

LAION metadata is untrusted: on a cloud worker a URL naming a loopback, private or link-local
address (the instance metadata service at 169.254.169.254, internal hosts) would otherwise be
fetched like any other (server-side request forgery). The check runs where the connection is made,
after DNS resolution, for every connection a request opens (so for every redirect hop), and the
socket connects to the address that was checked (no second lookup a DNS rebinding could change).

`allow_private=True` (option `allow_private_addresses`) is for local test servers; `allowed_networks`
opens chosen CIDRs only (an internal mirror). The resolver is injectable so tests can check
private and link-local targets without sending a packet to them.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

Resolver = Callable[[str, int], list[str]]


class BlockedAddress(Exception):
    """A destination the policy refuses (not an OSError, so urllib3 and requests pass it through)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (IPv4 and IPv6), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class AddressGuard:
    CACHE_TTL_S = 300.0  # DNS answers reused for new connections to a host (we connect to the
    CACHE_SIZE = 4096  # checked address, so a cached answer cannot be rebound)

    def __init__(
        self, allow_private: bool = False, allowed_networks: Sequence[str] = (), resolver: Resolver | None = None
    ) -> None:
        self.allow_private = allow_private
        self.networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]
        self.resolver = resolver or system_resolver
        self._cache: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def blocked(self, address: str) -> bool:
        """True for any address that is not globally routable (loopback, RFC 1918, link-local...)."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if self.allow_private or any(ip in net for net in self.networks):
            return False
        return not ip.is_global or ip.is_multicast

    def resolve(self, host: str, port: int) -> str:
        """The address to connect to; BlockedAddress when any address of host is refused."""
        host = host.strip("[]")
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = self._lookup(host, port)
        if not addresses:
            raise socket.gaierror(f"no address for {host!r}")
        bad = [a for a in addresses if self.blocked(a)]
        if bad:
            raise BlockedAddress(
                f"{host} resolves to {bad[0]} (not a public address; allow_private_addresses allows it)"
            )
        return addresses[0]

    def _lookup(self, host: str, port: int) -> list[str]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get((host, port))
        if hit and hit[0] > now:
            return hit[1]
        addresses = self.resolver(host, port)
        with self._lock:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[(host, port)] = (now + self.CACHE_TTL_S, addresses)
        return addresses


def guarded_pool_classes(guard: AddressGuard) -> dict[str, type]:
    """urllib3 pool classes whose connections check `guard` before connecting."""

    class _Guarded:
        def _new_conn(self):  # type: ignore[no-untyped-def]
            host = self._dns_host  # type: ignore[attr-defined]
            self._dns_host = guard.resolve(host, self.port)  # type: ignore[attr-defined]
            try:
                return super()._new_conn()  # type: ignore[misc]
            finally:
                self._dns_host = host

    class GuardedHTTPConnection(_Guarded, HTTPConnection):
        pass

    class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
        pass

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}
