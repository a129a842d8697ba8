"""Which packages a tenant has, bringing its database up to date, and recording it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tenant_middleware.errors import InvalidIdentifier
from tenant_middleware.schema.ledger import (
    PendingMigration,
    applied_checksums,
    pending_migrations,
    upgrade,
)
from tenant_middleware.schema.package import SchemaPackage, check_packages

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Connection
    from tenant_middleware.registry import Registry

INSTALLED = "installed"
FAILED = "failed"
UNINSTALLED = "uninstalled"


class SchemaService:
    """The runtime's schema packages: default ones in every tenant, optional ones on request."""

    def __init__(self, registry: Registry, packages: Sequence[SchemaPackage]) -> None:
        self._registry = registry
        self.packages = check_packages(packages)
        self._by_name = {package.name: package for package in self.packages}
        self.defaults = tuple(p for p in self.packages if not p.optional)

    def package(self, name: str) -> SchemaPackage:
        """Return a package by name; `InvalidIdentifier` if the runtime has none of that name."""
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidIdentifier(f"no schema package named {name[:80]!r}") from None

    async def packages_for(self, tenant_id: str) -> tuple[SchemaPackage, ...]:
        """Default packages plus the optional ones installed in this tenant."""
        if len(self.defaults) == len(self.packages):
            return self.defaults  # no optional packages: no need to ask the registry
        installed = {
            item.package
            for item in await self._registry.installations(tenant_id)
            if item.status != UNINSTALLED
        }
        extra = tuple(p for p in self.packages if p.optional and p.name in installed)
        return self.defaults + extra

    async def plan(self, tenant_id: str, connection: Connection) -> list[PendingMigration]:
        """What would be applied to this tenant, in order."""
        return await pending_migrations(connection, await self.packages_for(tenant_id))

    async def bring_up_to_date(
        self,
        tenant_id: str,
        connection: Connection,
        packages: Sequence[SchemaPackage] | None = None,
    ) -> list[PendingMigration]:
        """Apply pending migrations and record each package's version in the control plane."""
        targets = tuple(packages) if packages is not None else await self.packages_for(tenant_id)
        try:
            applied = await upgrade(connection, targets)
        except Exception:
            # Whatever failed (a migration, the connection): record how far each package got,
            # an incomplete one as `failed`, and let the caller see the error unchanged.
            await self._record(tenant_id, targets, connection, failed=True)
            raise
        if applied:
            await self._record(tenant_id, targets, connection, failed=False)
        return applied

    async def _record(
        self,
        tenant_id: str,
        packages: Sequence[SchemaPackage],
        connection: Connection,
        *,
        failed: bool,
    ) -> None:
        applied = await applied_checksums(connection)
        for package in packages:
            version = max((v for (name, v) in applied if name == package.name), default=0)
            complete = version >= package.head
            status = INSTALLED if complete or not failed else FAILED
            await self._registry.set_installation(tenant_id, package.name, str(version), status)
