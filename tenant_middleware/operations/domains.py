"""A tenant's custom domains and its audit trail."""

from __future__ import annotations

from collections.abc import Sequence

from tenant_middleware.cache import TenantCache
from tenant_middleware.errors import TenantNotFound
from tenant_middleware.operations.tenants import TenantOperations
from tenant_middleware.registry import Registry, TenantEvent
from tenant_middleware.resolver import CacheKey
from tenant_middleware.validation import require_domain


class DomainOperations:
    """The domain and audit-trail operations of `Tenancy` (which starts the runtime first)."""

    def __init__(
        self, *, registry: Registry, cache: TenantCache[CacheKey], tenants: TenantOperations
    ) -> None:
        self._registry = registry
        self._cache = cache
        self._tenants = tenants

    async def add_domain(self, tenant_id_or_slug: str, domain: str) -> None:
        """Route requests for `domain` to the tenant (one tenant per domain)."""
        tenant = await self._tenants.get(tenant_id_or_slug)
        await self._registry.add_domain(tenant.id, require_domain(domain))
        self._cache.invalidate_negative()

    async def remove_domain(self, domain: str) -> None:
        """Stop routing `domain`; its tenant is unaffected otherwise. `TenantNotFound` when no
        tenant has it (a typo must not pass for a removal)."""
        domain = require_domain(domain)
        tenant_id = await self._registry.remove_domain(domain)
        if tenant_id is None:
            raise TenantNotFound(f"no tenant has the domain {domain!r}")
        self._cache.invalidate(tenant_id)

    async def domains(self, tenant_id_or_slug: str) -> Sequence[str]:
        """The tenant's custom domains."""
        tenant = await self._tenants.get(tenant_id_or_slug)
        return await self._registry.domains(tenant.id)

    async def events(
        self, tenant_id_or_slug: str, *, limit: int = 100, latest: bool = False
    ) -> Sequence[TenantEvent]:
        """The tenant's audit trail, oldest first: its first `limit` events, or with `latest`
        its last `limit`."""
        tenant = await self._tenants.get(tenant_id_or_slug)
        return await self._registry.events(tenant.id, limit=limit, latest=latest)
