"""Identify the tenant from a custom domain (a host outside the base domains)."""

from __future__ import annotations

from tenant_middleware.models import TenantKey
from tenant_middleware.sources._hosts import HostSource


class CustomDomainSource(HostSource):
    """Map a host such as `shop.acme.com` to a `domain` key for the registry to resolve.

    Hosts that are a base domain or under one belong to the subdomain source. Single-label
    hosts (`localhost`, a container name) are never a tenant's public domain.
    """

    name = "custom_domain"

    def key_for_host(self, host: str) -> TenantKey | None:
        """Return the domain key of a custom domain, or None."""
        if "." not in host or host in self._bases or host.endswith(self._suffixes):
            return None
        return TenantKey("domain", host)
