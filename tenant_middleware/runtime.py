"""`Tenancy`: the runtime that owns the registry, the context cache and the sources.

Apps hand it to `TenancyMiddleware`; operators call its methods from Python or the CLI.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from tenant_middleware.cache import CacheStats, TenantCache
from tenant_middleware.config import TenancyConfig
from tenant_middleware.errors import TenantNotFound
from tenant_middleware.lifecycle import check_transition
from tenant_middleware.models import TenantContext, TenantKey, TenantStatus
from tenant_middleware.registry import Registry, SQLRegistry, TenantEvent
from tenant_middleware.resolver import CacheKey, Resolver
from tenant_middleware.sources import build_sources
from tenant_middleware.sources.base import TenantSource
from tenant_middleware.validation import (
    new_tenant_id,
    normalize_tenant_id,
    require_domain,
    require_slug,
)

logger = logging.getLogger("tenant_middleware")


@dataclass(frozen=True, slots=True)
class TenancyStats:
    """A snapshot of the runtime's counters."""

    started: bool
    cache: CacheStats


class Tenancy:
    """The multi-tenancy runtime. Use `async with Tenancy(config)` or `start()`/`aclose()`."""

    def __init__(
        self,
        config: TenancyConfig | None = None,
        *,
        registry: Registry | None = None,
        sources: Sequence[TenantSource] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config if config is not None else TenancyConfig()
        self.registry: Registry = registry or SQLRegistry(
            self.config.control_plane_location, busy_timeout=self.config.busy_timeout
        )
        self.sources: tuple[TenantSource, ...] = (
            tuple(sources) if sources is not None else build_sources(self.config)
        )
        cache_options: dict[str, Any] = {"clock": clock} if clock is not None else {}
        self.cache: TenantCache[CacheKey] = TenantCache(
            self._load,
            ttl=self.config.cache_ttl,
            negative_ttl=self.config.negative_cache_ttl,
            max_entries=self.config.cache_max_entries,
            **cache_options,
        )
        self.resolver = Resolver(
            self.sources,
            self.cache,
            tenant_required=self.config.tenant_required,
            retry_after=self.config.retry_after,
        )
        self._started = False
        self._start_lock = asyncio.Lock()

    # -- lifecycle of the runtime ---------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether `start()` has completed and `aclose()` has not run since."""
        return self._started

    async def start(self) -> None:
        """Open the control plane (applying its migrations); idempotent and single-flight."""
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                await self.registry.start()
                self._started = True

    async def aclose(self) -> None:
        """Close sources and the control plane; idempotent."""
        async with self._start_lock:
            for source in self.sources:
                close = getattr(source, "aclose", None)
                if close is not None:
                    await close()
            await self.registry.close()
            self.cache.clear()
            self._started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _load(self, key: CacheKey) -> TenantContext | None:
        source, tenant_key = key
        tenant = await self.registry.lookup(tenant_key)
        return tenant.with_source(source) if tenant is not None else None

    # -- operator API ---------------------------------------------------------------------
    async def provision(
        self,
        slug: str,
        *,
        name: str = "",
        plan: str | None = None,
        region: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TenantContext:
        """Register a new tenant with a fresh UUID and make it reachable at once."""
        await self.start()
        tenant = await self.registry.create(
            tenant_id=new_tenant_id(),
            slug=require_slug(slug),
            name=name,
            status=TenantStatus.ACTIVE,
            plan=plan,
            region=region,
            metadata=metadata,
        )
        # The slug may sit in the negative cache from a request made before it existed.
        self.cache.invalidate_negative()
        logger.info("tenant provisioned", extra={"tenant_id": tenant.id})
        return tenant

    async def get(self, tenant_id_or_slug: str) -> TenantContext:
        """Return a tenant by id or slug, fresh from the control plane; `TenantNotFound`."""
        await self.start()
        tenant_id = normalize_tenant_id(tenant_id_or_slug)
        key = (
            TenantKey("id", tenant_id)
            if tenant_id is not None
            else TenantKey("slug", require_slug(tenant_id_or_slug))
        )
        tenant = await self.registry.lookup(key)
        if tenant is None:
            raise TenantNotFound(f"no tenant {tenant_id_or_slug[:80]!r}")
        return tenant

    async def list(
        self,
        *,
        status: TenantStatus | None = None,
        plan: str | None = None,
        limit: int = 100,
        after_slug: str | None = None,
    ) -> Sequence[TenantContext]:
        """List tenants ordered by slug; page with `after_slug`."""
        await self.start()
        return await self.registry.list(
            status=status, plan=plan, limit=limit, after_slug=after_slug
        )

    async def suspend(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Refuse the tenant's requests with 403 until `restore()`."""
        return await self._transition(tenant_id_or_slug, TenantStatus.SUSPENDED, reason)

    async def archive(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Keep the tenant's data but refuse its requests with 410 until `restore()`."""
        return await self._transition(tenant_id_or_slug, TenantStatus.ARCHIVED, reason)

    async def restore(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Make a suspended or archived tenant active again."""
        return await self._transition(tenant_id_or_slug, TenantStatus.ACTIVE, reason)

    async def delete(self, tenant_id_or_slug: str, *, destroy_data: bool = False) -> None:
        """Archive the tenant; with `destroy_data=True` remove its control-plane record."""
        tenant = await self.get(tenant_id_or_slug)
        if not destroy_data:
            if tenant.status is not TenantStatus.ARCHIVED:
                await self._transition(tenant.id, TenantStatus.ARCHIVED, "deleted")
            return
        await self.registry.delete(tenant.id)
        self.invalidate(tenant.id)
        logger.info("tenant deleted", extra={"tenant_id": tenant.id})

    async def _transition(
        self, tenant_id_or_slug: str, target: TenantStatus, reason: str | None
    ) -> TenantContext:
        tenant = await self.get(tenant_id_or_slug)
        check_transition(tenant.status, target)
        updated = await self.registry.set_status(tenant.id, target, reason=reason)
        self.invalidate(tenant.id)
        logger.info(
            "tenant status changed",
            extra={"tenant_id": tenant.id, "status": target.value},
        )
        return updated

    async def add_domain(self, tenant_id_or_slug: str, domain: str) -> None:
        """Route requests for `domain` to the tenant (one tenant per domain)."""
        tenant = await self.get(tenant_id_or_slug)
        await self.registry.add_domain(tenant.id, require_domain(domain))
        self.cache.invalidate_negative()

    async def remove_domain(self, domain: str) -> None:
        """Stop routing `domain`; its tenant is unaffected otherwise."""
        await self.start()
        tenant_id = await self.registry.remove_domain(require_domain(domain))
        if tenant_id is not None:
            self.invalidate(tenant_id)

    async def domains(self, tenant_id_or_slug: str) -> Sequence[str]:
        """The tenant's custom domains."""
        tenant = await self.get(tenant_id_or_slug)
        return await self.registry.domains(tenant.id)

    async def events(self, tenant_id_or_slug: str, *, limit: int = 100) -> Sequence[TenantEvent]:
        """The tenant's audit trail, oldest first."""
        tenant = await self.get(tenant_id_or_slug)
        return await self.registry.events(tenant.id, limit=limit)

    def invalidate(self, tenant_id: str) -> None:
        """Drop the tenant from this process's context cache; its next request reloads it."""
        self.cache.invalidate(tenant_id)

    def stats(self) -> TenancyStats:
        """Return the runtime's counters."""
        return TenancyStats(started=self._started, cache=self.cache.stats())
