"""Identify the tenant from the first label of a host under a base domain."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tenant_middleware.errors import ConfigError
from tenant_middleware.models import TenantKey
from tenant_middleware.sources._hosts import (
    CACHE_SIZE,
    TrustedProxies,
    base_domain_suffixes,
    request_host,
)
from tenant_middleware.validation import normalize_slug

if TYPE_CHECKING:
    from tenant_middleware._types import Scope


class SubdomainSource:
    """Map `acme.example.com` to the slug `acme` when `example.com` is a base domain.

    Only one label counts: `a.b.example.com` names no tenant, nor do the base domain itself,
    reserved labels (`www`, `api`, ...), IP literals or malformed hosts.
    """

    name = "subdomain"

    def __init__(
        self,
        *,
        base_domains: Iterable[str],
        reserved: Iterable[str] = ("www", "api", "admin"),
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        self._bases, self._suffixes = base_domain_suffixes(base_domains)
        labels = set()
        for label in (reserved,) if isinstance(reserved, str) else reserved:
            value = normalize_slug(label)
            if value is None:
                raise ConfigError("reserved", f"{label!r} is not a DNS label")
            labels.add(value)
        self._reserved = frozenset(labels)
        self._proxies = TrustedProxies(trusted_proxies)
        self._key_for_host = functools.lru_cache(maxsize=CACHE_SIZE)(self._key)

    async def identify(self, scope: Scope) -> TenantKey | None:
        """Return the slug key of a tenant subdomain, or None."""
        host = request_host(scope, self._proxies)
        if host is None:
            return None
        return self._key_for_host(host)

    def _key(self, host: str) -> TenantKey | None:
        if host in self._bases:
            return None
        for suffix in self._suffixes:
            if host.endswith(suffix):
                label = host[: -len(suffix)]
                if "." in label or label in self._reserved:
                    return None
                return TenantKey("slug", label)
        return None
