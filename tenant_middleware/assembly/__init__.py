"""`build`: the one place that turns a `TenancyConfig` into the runtime's components.

Each component gets its collaborators through its constructor, in the order they depend on
each other (registry -> provisioner -> schema -> cache -> databases -> pools -> operations ->
resolver -> change follower); `Tenancy` holds the result and delegates to it. Tests and apps
replace the registry, the sources, the provisioner or the clock by passing their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenant_middleware.assembly.provisioner import build_provisioner
from tenant_middleware.assembly.registry import build_registry
from tenant_middleware.assembly.sources import build_sources
from tenant_middleware.assembly.telemetry import instrument
from tenant_middleware.cache import TenantCache
from tenant_middleware.databases import TenantDatabases
from tenant_middleware.hooks import Hooks
from tenant_middleware.operations.credentials import CredentialOperations
from tenant_middleware.operations.domains import DomainOperations
from tenant_middleware.operations.fleet import FleetOperations
from tenant_middleware.operations.schema import SchemaOperations
from tenant_middleware.operations.tenants import TenantOperations
from tenant_middleware.pool import PoolManager
from tenant_middleware.provisioning.workflow import ProvisioningWorkflow
from tenant_middleware.resolver import CacheKey, Resolver, context_loader
from tenant_middleware.schema.service import SchemaService
from tenant_middleware.sync import ChangeApplier, ChangeFollower

if TYPE_CHECKING:
    from tenant_middleware.config import TenancyConfig
    from tenant_middleware.provisioning import Provisioner
    from tenant_middleware.registry import Registry
    from tenant_middleware.schema.package import SchemaPackage
    from tenant_middleware.sources.base import TenantSource
    from tenant_middleware.telemetry import Instrumentation

__all__ = ["Components", "build", "build_provisioner", "build_registry", "build_sources"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Components:
    """Everything a `Tenancy` runs on, wired together."""

    config: TenancyConfig
    registry: Registry
    sources: tuple[TenantSource, ...]
    provisioner: Provisioner
    schema: SchemaService
    cache: TenantCache[CacheKey]
    pools: PoolManager
    resolver: Resolver
    hooks: Hooks
    tenants: TenantOperations
    domains: DomainOperations
    schemas: SchemaOperations
    credentials: CredentialOperations
    fleet: FleetOperations
    apply_changes: ChangeApplier
    change_follower: ChangeFollower | None


def build(
    config: TenancyConfig,
    *,
    packages: Sequence[SchemaPackage] = (),
    registry: Registry | None = None,
    sources: Sequence[TenantSource] | None = None,
    provisioner: Provisioner | None = None,
    clock: Callable[[], float] | None = None,
    telemetry: Instrumentation | None = None,
) -> Components:
    """Build the components `config` describes; the keyword arguments replace their parts.

    `clock` (monotonic seconds) drives the cache's and the pools' expiry; `telemetry`
    traces the components' operations (without it, nothing is wrapped).
    """
    monotonic = clock if clock is not None else time.monotonic
    registry = registry if registry is not None else build_registry(config)
    provisioner = (
        provisioner if provisioner is not None else build_provisioner(config, registry=registry)
    )
    schema = SchemaService(registry, packages)
    loader = context_loader(registry)
    if telemetry is not None:
        loader = telemetry.traced("tenant_middleware.lookup", loader)
    cache: TenantCache[CacheKey] = TenantCache(
        loader,
        ttl=config.cache_ttl,
        negative_ttl=config.negative_cache_ttl,
        max_entries=config.cache_max_entries,
        clock=monotonic,
    )
    databases = TenantDatabases(
        registry=registry,
        provisioner=provisioner,
        schema=schema,
        cache=cache,
        retry_after=config.retry_after,
    )
    opener, prepare = databases.open, databases.prepare
    if telemetry is not None:
        opener = telemetry.traced("tenant_middleware.pool.open", opener)
        prepare = telemetry.traced("tenant_middleware.pool.prepare", prepare)
    pools = PoolManager(
        opener,
        prepare=prepare,
        max_pools=config.pool_max_pools,
        max_connections_per_tenant=config.pool_max_connections_per_tenant,
        max_connections=config.pool_max_connections,
        acquire_timeout=config.pool_acquire_timeout,
        idle_timeout=config.pool_idle_timeout,
        retry_after=config.retry_after,
        breaker_threshold=config.breaker_threshold,
        breaker_cooldown=config.breaker_cooldown,
        clock=monotonic,
    )
    hooks = Hooks()
    workflow = ProvisioningWorkflow(registry, provisioner, schema)
    tenants = TenantOperations(
        registry=registry,
        provisioner=provisioner,
        cache=cache,
        pools=pools,
        hooks=hooks,
        workflow=workflow,
    )
    chain = tuple(sources) if sources is not None else build_sources(config)
    resolver = Resolver(
        chain,
        cache,
        tenant_required=config.tenant_required,
        retry_after=config.retry_after,
        auto_provision=tenants.provision_or_get if config.auto_provision else None,
    )
    apply_changes = ChangeApplier(cache, pools)
    follower = None
    if config.cache_sync_interval > 0:
        follower = ChangeFollower(registry, apply_changes, interval=config.cache_sync_interval)
        databases.follow(follower)
    schemas = SchemaOperations(
        registry=registry,
        provisioner=provisioner,
        schema=schema,
        pools=pools,
        tenants=tenants,
        concurrency=config.migrate_concurrency,
        retry_after=config.retry_after,
    )
    if telemetry is not None:
        instrument(telemetry, resolver=resolver, workflow=workflow, schema=schema, schemas=schemas)
        telemetry.observe(cache, pools)
    return Components(
        config=config,
        registry=registry,
        sources=chain,
        provisioner=provisioner,
        schema=schema,
        cache=cache,
        pools=pools,
        resolver=resolver,
        hooks=hooks,
        tenants=tenants,
        domains=DomainOperations(registry=registry, cache=cache, tenants=tenants),
        schemas=schemas,
        credentials=CredentialOperations(
            registry=registry,
            provisioner=provisioner,
            cache=cache,
            pools=pools,
            tenants=tenants,
            encryption_keys=config.encryption_keys,
        ),
        fleet=FleetOperations(tenants=tenants, concurrency=config.migrate_concurrency),
        apply_changes=apply_changes,
        change_follower=follower,
    )
