"""`Tenancy`: the runtime that owns the registry, cache, sources, pools and schema packages.

Apps hand it to `TenancyMiddleware`; operators call its methods from Python or the CLI.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from tenant_middleware.cache import CacheStats, TenantCache
from tenant_middleware.config import TenancyConfig
from tenant_middleware.errors import (
    ConfigError,
    DuplicateTenant,
    InvalidIdentifier,
    TenantNotFound,
    TenantUnavailable,
)
from tenant_middleware.hooks import Hook, Hooks, LifecycleEvent
from tenant_middleware.lifecycle import check_transition
from tenant_middleware.models import TenantContext, TenantKey, TenantStatus
from tenant_middleware.pool import PooledConnection, PoolManager, PoolStats
from tenant_middleware.provisioning import LocalProvisioner, Provisioner, SqldProvisioner
from tenant_middleware.provisioning.turso import TursoProvisioner
from tenant_middleware.provisioning.workflow import ProvisioningWorkflow
from tenant_middleware.registry import Registry, SQLRegistry, TenantEvent
from tenant_middleware.resolver import CacheKey, Resolver
from tenant_middleware.schema.fleet import (
    FleetReport,
    Outcome,
    TenantMigrationResult,
    run_fleet,
)
from tenant_middleware.schema.ledger import remove_package
from tenant_middleware.schema.package import SchemaPackage
from tenant_middleware.schema.service import INSTALLED, UNINSTALLED, SchemaService
from tenant_middleware.secrets import KeyRing
from tenant_middleware.secrets.rotation import (
    RotationReport,
    keyring_from_config,
    rotate_credentials,
)
from tenant_middleware.sources import build_sources
from tenant_middleware.sources.base import TenantSource
from tenant_middleware.sync import ChangeFollower
from tenant_middleware.validation import (
    new_tenant_id,
    normalize_tenant_id,
    require_domain,
    require_slug,
)

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Connection

logger = logging.getLogger("tenant_middleware")
_MIGRATABLE = frozenset({TenantStatus.ACTIVE, TenantStatus.SUSPENDED})
_TRANSITION_EVENTS = {
    TenantStatus.SUSPENDED: "suspended",
    TenantStatus.ARCHIVED: "archived",
    TenantStatus.ACTIVE: "restored",
}
# Control-plane events (`tenant_middleware.sync`) after which a key may now resolve, and after
# which a tenant's open connections must go.
_NEW_KEY_EVENTS = frozenset({"created", "domain_added"})
_POOL_CLOSING_EVENTS = frozenset({"deleted", "credentials_changed", "credentials.rotated"})


@dataclass(frozen=True, slots=True)
class TenancyStats:
    """A snapshot of the runtime's counters."""

    started: bool
    cache: CacheStats
    pools: PoolStats


def build_provisioner(config: TenancyConfig, *, registry: Registry | None = None) -> Provisioner:
    """The provisioner the config names (`local` files, `sqld` namespaces, `turso` databases).

    The turso provisioner stores each tenant's encrypted token in `registry` (required for it),
    as does the sqld one each namespace's key with `sqld_namespace_keys`.
    """
    if config.provisioner == "turso":
        if registry is None:
            raise ConfigError("provisioner", "the turso provisioner needs the registry")
        return TursoProvisioner.from_config(config, registry=registry)
    if config.provisioner == "sqld":
        # Validated by the config: the sqld provisioner has its URL, admin URL and key (and
        # encryption keys, with namespace keys).
        keys: dict[str, Any] = {}
        if config.sqld_namespace_keys:
            if registry is None:
                raise ConfigError("sqld_namespace_keys", "namespace keys need the registry")
            keys = {"registry": registry, "keyring": KeyRing.parse(str(config.encryption_keys))}
        return SqldProvisioner(
            url=str(config.sqld_url),
            admin_url=str(config.sqld_admin_url),
            signing_key_pem=str(config.sqld_signing_key),
            connect_to=config.sqld_connect_to,
            busy_timeout=config.busy_timeout,
            **keys,
        )
    return LocalProvisioner(config.data_dir, busy_timeout=config.busy_timeout)


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
        # reopen (and so recreate) its database while it is being removed.
        current = await self.registry.lookup(TenantKey("id", tenant_id))
        if current is None or current.status not in _MIGRATABLE:
            self.invalidate(tenant_id)
            raise TenantNotFound("the tenant no longer exists")
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

    # -- operator API: tenants ------------------------------------------------------------
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
        slug = require_slug(slug)
        pending = self._provisioning.get(slug)
        if pending is None:
            details = {"name": name, "plan": plan, "region": region, "metadata": metadata}
            pending = asyncio.ensure_future(self._provision(slug, details))
            self._provisioning[slug] = pending
            pending.add_done_callback(lambda _: self._provisioning.pop(slug, None))
        return await asyncio.shield(pending)

    async def _provision(self, slug: str, details: dict[str, Any]) -> TenantContext:
        existing = await self.registry.lookup(TenantKey("slug", slug))
        if existing is None:
            tenant = await self.registry.create(
                tenant_id=new_tenant_id(), slug=slug, status=TenantStatus.PROVISIONING, **details
            )
        elif existing.status is TenantStatus.FAILED:
            tenant = await self.registry.set_status(
                existing.id, TenantStatus.PROVISIONING, reason="retry"
            )
        elif existing.status is TenantStatus.PROVISIONING:
            tenant = existing
        else:
            raise DuplicateTenant(f"slug {slug!r} is taken")
        try:
            active = await self._workflow.run(tenant)
        except Exception as exc:
            await self._hooks.emit(
                LifecycleEvent("provisioning_failed", tenant, {"error": str(exc)})
            )
            raise
        finally:
            # Whatever happened, requests must see the new state, not a cached one.
            self.invalidate(tenant.id)
            self.cache.invalidate_negative()
        logger.info("tenant provisioned", extra={"tenant_id": active.id})
        await self._hooks.emit(LifecycleEvent("provisioned", active))
        return active

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

    async def all_tenants(self, *, status: TenantStatus | None = None) -> Sequence[TenantContext]:
        """Every tenant (paged through the control plane), ordered by slug."""
        tenants: builtins.list[TenantContext] = []
        after: str | None = None
        while True:
            page = await self.list(status=status, limit=500, after_slug=after)
            tenants.extend(page)
            if len(page) < 500:
                return tenants
            after = page[-1].slug

    async def suspend(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Refuse the tenant's requests with 403 until `restore()` (a server blocks them too)."""
        return await self._transition(tenant_id_or_slug, TenantStatus.SUSPENDED, reason)

    async def archive(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Keep the data, refuse requests (410) until `restore()`; a server blocks them too."""
        return await self._transition(tenant_id_or_slug, TenantStatus.ARCHIVED, reason)

    async def restore(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Make a suspended or archived tenant active again (and unblock it on its server)."""
        return await self._transition(tenant_id_or_slug, TenantStatus.ACTIVE, reason)

    async def delete(self, tenant_id_or_slug: str, *, destroy_data: bool = False) -> None:
        """Archive the tenant; with `destroy_data=True` delete its database and record."""
        tenant = await self.get(tenant_id_or_slug)
        if not destroy_data:
            if tenant.status is not TenantStatus.ARCHIVED:
                await self._transition(tenant.id, TenantStatus.ARCHIVED, "deleted")
            return
        if tenant.status is not TenantStatus.ARCHIVED:
            # Archived first, so no request can reopen the database while it is removed.
            await self.registry.set_status(tenant.id, TenantStatus.ARCHIVED, reason="deleting")
            self.invalidate(tenant.id)
        await self.pools.discard(tenant.id)
        await self.provisioner.destroy(self.provisioner.locate(tenant.id))
        await self.registry.delete(tenant.id)
        self.invalidate(tenant.id)
        logger.info("tenant deleted with its data", extra={"tenant_id": tenant.id})
        await self._hooks.emit(LifecycleEvent("deleted", tenant, {"destroy_data": True}))

    async def _transition(
        self, tenant_id_or_slug: str, target: TenantStatus, reason: str | None
    ) -> TenantContext:
        tenant = await self.get(tenant_id_or_slug)
        check_transition(tenant.status, target)
        block = getattr(self.provisioner, "block", None)
        if block is not None:
            # The server first: if it refuses, nothing changed; suspended and archived
            # tenants are blocked there too, so no connection can read or write around us.
            # Archived data is also protected from deletion (Turso); restore lifts that.
            closed = target is not TenantStatus.ACTIVE
            protect: bool | None = None
            if target is TenantStatus.ARCHIVED:
                protect = True
            elif tenant.status is TenantStatus.ARCHIVED:
                protect = False
            await block(
                self.provisioner.locate(tenant.id),
                reads=closed,
                writes=closed,
                reason=reason,
                protect=protect,
            )
        updated = await self.registry.set_status(tenant.id, target, reason=reason)
        self.invalidate(tenant.id)
        if target is not TenantStatus.ACTIVE:
            await self.pools.discard(tenant.id)
        logger.info("tenant status changed", extra={"tenant_id": tenant.id, "status": target.value})
        await self._hooks.emit(
            LifecycleEvent(_TRANSITION_EVENTS[target], updated, {"reason": reason})
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

    async def events(
        self, tenant_id_or_slug: str, *, limit: int = 100, latest: bool = False
    ) -> Sequence[TenantEvent]:
        """The tenant's audit trail, oldest first: its first `limit` events, or with `latest`
        its last `limit`."""
        tenant = await self.get(tenant_id_or_slug)
        return await self.registry.events(tenant.id, limit=limit, latest=latest)

    # -- operator API: schema -------------------------------------------------------------
    async def migrate(
        self,
        *,
        tenants: Sequence[str] | None = None,
        concurrency: int | None = None,
        dry_run: bool = False,
        on_result: Callable[[TenantMigrationResult], None] | None = None,
    ) -> FleetReport:
        """Bring every tenant (or those named) up to date; `dry_run` only plans.

        Tenants are migrated `concurrency` at a time; a failure is recorded in the report
        and the control plane, and the run goes on. Running it again resumes: tenants
        already up to date are skipped at the cost of one ledger read.
        """
        await self.start()
        if tenants is None:
            targets = await self.all_tenants()
        else:
            targets = [await self.get(name) for name in tenants]

        async def one(tenant: TenantContext) -> TenantMigrationResult:
            return await self._migrate_one(tenant, dry_run=dry_run)

        return await run_fleet(
            targets,
            one,
            concurrency=concurrency or self.config.migrate_concurrency,
            on_result=on_result,
        )

    async def _migrate_one(self, tenant: TenantContext, *, dry_run: bool) -> TenantMigrationResult:
        if tenant.status not in _MIGRATABLE:
            return TenantMigrationResult(tenant.id, tenant.slug, "skipped")
        location = self.provisioner.locate(tenant.id)
        if not await self.provisioner.exists(location):
            # Not provisioned here yet: its first request creates and migrates it.
            return TenantMigrationResult(tenant.id, tenant.slug, "skipped")
        connection = await self.provisioner.connect(location)
        outcome: Outcome
        try:
            if dry_run:
                steps = await self.schema.plan(tenant.id, connection)
                outcome = "planned" if steps else "up_to_date"
            else:
                steps = await self.schema.bring_up_to_date(tenant.id, connection)
                outcome = "migrated" if steps else "up_to_date"
        finally:
            await connection.close()
        return TenantMigrationResult(
            tenant.id, tenant.slug, outcome, tuple(str(step) for step in steps)
        )

    async def install_package(self, tenant_id_or_slug: str, package: str) -> None:
        """Install an optional schema package in one tenant's database."""
        tenant = await self.get(tenant_id_or_slug)
        target = self.schema.package(package)
        async with self.connect(tenant) as connection:
            await self.schema.bring_up_to_date(tenant.id, connection, [target])
        await self.registry.set_installation(tenant.id, target.name, str(target.head), INSTALLED)

    async def uninstall_package(
        self, tenant_id_or_slug: str, package: str, *, drop_tables: bool = False
    ) -> None:
        """Remove a package from a tenant's ledger; its tables go only with `drop_tables`."""
        tenant = await self.get(tenant_id_or_slug)
        target = self.schema.package(package)
        if not target.optional:
            # A default package would come straight back on the tenant's next pool.
            raise InvalidIdentifier(f"{package!r} is installed in every tenant; it cannot go")
        async with self.connect(tenant) as connection:
            await remove_package(connection, target, drop_tables=drop_tables)
        await self.registry.set_installation(tenant.id, target.name, "0", UNINSTALLED)

    # -- operator API: credentials --------------------------------------------------------
    async def rotate_keys(self, *, dry_run: bool = False) -> RotationReport:
        """Re-encrypt every stored tenant token under the active `encryption_keys` entry.

        Failures (a token under a key no longer configured) are in the report; reruns are
        idempotent. `ConfigError` naming `encryption_keys` when it is not set.
        """
        keyring = keyring_from_config(self.config.encryption_keys)
        tenants = await self.all_tenants()
        return await rotate_credentials(self.registry, keyring, tenants, dry_run=dry_run)

    async def rotate_credentials(self, tenant_id_or_slug: str) -> TenantContext:
        """Replace a tenant's database credentials: every earlier token stops working.

        The provisioner invalidates them on the database server and stores a new one (turso,
        sqld); the local provisioner has none (`ConfigError` naming `provisioner`). The
        tenant's pool here is closed, so new connections use the new credentials; other app
        instances pick them up from the control plane when theirs are refused.
        """
        rotate = getattr(self.provisioner, "rotate_credentials", None)
        if rotate is None:
            raise ConfigError(
                "provisioner",
                f"the {self.provisioner.name} provisioner keeps no database credentials to rotate",
            )
        tenant = await self.get(tenant_id_or_slug)
        await rotate(self.provisioner.locate(tenant.id))
        # Recorded once the server has them: an event for a rotation that failed would lie.
        await self.registry.record_event(
            tenant.id, "credentials.rotated", {"provisioner": self.provisioner.name}
        )
        await self.pools.discard(tenant.id)
        self.invalidate(tenant.id)
        logger.info("tenant credentials rotated", extra={"tenant_id": tenant.id})
        return tenant

    # -- observability --------------------------------------------------------------------
    def invalidate(self, tenant_id: str) -> None:
        """Drop the tenant from this process's context cache; its next request reloads it."""
        self.cache.invalidate(tenant_id)

    async def apply_changes(self, events: Sequence[TenantEvent], overflow: bool = False) -> None:
        """Bring this process up to date with changes recorded in the control plane (by any
        process): the `ChangeFollower` calls it with the events it has not seen yet.

        Each changed tenant leaves the cache; a tenant that stopped being servable (suspended,
        archived, deleted) or got new credentials also has its pool closed; new tenants and
        domains clear the negative cache. `overflow` (too many events to read) clears the
        whole cache instead.
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
