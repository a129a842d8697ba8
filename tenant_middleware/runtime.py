"""`Tenancy`: the runtime that owns the registry, cache, sources, pools and schema packages.

Apps hand it to `TenancyMiddleware`; operators call its methods from Python or the CLI. Its
parts are built by `tenant_middleware.assembly.build`; this module holds its own start and stop,
the leasing of tenant connections, and the operator API as thin delegations to the services of
`tenant_middleware.operations` (each operation starts the runtime first). Longer than 260 lines
because each public method keeps its full signature and docstring here, where users read them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from tenant_middleware.assembly import build
from tenant_middleware.cache import CacheStats, TenantCache
from tenant_middleware.config import TenancyConfig
from tenant_middleware.hooks import Hook, HookKind
from tenant_middleware.lifecycle import require_servable
from tenant_middleware.models import TenantContext, TenantStatus
from tenant_middleware.operations.fleet import FanOutReport, TenantRunResult
from tenant_middleware.pool import PooledConnection, PoolManager, PoolStats
from tenant_middleware.provisioning import Provisioner
from tenant_middleware.recovery import Audit, Recovery, RecoveryReport
from tenant_middleware.registry import Registry, TenantEvent
from tenant_middleware.registry.guard import check_control_plane
from tenant_middleware.resolver import CacheKey, Resolver
from tenant_middleware.schema.fleet import FleetReport, TenantMigrationResult
from tenant_middleware.schema.package import SchemaPackage
from tenant_middleware.schema.service import SchemaService
from tenant_middleware.secrets.rotation import RotationReport
from tenant_middleware.sources.base import TenantSource
from tenant_middleware.sync import ChangeFollower
from tenant_middleware.telemetry import Instrumentation

# The names of the annotations are imported at run time, not under TYPE_CHECKING, so that
# `typing.get_type_hints` works on the public methods (FastAPI and docs tools call it).

_ACTIVE = TenantStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class TenancyStats:
    """A snapshot of the runtime's counters."""

    started: bool
    cache: CacheStats
    pools: PoolStats


class Tenancy:
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
        telemetry: Instrumentation | None = None,
    ) -> None:
        self._parts = build(
            config if config is not None else TenancyConfig(),
            packages=packages,
            registry=registry,
            sources=sources,
            provisioner=provisioner,
            clock=clock,
            telemetry=telemetry,
        )
        self.config = self._parts.config
        # Whether start() has completed and aclose() has not run since; a plain attribute
        # because the middleware reads it on every request.
        self.started = False
        self._start_lock = asyncio.Lock()

    # -- the parts, read-only -------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        """The control plane."""
        return self._parts.registry

    @property
    def provisioner(self) -> Provisioner:
        """The backend of tenant databases."""
        return self._parts.provisioner

    @property
    def sources(self) -> tuple[TenantSource, ...]:
        """The identification chain, in order."""
        return self._parts.sources

    @property
    def schema(self) -> SchemaService:
        """The schema packages and their migrations."""
        return self._parts.schema

    @property
    def cache(self) -> TenantCache[CacheKey]:
        """The tenant context cache."""
        return self._parts.cache

    @property
    def pools(self) -> PoolManager:
        """The tenant connection pools."""
        return self._parts.pools

    @property
    def resolver(self) -> Resolver:
        """The identification chain and its policy, as the middleware runs it."""
        return self._parts.resolver

    @property
    def change_follower(self) -> ChangeFollower | None:
        """What follows other processes' changes (None with `cache_sync_interval=0`)."""
        return self._parts.change_follower

    def on(self, kind: HookKind | str, hook: Hook) -> None:
        """Subscribe a sync or async callable to a lifecycle event (a `HookKind`, or `*`)."""
        self._parts.hooks.subscribe(kind, hook)

    # -- lifecycle of the runtime ---------------------------------------------------------
    async def start(self) -> None:
        """Open the control plane (applying its migrations); idempotent and single-flight."""
        if self.started:
            return
        async with self._start_lock:
            if not self.started:
                # Before the control plane: it may live on the provisioner's server.
                await self.provisioner.start()
                # Never an empty control plane beside tenant databases (ControlPlaneMissing).
                check_control_plane(self.config, self.registry)
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
            await self.provisioner.aclose()
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

    # -- tenant connections ---------------------------------------------------------------
    def connect(self, tenant: TenantContext | str) -> AbstractAsyncContextManager[PooledConnection]:
        """Lease a pooled connection to a tenant's database (by context, id or slug).

        Use it as `async with tenancy.connect(tenant) as db:`.
        """
        if isinstance(tenant, str) or not self.started:
            return self._connect_slowly(tenant)
        if tenant.status is not _ACTIVE:  # every tenant_db() comes here: no call for the rest
            require_servable(tenant, retry_after=self.config.retry_after)
        return self._parts.pools.connection(tenant.id)

    @asynccontextmanager
    async def _connect_slowly(self, tenant: TenantContext | str) -> AsyncIterator[PooledConnection]:
        await self.start()
        if isinstance(tenant, str):
            tenant = await self.get(tenant)
        require_servable(tenant, retry_after=self.config.retry_after)
        async with self.pools.connection(tenant.id) as connection:
            yield connection

    # -- tenants (`operations.tenants`, `operations.domains`) ----------------------------
    async def provision(
        self,
        slug: str,
        *,
        name: str = "",
        plan: str | None = None,
        region: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TenantContext:
        """Register a tenant, create its database and schema, and make it `active`.

        Provisioning the same slug concurrently happens once. A tenant left `failed` (or
        `provisioning`, by a crash) is resumed; any other existing slug is `DuplicateTenant`.
        """
        await self.start()
        return await self._parts.tenants.provision(
            slug, name=name, plan=plan, region=region, metadata=metadata
        )

    async def get(self, tenant_id_or_slug: str) -> TenantContext:
        """Return a tenant by id or slug, fresh from the control plane; `TenantNotFound`."""
        await self.start()
        return await self._parts.tenants.get(tenant_id_or_slug)

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
        return await self._parts.tenants.list(
            status=status, plan=plan, limit=limit, after_slug=after_slug
        )

    async def all_tenants(self, *, status: TenantStatus | None = None) -> Sequence[TenantContext]:
        """Every tenant (paged through the control plane), ordered by slug."""
        await self.start()
        return await self._parts.tenants.all_tenants(status=status)

    async def suspend(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Refuse the tenant's requests with 403 until `restore()` (a server blocks them too)."""
        await self.start()
        return await self._parts.tenants.suspend(tenant_id_or_slug, reason=reason)

    async def archive(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Keep the data, refuse requests (410) until `restore()`; a server blocks them too."""
        await self.start()
        return await self._parts.tenants.archive(tenant_id_or_slug, reason=reason)

    async def restore(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Make a suspended or archived tenant active again (and unblock it on its server)."""
        await self.start()
        return await self._parts.tenants.restore(tenant_id_or_slug, reason=reason)

    async def delete(self, tenant_id_or_slug: str, *, destroy_data: bool = False) -> None:
        """Archive the tenant; with `destroy_data=True` delete its database and record."""
        await self.start()
        await self._parts.tenants.delete(tenant_id_or_slug, destroy_data=destroy_data)

    async def add_domain(self, tenant_id_or_slug: str, domain: str) -> None:
        """Route requests for `domain` to the tenant (one tenant per domain)."""
        await self.start()
        await self._parts.domains.add_domain(tenant_id_or_slug, domain)

    async def remove_domain(self, domain: str) -> None:
        """Stop routing `domain`; `TenantNotFound` when no tenant has it."""
        await self.start()
        await self._parts.domains.remove_domain(domain)

    async def domains(self, tenant_id_or_slug: str) -> Sequence[str]:
        """The tenant's custom domains."""
        await self.start()
        return await self._parts.domains.domains(tenant_id_or_slug)

    async def events(
        self, tenant_id_or_slug: str, *, limit: int = 100, latest: bool = False
    ) -> Sequence[TenantEvent]:
        """The tenant's audit trail, oldest first: its first `limit` events, or with `latest`
        its last `limit`."""
        await self.start()
        return await self._parts.domains.events(tenant_id_or_slug, limit=limit, latest=latest)

    # -- schema (`operations.schema`) -----------------------------------------------------
    async def migrate(
        self,
        *,
        tenants: Sequence[str] | None = None,
        concurrency: int | None = None,
        dry_run: bool = False,
        on_result: Callable[[TenantMigrationResult], None] | None = None,
        verify: bool = False,
    ) -> FleetReport:
        """Bring every tenant (or those named) up to date; `dry_run` only plans.

        Tenants are migrated `concurrency` at a time (default `migrate_concurrency`); a
        failure is recorded in the report and the control plane, and the run goes on.
        Tenants the control plane records at every package's head are reported up to date
        without opening their databases; `verify` opens and reads each one.
        """
        await self.start()
        return await self._parts.schemas.migrate(
            tenants=tenants,
            concurrency=concurrency,
            dry_run=dry_run,
            on_result=on_result,
            verify=verify,
        )

    async def install_package(self, tenant_id_or_slug: str, package: str) -> None:
        """Install an optional schema package in one tenant's database."""
        await self.start()
        await self._parts.schemas.install_package(tenant_id_or_slug, package)

    async def uninstall_package(
        self, tenant_id_or_slug: str, package: str, *, drop_tables: bool = False
    ) -> None:
        """Remove a package from a tenant's ledger; its tables go only with `drop_tables`."""
        await self.start()
        await self._parts.schemas.uninstall_package(
            tenant_id_or_slug, package, drop_tables=drop_tables
        )

    # -- fleet fan-out (`operations.fleet`) ----------------------------------------------
    async def for_each_tenant(
        self,
        fn: Callable[[TenantContext], Awaitable[Any]],
        *,
        status: TenantStatus | None = TenantStatus.ACTIVE,
        plan: str | None = None,
        concurrency: int | None = None,
        resume: FanOutReport | None = None,
        on_result: Callable[[TenantRunResult], None] | None = None,
    ) -> FanOutReport:
        """Await `fn(tenant)` inside each tenant's `tenant_scope` (so `tenant_db()` works).

        Tenants with `status` (None: any) and `plan` run `concurrency` at a time (default
        `migrate_concurrency`); a failure is recorded in the report and the run goes on. Pass
        the report of an earlier run as `resume` to run only the tenants that did not succeed.
        """
        await self.start()
        return await self._parts.fleet.for_each_tenant(
            fn,
            tenancy=self,
            status=status,
            plan=plan,
            concurrency=concurrency,
            resume=resume,
            on_result=on_result,
        )

    # -- credentials (`operations.credentials`) -------------------------------------------
    async def rotate_keys(self, *, dry_run: bool = False) -> RotationReport:
        """Re-encrypt every stored tenant token under the active `encryption_keys` entry."""
        await self.start()
        return await self._parts.credentials.rotate_keys(dry_run=dry_run)

    async def rotate_credentials(self, tenant_id_or_slug: str) -> TenantContext:
        """Replace a tenant's database credentials: every earlier token stops working."""
        await self.start()
        return await self._parts.credentials.rotate_credentials(tenant_id_or_slug)

    # -- recovery (`tenant_middleware.recovery`) -------------------------------------------
    async def recover(
        self, *, namespaces: Sequence[str] = (), dry_run: bool = False
    ) -> RecoveryReport:
        """Rebuild missing control-plane rows from the tenant databases found.

        A lost local control plane is refused at start (`ControlPlaneMissing`): recover with
        a runtime configured `control_plane_create=True`, as `tenant-middleware recover` does.
        """
        await self.start()
        report = await self._recovery(namespaces).recover(dry_run=dry_run)
        self.cache.clear()  # tenants answered 404 before may exist now
        return report

    async def audit(self, *, namespaces: Sequence[str] = ()) -> Audit:
        """Compare the control plane with the tenant databases found: orphans, missing ones."""
        await self.start()
        return await self._recovery(namespaces).audit()

    def _recovery(self, namespaces: Sequence[str]) -> Recovery:
        return Recovery(self.registry, self.provisioner, self.config, namespaces=namespaces)

    # -- observability --------------------------------------------------------------------
    def invalidate(self, tenant_id: str) -> None:
        """Drop the tenant from this process's context cache; its next request reloads it."""
        self.cache.invalidate(tenant_id)

    async def apply_changes(self, events: Sequence[TenantEvent], overflow: bool = False) -> None:
        """Bring this process up to date with changes recorded in the control plane (see
        `tenant_middleware.sync.ChangeApplier`)."""
        await self._parts.apply_changes(events, overflow)

    def stats(self) -> TenancyStats:
        """Return the runtime's counters."""
        return TenancyStats(
            started=self.started, cache=self.cache.stats(), pools=self.pools.stats()
        )
