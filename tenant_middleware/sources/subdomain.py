"""Identify the tenant from the first label of a host under a base domain."""

from __future__ import annotations

from collections.abc import Iterable

from tenant_middleware.errors import ConfigError
from tenant_middleware.models import TenantKey
from tenant_middleware.sources._hosts import HostSource
from tenant_middleware.validation import normalize_slug


class SubdomainSource(HostSource):
    """Map `acme.example.com` to the slug `acme` when `example.com` is a base domain.

    Only one label counts: `a.b.example.com` names no tenant, nor do the base domain itself,
    reserved labels (`www`, `api`, ...), IP literals or malformed hosts. With several base
    domains the longest one a host ends with decides.
    """

    name = "subdomain"

    def __init__(
        self,
        *,
        base_domains: Iterable[str],
        reserved: Iterable[str] = ("www", "api", "admin"),
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        super().__init__(base_domains=base_domains, trusted_proxies=trusted_proxies)
        labels = set()
        for label in (reserved,) if isinstance(reserved, str) else reserved:
            value = normalize_slug(label)
            if value is None:
                raise ConfigError("reserved", f"{label!r} is not a DNS label")
            labels.add(value)
        self._reserved = frozenset(labels)

    def key_for_host(self, host: str) -> TenantKey | None:
        """Return the slug key of a tenant subdomain, or None."""
        if host in self._bases:
            return None
        for suffix in self._suffixes:
            if host.endswith(suffix):
                label = host[: -len(suffix)]
                if "." in label or label in self._reserved:
                    return None
                return TenantKey("slug", label)
        return None
