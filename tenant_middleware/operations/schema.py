"""Schema operations across tenants: fleet migration and optional packages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenant_middleware.errors import DatabaseBlocked, InvalidIdentifier
from tenant_middleware.models import TenantContext, TenantStatus
from tenant_middleware.operations._parts import RuntimeParts
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

# Tenants whose databases migrations may touch; the others are skipped.
MIGRATABLE = frozenset({TenantStatus.ACTIVE, TenantStatus.SUSPENDED})


class SchemaOperations(RuntimeParts):
    """The schema operations of `Tenancy`."""

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
        await self.start()
        if tenants is None:
            targets = await self.all_tenants()
        else:
            targets = [await self.get(name) for name in tenants]

        # Tenants the control plane records as up to date are not opened, unless `verify`.
        recorded = None if verify else await self.schema.recorded()

        async def one(tenant: TenantContext) -> TenantMigrationResult:
            if recorded is not None and tenant.status in MIGRATABLE and recorded.current(tenant.id):
                return TenantMigrationResult(tenant.id, tenant.slug, "up_to_date")
            return await self._migrate_one(tenant, dry_run=dry_run)

        return await run_fleet(
            targets,
            one,
            concurrency=concurrency or self.config.migrate_concurrency,
            on_result=on_result,
        )

    async def _migrate_one(self, tenant: TenantContext, *, dry_run: bool) -> TenantMigrationResult:
        if tenant.status not in MIGRATABLE:
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
                steps = await self.schema.bring_up_to_date(tenant.id, connection, verify=True)
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
