"""The host a request is addressed to, which peers may forward one, and host-based sources."""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TypeVar

from tenant_middleware._types import Scope
from tenant_middleware.errors import AmbiguousTenant, ConfigError
from tenant_middleware.models import TenantKey
from tenant_middleware.validation import host_from_header, normalize_domain

# Hosts and peers repeat across requests, so parsed results are memoised in plain dicts (a
# dict hit costs a fraction of an lru_cache call); the bound keeps a flood of random Host
# headers from growing memory. Longer raw values are malformed anyway and never memoised.
CACHE_SIZE = 1024
_MAX_RAW_HOST = 1100
K = TypeVar("K")
V = TypeVar("V")


def raw_header(scope: Scope, name: bytes) -> bytes | None:
    """Return the first raw value of header `name` (lower-case), or None.

    ASGI servers send lower-case header names (Starlette's own `Headers` relies on it), so
    names are compared as they are, without a per-header `lower()`.
    """
    for key, value in scope.get("headers", ()):
        if key == name:
            return value if type(value) is bytes else bytes(value)
    return None


def only_header(scope: Scope, name: bytes) -> bytes | None:
    """Return the raw value of header `name` (lower-case), or None; `AmbiguousTenant` when
    the request sends it twice: which one a proxy or the app would read is anyone's guess, so
    neither is believed."""
    found: bytes | None = None
    for key, value in scope.get("headers", ()):
        if key == name:
            if found is not None:
                raise AmbiguousTenant("the request repeats a header that names its tenant")
            found = value if type(value) is bytes else bytes(value)
    return found


class TrustedProxies:
    """Peers whose forwarding headers are believed, parsed once from CIDR strings."""

    def __init__(self, cidrs: Iterable[str] = (), *, setting: str = "trusted_proxies") -> None:
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for cidr in (cidrs,) if isinstance(cidrs, str) else cidrs:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(setting, f"{cidr!r} is not an IP network") from exc
        self.networks = tuple(networks)
        self._memo: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def contains(self, scope: Scope) -> bool:
        """Whether the peer of this connection (`scope["client"]`) is a trusted proxy."""
        if not self.networks:
            return False
        client = scope.get("client")
        if not client:
            return False
        peer = client[0]
        try:
            return self._memo[peer]
        except KeyError:
            trusted = self._check(peer)
        remember(self._memo, peer, trusted)
        return trusted

    def _check(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except (ValueError, TypeError):  # a unix socket path or a test client name
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers this way
        return any(address.version == net.version and address in net for net in self.networks)


def parse_host(raw: bytes) -> str | None:
    """Return a raw Host value as a normalised domain, or None (see `host_from_header`)."""
    if len(raw) > _MAX_RAW_HOST:
        return None
    try:
        # UTF-8, not latin-1: a raw internationalised name must map to its own IDNA form.
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return host_from_header(text)


def _proxied_host(scope: Scope) -> bytes | None:
    """Return the raw host a trusted proxy forwarded, else the `Host` header (one pass)."""
    host: bytes | None = None
    forwarded: bytes | None = None
    for key, value in scope.get("headers", ()):
        if key == b"x-forwarded-host":
            # The first (left-most) value is what the client sent to the outermost proxy.
            return bytes(value).split(b",", 1)[0].strip()
        if key == b"host" and host is None:
            host = bytes(value)
        elif key == b"forwarded" and forwarded is None:
            forwarded = bytes(value)
    if forwarded is not None:
        for pair in forwarded.split(b",", 1)[0].split(b";"):
            name, sep, value = pair.partition(b"=")
            if sep and name.strip().lower() == b"host":
                value = value.strip()
                if len(value) >= 2 and value[:1] == value[-1:] == b'"':
                    return value[1:-1]
                return value
    return host


def raw_host(scope: Scope, proxies: TrustedProxies) -> bytes | None:
    """Return the raw host of the request: `Host`, or what a trusted proxy forwarded.

    `X-Forwarded-Host` (first value) or `Forwarded: host=` count only from a trusted proxy
    and take precedence there; from any other peer they are ignored.
    """
    if proxies.networks and proxies.contains(scope):
        return _proxied_host(scope)
    return raw_header(scope, b"host")


def remember(memo: dict[K, V], key: K, value: V, limit: int = CACHE_SIZE) -> None:
    """Store `key` in a memo of at most `limit` entries, dropping the oldest when it is full."""
    if len(memo) >= limit:
        memo.pop(next(iter(memo)), None)  # oldest first: bounded, no LRU bookkeeping per hit
    memo[key] = value


def base_domain_suffixes(domains: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Validate base domains; return them and their `.suffix` forms, longest first.

    Longest first, so a host under `app.example.co.uk` matches it before `example.co.uk`.
    """
    normalized = []
    for domain in (domains,) if isinstance(domains, str) else domains:
        value = normalize_domain(domain)
        if value is None:
            raise ConfigError("base_domains", f"{domain!r} is not a valid domain")
        normalized.append(value)
    if not normalized:
        raise ConfigError("base_domains", "at least one base domain is needed")
    suffixes = sorted({"." + value for value in normalized}, key=len, reverse=True)
    return frozenset(normalized), tuple(suffixes)


class HostSource(ABC):
    """Base of the sources that read the request's host; memoises raw host -> key."""

    name: str

    def __init__(self, *, base_domains: Iterable[str], trusted_proxies: Iterable[str] = ()) -> None:
        self._bases, self._suffixes = base_domain_suffixes(base_domains)
        self._proxies = TrustedProxies(trusted_proxies)
        self._proxied = bool(self._proxies)  # read per request: one attribute, not two
        self._memo: dict[bytes, TenantKey | None] = {}

    async def identify(self, scope: Scope) -> TenantKey | None:
        """Return the key the request's host names, or None."""
        return self.identify_now(scope)

    def identify_now(self, scope: Scope) -> TenantKey | None:
        """`identify` without a coroutine (see `ImmediateSource`)."""
        if self._proxied and self._proxies.contains(scope):
            raw = _proxied_host(scope)
        else:
            # `raw_header(scope, b"host")`, inlined: this runs on every request.
            raw = None
            for name, value in scope.get("headers", ()):
                if name == b"host":
                    raw = value if type(value) is bytes else bytes(value)
                    break
        if raw is None:
            return None
        try:
            return self._memo[raw]
        except KeyError:
            host = parse_host(raw)
        key = None if host is None else self.key_for_host(host)
        if len(raw) <= _MAX_RAW_HOST:
            remember(self._memo, raw, key)
        return key

    @abstractmethod
    def key_for_host(self, host: str) -> TenantKey | None:
        """Return the key a normalised host names, or None."""
