"""`InstallationQueries`: `SQLRegistry`'s methods for the schema packages installed in a tenant.

Separate from `sql.py` because installations are the schema service's record
(`package_installations`, one row per tenant and package), not part of the tenant row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenant_middleware.models import EventKind
from tenant_middleware.registry._codec import (
    installation_detail,
    installation_from_row,
    require_tenant_id,
)
from tenant_middleware.registry._sql_parts import SQLParts, append_event, require_tenant

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tenant_middleware.registry.base import PackageInstallation

_UPSERT_INSTALLATION = """
    INSERT INTO package_installations (tenant_id, package, version, status, updated_at)
    VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, package) DO UPDATE SET
    version = excluded.version, status = excluded.status, updated_at = excluded.updated_at
"""


class InstallationQueries(SQLParts):
    """The installation methods of `SQLRegistry`."""

    async def set_installation(
        self, tenant_id: str, package: str, version: str, status: str
    ) -> None:
        """Insert or update the installation of `package` in the tenant (one per package)."""
        tenant_id = require_tenant_id(tenant_id)
        detail, now = installation_detail(package, version, status), self._clock()
        async with self._db.writer().transaction() as tx:
            await require_tenant(tx, tenant_id)
            found = await tx.execute(
                "SELECT version, status FROM package_installations"
                " WHERE tenant_id = ? AND package = ?",
                (tenant_id, package),
            )
            if found.first() == (version, status):
                return
            await tx.execute(_UPSERT_INSTALLATION, (tenant_id, package, version, status, now))
            await append_event(tx, tenant_id, EventKind.INSTALLATION_CHANGED, detail, now)

    async def installations(self, tenant_id: str) -> Sequence[PackageInstallation]:
        """The tenant's package installations, sorted by package name."""
        tenant_id = require_tenant_id(tenant_id)
        result = await self._db.reader().execute(
            "SELECT package, version, status, updated_at FROM package_installations"
            " WHERE tenant_id = ? ORDER BY package",
            (tenant_id,),
        )
        return [installation_from_row(tenant_id, row) for row in result.rows]

    async def all_installations(self) -> Mapping[str, Sequence[PackageInstallation]]:
        """Every tenant's package installations by tenant id, in one read (fleet passes)."""
        result = await self._db.reader().execute(
            "SELECT tenant_id, package, version, status, updated_at FROM package_installations"
            " ORDER BY tenant_id, package"
        )
        found: dict[str, list[PackageInstallation]] = {}
        for tenant_id, *row in result.rows:
            found.setdefault(str(tenant_id), []).append(
                installation_from_row(str(tenant_id), tuple(row))
            )
        return found
