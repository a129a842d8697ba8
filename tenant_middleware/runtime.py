"""`Tenancy`: the runtime that owns the registry, cache, sources, pools and schema packages.

Apps hand it to `TenancyMiddleware`; operators call its methods from Python or the CLI. This
module holds its construction, its own start and stop, and the request path (loading tenant
contexts, opening and preparing tenant databases, following other processes' changes); the
operator API comes from the mixins of `tenant_middleware.operations`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from tenant_middleware.cache import CacheStats, TenantCache
from tenant_middleware.config import TenancyConfig
from tenant_middleware.errors import DuplicateTenant, TenantNotFound, TenantUnavailable
from tenant_middleware.freshness import fresh_context
from tenant_middleware.hooks import Hook, Hooks
from tenant_middleware.lifecycle import status_refusal
from tenant_middleware.models import TenantContext, TenantKey, TenantStatus
from tenant_middleware.operations.credentials import CredentialOperations
from tenant_middleware.operations.schema import SchemaOperations
from tenant_middleware.operations.tenants import TenantOperations
from tenant_middleware.pool import PooledConnection, PoolManager, PoolStats
from tenant_middleware.provisioning import Provisioner, SqldProvisioner
from tenant_middleware.provisioning.factory import build_provisioner
from tenant_middleware.provisioning.workflow import ProvisioningWorkflow
from tenant_middleware.registry import Registry, SQLRegistry, TenantEvent
from tenant_middleware.resolver import CacheKey, Resolver
from tenant_middleware.schema.package import SchemaPackage
from tenant_middleware.schema.service import SchemaService
from tenant_middleware.sources import build_sources
from tenant_middleware.sources.base import TenantSource
from tenant_middleware.sync import ChangeFollower

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Connection

logger = logging.getLogger("tenant_middleware")
# Control-plane events (`tenant_middleware.sync`) after which a key may now resolve, and after
# which a tenant's open connections must go.
_NEW_KEY_EVENTS = frozenset({"created", "domain_added"})
# Not `credentials_changed`: `rotate-keys` re-encrypts every tenant's token (the token stays
# valid) and a refreshed token is picked up on the next 401; only a rotation revokes the old.
_POOL_CLOSING_EVENTS = frozenset({"deleted", "credentials.rotated"})


@dataclass(frozen=True, slots=True)
class TenancyStats:
    """A snapshot of the runtime's counters."""

    started: bool
    cache: CacheStats
    pools: PoolStats


class Tenancy(TenantOperations, SchemaOperations, CredentialOperations):
    """The multi-tenancy runtime. Use `async with Tenancy(config)` or `start()`/`aclose()`."""

    def __init__(
        self,
        config: TenancyConfig | None = None,
        *,
        packages: Sequence[SchemaPackage] = (),
        registry: Registry | None = None,
        sources: Sequence[TenantSource] | None = None,
        provisioner: Provisioner | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        config = config if config is not None else TenancyConfig()
        self.config = config
        self.registry: Registry = registry or SQLRegistry.from_config(config)
        self.sources = tuple(sources) if sources is not None else build_sources(config)
        self.provisioner: Provisioner = provisioner or build_provisioner(
            config, registry=self.registry
        )
        self.schema = SchemaService(self.registry, packages)
        self._workflow = ProvisioningWorkflow(self.registry, self.provisioner, self.schema)
        clock_option: dict[str, Any] = {"clock": clock} if clock is not None else {}
        self.cache: TenantCache[CacheKey] = TenantCache(
            self._load,
            ttl=config.cache_ttl,
            negative_ttl=config.negative_cache_ttl,
            max_entries=config.cache_max_entries,
            **clock_option,
        )
        self.pools = PoolManager(
            self._open_connection,
            prepare=self._prepare_database,
            max_pools=config.pool_max_pools,
            max_connections_per_tenant=config.pool_max_connections_per_tenant,
            max_connections=config.pool_max_connections,
            acquire_timeout=config.pool_acquire_timeout,
            idle_timeout=config.pool_idle_timeout,
            retry_after=config.retry_after,
            **clock_option,
        )
        self.resolver = Resolver(
            self.sources,
            self.cache,
            tenant_required=config.tenant_required,
            retry_after=config.retry_after,
            auto_provision=self._auto_provision if config.auto_provision else None,
        )
        self._provisioning: dict[str, asyncio.Future[TenantContext]] = {}
        self._hooks = Hooks()
        self.change_follower: ChangeFollower | None = None
        if config.cache_sync_interval > 0:
            self.change_follower = ChangeFollower(
                self.registry, self.apply_changes, interval=config.cache_sync_interval
            )
        # Whether start() has completed and aclose() has not run since; a plain attribute
        # because the middleware reads it on every request.
        self.started = False
        self._start_lock = asyncio.Lock()

    def on(self, kind: str, hook: Hook) -> None:
        """Subscribe a sync or async callable to a lifecycle event (`provisioned`, ..., `*`)."""
        self._hooks.subscribe(kind, hook)

    # -- lifecycle of the runtime ---------------------------------------------------------
    async def start(self) -> None:
        """Open the control plane (applying its migrations); idempotent and single-flight."""
        if self.started:
            return
        async with self._start_lock:
            if not self.started:
                namespace = self.config.control_plane_namespace
                if namespace is not None and isinstance(self.provisioner, SqldProvisioner):
                    # The control plane in a namespace of the tenants' sqld: made on first
                    # start, through the admin API the provisioner already holds.
                    await self.provisioner.ensure_namespace(namespace)
                await self.registry.start()
                self.pools.start()
                if self.change_follower is not None:
                    await self.change_follower.start()
                self.started = True

    async def aclose(self) -> None:
        """Close pools, sources and the control plane; idempotent."""
        async with self._start_lock:
            if self.change_follower is not None:
                await self.change_follower.aclose()
            await self.pools.aclose()
            for source in self.sources:
                close = getattr(source, "aclose", None)
                if close is not None:
                    await close()
            await self.registry.close()
            close_provisioner = getattr(self.provisioner, "aclose", None)
            if close_provisioner is not None:
                await close_provisioner()
            self.cache.clear()
            self.started = False

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

    # -- request path ---------------------------------------------------------------------
    async def _load(self, key: CacheKey) -> TenantContext | None:
        source, tenant_key = key
        tenant = await self.registry.lookup(tenant_key)
        return tenant.with_source(source) if tenant is not None else None

    async def _auto_provision(self, slug: str) -> TenantContext:
        try:
            return await self.provision(slug)
        except DuplicateTenant:
            return await self.get(slug)

    async def _open_connection(self, tenant_id: str) -> Connection:
        return await self.provisioner.connect(self.provisioner.locate(tenant_id))

    async def _prepare_database(self, tenant_id: str) -> Connection:
        """Before a tenant's pool opens: recreate a missing database, apply pending migrations."""
        # Checked first, every time: a request that outlived the tenant's deletion must not
        # reopen (and so recreate) its database while it is being removed. A cached context
        # the change follower keeps current answers without a read (see `fresh_context`).
        current = fresh_context(self.cache, self.change_follower, tenant_id)
        if current is None:
            current = await self.registry.lookup(TenantKey("id", tenant_id))
        if current is None:
            self.invalidate(tenant_id)
            raise TenantNotFound("the tenant no longer exists")
        if current.status is not TenantStatus.ACTIVE:
            # A request that read the tenant as active just before another process suspended
            # it must not open (and keep) a pool for it.
            self.invalidate(tenant_id)
            raise status_refusal(current.status, retry_after=self.config.retry_after)
        location = self.provisioner.locate(tenant_id)
        if not await self.provisioner.exists(location):
            # A registered tenant without its database (a crash, a fresh app instance).
            await self.provisioner.create(location)
            await self.registry.record_event(tenant_id, "database.created_on_demand")
        connection = await self.provisioner.connect(location)
        try:
            await self.schema.bring_up_to_date(tenant_id, connection)
        except BaseException:
            await connection.close()
            raise
        return connection

    def connect(self, tenant: TenantContext | str) -> AbstractAsyncContextManager[PooledConnection]:
        """Lease a pooled connection to a tenant's database (by context, id or slug).

        Use it as `async with tenancy.connect(tenant) as db:`.
        """
        if isinstance(tenant, str) or not self.started:
            return self._connect_slowly(tenant)
        self._check_servable(tenant)
        return self.pools.connection(tenant.id)

    @asynccontextmanager
    async def _connect_slowly(self, tenant: TenantContext | str) -> AsyncIterator[PooledConnection]:
        await self.start()
        if isinstance(tenant, str):
            tenant = await self.get(tenant)
        self._check_servable(tenant)
        async with self.pools.connection(tenant.id) as connection:
            yield connection

    def _check_servable(self, tenant: TenantContext) -> None:
        if tenant.status in (TenantStatus.PROVISIONING, TenantStatus.FAILED):
            raise TenantUnavailable(
                "the tenant's database is not ready", retry_after=self.config.retry_after
            )

    # -- observability --------------------------------------------------------------------
    def invalidate(self, tenant_id: str) -> None:
        """Drop the tenant from this process's context cache; its next request reloads it."""
        self.cache.invalidate(tenant_id)

    async def apply_changes(self, events: Sequence[TenantEvent], overflow: bool = False) -> None:
        """Bring this process up to date with changes recorded in the control plane (by any
        process): the `ChangeFollower` calls it with the events it has not seen yet.

        Each changed tenant leaves the cache; a tenant that stopped being servable (suspended,
        archived, deleted) or whose credentials were rotated also has its pool closed; new
        tenants and domains clear the negative cache. `overflow` (too many events to read)
        clears the whole cache instead.
        """
        if overflow:
            self.cache.clear()
            return
        # The cache first, for every event: from then on requests see the new state (a
        # suspended tenant is refused) while the pools close.
        for event in events:
            self.cache.invalidate(event.tenant_id)
        if any(event.kind in _NEW_KEY_EVENTS for event in events):
            self.cache.invalidate_negative()
        for tenant_id in dict.fromkeys(
            event.tenant_id
            for event in events
            if event.kind in _POOL_CLOSING_EVENTS
            or (event.kind == "status_changed" and event.detail.get("to") != "active")
        ):
            await self.pools.discard(tenant_id)

    def stats(self) -> TenancyStats:
        """Return the runtime's counters."""
        return TenancyStats(
            started=self.started, cache=self.cache.stats(), pools=self.pools.stats()
        )
