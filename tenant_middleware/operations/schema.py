"""Schema operations across tenants: fleet migration and optional packages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenant_middleware.errors import DatabaseBlocked, InvalidIdentifier
from tenant_middleware.lifecycle import require_servable
from tenant_middleware.models import TenantContext, TenantStatus
from tenant_middleware.schema.fleet import (
    FleetReport,
    Outcome,
    TenantMigrationResult,
    run_fleet,
)
from tenant_middleware.schema.ledger import remove_package
from tenant_middleware.schema.service import INSTALLED, UNINSTALLED

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tenant_middleware.operations.tenants import TenantOperations
    from tenant_middleware.pool import PoolManager
    from tenant_middleware.provisioning import Provisioner
    from tenant_middleware.registry import Registry
    from tenant_middleware.schema.service import SchemaService

# Tenants whose databases migrations may touch; the others are skipped.
MIGRATABLE = frozenset({TenantStatus.ACTIVE, TenantStatus.SUSPENDED})


class SchemaOperations:
    """The schema operations of `Tenancy` (which starts the runtime before calling them)."""

    def __init__(
        self,
        *,
        registry: Registry,
        provisioner: Provisioner,
        schema: SchemaService,
        pools: PoolManager,
        tenants: TenantOperations,
        concurrency: int,
        retry_after: int,
    ) -> None:
        self._registry = registry
        self._provisioner = provisioner
        self._schema = schema
        self._pools = pools
        self._tenants = tenants
        self._concurrency = concurrency
        self._retry_after = retry_after

    async def migrate(
        self,
        *,
        tenants: Sequence[str] | None = None,
        concurrency: int | None = None,
        dry_run: bool = False,
        verify: bool = False,
        on_result: Callable[[TenantMigrationResult], None] | None = None,
    ) -> FleetReport:
        """Bring every tenant (or those named) up to date; `dry_run` only plans.

        Tenants are migrated `concurrency` at a time; a failure is recorded in the report
        and the control plane, and the run goes on. Running it again resumes: tenants whose
        installation records in the control plane show every package at its head are
        reported up to date without opening their databases; `verify` opens and reads the
        ledger of each.
        """
        if tenants is None:
            targets = await self._tenants.all_tenants()
        else:
            targets = [await self._tenants.get(name) for name in tenants]

        # Tenants the control plane records as up to date are not opened, unless `verify`.
        recorded = None if verify else await self._schema.recorded()

        async def one(tenant: TenantContext) -> TenantMigrationResult:
            if recorded is not None and tenant.status in MIGRATABLE and recorded.current(tenant.id):
                return TenantMigrationResult(tenant.id, tenant.slug, "up_to_date")
            return await self._migrate_one(tenant, dry_run=dry_run)

        return await run_fleet(
            targets,
            one,
            concurrency=concurrency or self._concurrency,
            on_result=on_result,
        )

    async def _migrate_one(self, tenant: TenantContext, *, dry_run: bool) -> TenantMigrationResult:
        if tenant.status not in MIGRATABLE:
            return TenantMigrationResult(tenant.id, tenant.slug, "skipped")
        location = self._provisioner.locate(tenant.id)
        if not await self._provisioner.exists(location):
            # Not provisioned here yet: its first request creates and migrates it.
            return TenantMigrationResult(tenant.id, tenant.slug, "skipped")
        connection = await self._provisioner.connect(location)
        outcome: Outcome
        try:
            if dry_run:
                steps = await self._schema.plan(tenant.id, connection)
                outcome = "planned" if steps else "up_to_date"
            else:
                steps = await self._schema.bring_up_to_date(tenant.id, connection, verify=True)
                outcome = "migrated" if steps else "up_to_date"
        except DatabaseBlocked:
            if tenant.status is not TenantStatus.SUSPENDED:
                raise
            # Its server refuses every statement while it is suspended (sqld, Turso): nothing
            # ran. Its pool brings it up to date when it is restored.
            return TenantMigrationResult(tenant.id, tenant.slug, "skipped")
        finally:
            await connection.close()
        return TenantMigrationResult(
            tenant.id, tenant.slug, outcome, tuple(str(step) for step in steps)
        )

    async def install_package(self, tenant_id_or_slug: str, package: str) -> None:
        """Install an optional schema package in one tenant's database."""
        tenant = await self._tenants.get(tenant_id_or_slug)
        target = self._schema.package(package)
        require_servable(tenant, retry_after=self._retry_after)
        async with self._pools.connection(tenant.id) as connection:
            await self._schema.bring_up_to_date(tenant.id, connection, [target])
        await self._registry.set_installation(tenant.id, target.name, str(target.head), INSTALLED)

    async def uninstall_package(
        self, tenant_id_or_slug: str, package: str, *, drop_tables: bool = False
    ) -> None:
        """Remove a package from a tenant's ledger; its tables go only with `drop_tables`."""
        tenant = await self._tenants.get(tenant_id_or_slug)
        target = self._schema.package(package)
        if not target.optional:
            # A default package would come straight back on the tenant's next pool.
            raise InvalidIdentifier(f"{package!r} is installed in every tenant; it cannot go")
        require_servable(tenant, retry_after=self._retry_after)
        async with self._pools.connection(tenant.id) as connection:
            await remove_package(connection, target, drop_tables=drop_tables)
        await self._registry.set_installation(tenant.id, target.name, "0", UNINSTALLED)
