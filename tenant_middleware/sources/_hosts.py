"""The host a request is addressed to, and which peers may tell us a forwarded one."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tenant_middleware.errors import ConfigError
from tenant_middleware.validation import host_from_header, normalize_domain

if TYPE_CHECKING:
    from tenant_middleware._types import Scope

# Hosts repeat across requests, so parsed results are memoised; the bound keeps a flood of
# random Host headers from growing memory.
CACHE_SIZE = 1024


def raw_header(scope: Scope, name: bytes) -> bytes | None:
    """Return the first raw value of header `name` (lower-case), or None.

    ASGI servers send lower-case header names (Starlette's own `Headers` relies on it), so
    the names are compared as they are, without a per-header `lower()`.
    """
    for key, value in scope.get("headers", ()):
        if key == name:
            return value if type(value) is bytes else bytes(value)
    return None


class TrustedProxies:
    """Peers whose forwarding headers are believed, parsed once from CIDR strings."""

    def __init__(self, cidrs: Iterable[str] = (), *, setting: str = "trusted_proxies") -> None:
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for cidr in cidrs:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(setting, f"{cidr!r} is not an IP network") from exc
        self.networks = tuple(networks)
        self._peer_trusted = functools.lru_cache(maxsize=CACHE_SIZE)(self._check)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def contains(self, scope: Scope) -> bool:
        """Whether the peer of this connection (`scope["client"]`) is a trusted proxy."""
        if not self.networks:
            return False
        client = scope.get("client")
        if not client:
            return False
        return self._peer_trusted(client[0])

    def _check(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:  # a unix socket path or a test client name: never a proxy
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(
            address.version == net.version and address in net for net in self.networks
        )


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parse_host(raw: bytes) -> str | None:
    try:
        # UTF-8, not latin-1: a raw internationalised name must map to its own IDNA form.
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return host_from_header(text)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parse_forwarded(element: bytes) -> str | None:
    """Return the `host=` of one `Forwarded` element ("" if invalid), None if it has none."""
    for pair in element.split(b";"):
        name, sep, value = pair.partition(b"=")
        if sep and name.strip().lower() == b"host":
            value = value.strip()
            if len(value) >= 2 and value[:1] == value[-1:] == b'"':
                value = value[1:-1]
            return _parse_host(value) or ""
    return None


def _forwarded_host(scope: Scope) -> str | None:
    """Return the host a trusted proxy forwarded ("" if invalid), None if it sent none."""
    forwarded_host: bytes | None = None
    forwarded: bytes | None = None
    for key, value in scope.get("headers", ()):
        if key == b"x-forwarded-host" and forwarded_host is None:
            forwarded_host = bytes(value)
        elif key == b"forwarded" and forwarded is None:
            forwarded = bytes(value)
    # The first (left-most) value is the one the client sent to the outermost proxy.
    if forwarded_host is not None:
        return _parse_host(forwarded_host.split(b",", 1)[0].strip()) or ""
    if forwarded is not None:
        return _parse_forwarded(forwarded.split(b",", 1)[0])
    return None


def request_host(scope: Scope, proxies: TrustedProxies) -> str | None:
    """Return the normalised host of the request, or None if it is not a DNS name.

    The `Host` header, unless the peer is a trusted proxy that sent `X-Forwarded-Host`
    (first value) or `Forwarded: host=`; those headers from any other peer are ignored.
    """
    if proxies.networks and proxies.contains(scope):
        forwarded = _forwarded_host(scope)
        if forwarded is not None:
            return forwarded or None
    raw = raw_header(scope, b"host")
    if raw is None:
        return None
    return _parse_host(raw)


def base_domain_suffixes(domains: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Validate base domains; return them and their `.suffix` forms, longest first.

    Longest first, so a host under `app.example.co.uk` matches it before `example.co.uk`.
    """
    if isinstance(domains, str):
        domains = (domains,)
    normalized = []
    for domain in domains:
        value = normalize_domain(domain)
        if value is None:
            raise ConfigError("base_domains", f"{domain!r} is not a valid domain")
        normalized.append(value)
    if not normalized:
        raise ConfigError("base_domains", "at least one base domain is needed")
    suffixes = sorted({"." + value for value in normalized}, key=len, reverse=True)
    return frozenset(normalized), tuple(suffixes)
