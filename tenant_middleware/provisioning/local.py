"""Tenant databases as local libSQL/SQLite files under the data directory (WAL mode)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.errors import DatabaseError, ProvisioningError
from tenant_middleware.naming import DatabaseLocation, local_location
from tenant_middleware.provisioning.base import Provisioner

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Connection

SQLITE_CANTOPEN = 14
# SQLite's companions of a WAL database; destroying a tenant removes them too.
_SIDECARS = ("-wal", "-shm", "-journal")


class LocalProvisioner(Provisioner):
    """One file per tenant: `<data_dir>/tenants/t-<uuid hex>.db`."""

    name = "local"
    # `connect` fails on a missing database: `TenantDatabases` checks `exists` only then.
    connect_refuses_missing = True

    def __init__(
        self, data_dir: str | Path, *, busy_timeout: float = 5.0, inline: bool = True
    ) -> None:
        self.data_dir = Path(data_dir)
        self.busy_timeout = busy_timeout
        # False: every statement on a worker thread (`TenancyConfig.sqlite_inline`).
        self.inline = inline

    def locate(self, tenant_id: str) -> DatabaseLocation:
        """Return the tenant's file location."""
        return local_location(self.data_dir, tenant_id)

    @staticmethod
    def _path(location: DatabaseLocation) -> Path:
        if location.path is None:
            raise ProvisioningError(f"{location.name} is not a local database")
        return location.path

    async def create(self, location: DatabaseLocation) -> None:
        """Create the file in WAL mode (opening it creates it)."""
        connection = await SQLiteConnection.open(
            self._path(location), busy_timeout=self.busy_timeout
        )
        await connection.close()

    async def exists(self, location: DatabaseLocation) -> bool:
        """Whether the file exists."""
        return self._path(location).exists()

    async def connect(self, location: DatabaseLocation) -> Connection:
        """Open a connection to the tenant's file; `DatabaseError` if there is none."""
        path = self._path(location)
        # Opened without creating: a database destroyed underneath a pool must not come back
        # empty and unmigrated, nor a deleted tenant's come back at all. The open itself
        # finds it missing (no check before it, which every pool opening would pay).
        try:
            return await SQLiteConnection.open(
                path, busy_timeout=self.busy_timeout, inline=self.inline, create=False
            )
        except DatabaseError as exc:
            if exc.sqlite_code == SQLITE_CANTOPEN and not path.exists():
                raise DatabaseError(f"database {location.name} does not exist") from exc
            raise

    async def destroy(self, location: DatabaseLocation) -> None:
        """Delete the file and its WAL companions."""
        path = self._path(location)
        targets = [path, *(path.with_name(path.name + suffix) for suffix in _SIDECARS)]
        await asyncio.to_thread(_unlink_all, targets)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
