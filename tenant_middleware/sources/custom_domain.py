"""Identify the tenant from a custom domain (a host outside the base domains)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tenant_middleware.models import TenantKey
from tenant_middleware.sources._hosts import (
    CACHE_SIZE,
    TrustedProxies,
    base_domain_suffixes,
    request_host,
)

if TYPE_CHECKING:
    from tenant_middleware._types import Scope


class CustomDomainSource:
    """Map a host such as `shop.acme.com` to a `domain` key for the registry to resolve.

    Hosts that are a base domain or under one belong to the subdomain source. Single-label
    hosts (`localhost`, a container name) are never a tenant's public domain.
    """

    name = "custom_domain"

    def __init__(
        self, *, base_domains: Iterable[str], trusted_proxies: Iterable[str] = ()
    ) -> None:
        self._bases, self._suffixes = base_domain_suffixes(base_domains)
        self._proxies = TrustedProxies(trusted_proxies)
        self._key_for_host = functools.lru_cache(maxsize=CACHE_SIZE)(self._key)

    async def identify(self, scope: Scope) -> TenantKey | None:
        """Return the domain key of a custom domain, or None."""
        host = request_host(scope, self._proxies)
        if host is None:
            return None
        return self._key_for_host(host)

    def _key(self, host: str) -> TenantKey | None:
        if "." not in host or host in self._bases or host.endswith(self._suffixes):
            return None
        return TenantKey("domain", host)
