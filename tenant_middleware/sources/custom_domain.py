"""Identify the tenant from a custom domain (a host outside the base domains)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenant_middleware.models import TenantKey
from tenant_middleware.sources._hosts import HostSource

if TYPE_CHECKING:
    from collections.abc import Iterable


class CustomDomainSource(HostSource):
    """Map a host such as `shop.acme.com` to a `domain` key for the registry to resolve.

    Hosts that are a base domain or under one belong to the subdomain source. Single-label
    hosts (`localhost`, a container name) are never a tenant's public domain.
    """

    name = "custom_domain"

    def __init__(self, *, base_domains: Iterable[str], trusted_proxies: Iterable[str] = ()) -> None:
        super().__init__(base_domains=base_domains, trusted_proxies=trusted_proxies)

    def key_for_host(self, host: str) -> TenantKey | None:
        """Return the domain key of a custom domain, or None."""
        if "." not in host or host in self._bases or host.endswith(self._suffixes):
            return None
        return TenantKey("domain", host)
