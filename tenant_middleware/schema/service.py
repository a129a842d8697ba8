"""Which packages a tenant has, bringing its database up to date, and recording it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.errors import DatabaseError, InvalidIdentifier
from tenant_middleware.schema.ledger import (
    PendingMigration,
    applied_checksums,
    pending_migrations,
    upgrade,
)
from tenant_middleware.schema.package import SchemaPackage, check_packages

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tenant_middleware.db.protocol import Connection
    from tenant_middleware.registry import Registry
    from tenant_middleware.registry.base import PackageInstallation

# Tenants remembered as up to date (see `SchemaService.bring_up_to_date`); the oldest go first.
MAX_REMEMBERED = 100_000
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
        self._default_names = tuple(p.name for p in self.defaults)
        # tenant id -> (the packages, its database's schema_version) when last found up to date.
        self._up_to_date: dict[str, tuple[tuple[str, ...], int]] = {}

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

    async def recorded(self) -> RecordedVersions:
        """The control plane's installation records of every tenant, read once (fleet passes)."""
        return RecordedVersions(self, await self._registry.all_installations())

    async def bring_up_to_date(
        self,
        tenant_id: str,
        connection: Connection,
        packages: Sequence[SchemaPackage] | None = None,
        *,
        verify: bool = False,
    ) -> list[PendingMigration]:
        """Apply pending migrations and record each package's version in the control plane.

        A tenant this runtime found up to date with the same packages is not read again
        while its database's `schema_version` is unchanged: one pragma instead of the ledger.
        Every DDL statement changes it (a migration by another process, a recreated or
        restored file, tables dropped), and a package installed or removed changes the set.
        `verify` reads the ledger regardless and records the versions found even when nothing
        was pending (so the control plane's records can answer the next fleet pass).
        """
        if packages is None and len(self.defaults) == len(self.packages):
            # Every pool opening comes here: no optional packages, no coroutine or names to
            # build (what `packages_for` would answer).
            targets, names = self.defaults, self._default_names
        else:
            targets = (
                tuple(packages) if packages is not None else await self.packages_for(tenant_id)
            )
            names = tuple(p.name for p in targets)
        version = await _schema_version(connection)
        if (
            not verify
            and version is not None
            and self._up_to_date.get(tenant_id) == (names, version)
        ):
            return []
        try:
            applied = await upgrade(connection, targets)
        except Exception:
            # Whatever failed (a migration, the connection): record how far each package got,
            # an incomplete one as `failed`, and let the caller see the error unchanged.
            self._up_to_date.pop(tenant_id, None)
            await self._record(tenant_id, targets, connection, failed=True)
            raise
        if applied or verify:
            await self._record(tenant_id, targets, connection, failed=False)
        if applied:
            version = await _schema_version(connection)
        if version is not None:
            self._remember(tenant_id, (names, version))
        return applied

    def known_version(self, tenant_id: str) -> int | None:
        """The schema cookie at which this runtime last found the tenant up to date, if any."""
        state = self._up_to_date.get(tenant_id)
        return None if state is None else state[1]

    def forget(self, tenant_id: str) -> None:
        """Read the tenant's ledger again next time (its packages changed)."""
        self._up_to_date.pop(tenant_id, None)

    def _remember(self, tenant_id: str, state: tuple[tuple[str, ...], int]) -> None:
        self._up_to_date.pop(tenant_id, None)
        self._up_to_date[tenant_id] = state
        if len(self._up_to_date) > MAX_REMEMBERED:
            del self._up_to_date[next(iter(self._up_to_date))]

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


class RecordedVersions:
    """What the control plane records of every tenant's packages, to skip those up to date."""

    def __init__(
        self, service: SchemaService, records: Mapping[str, Sequence[PackageInstallation]]
    ) -> None:
        self._service = service
        self._records = records

    def current(self, tenant_id: str) -> bool:
        """Whether the records show every package of the tenant installed at its head.

        Default packages need a record; an optional one counts once a record names it (and
        until it is uninstalled). A failed, older or missing record means: open the database.
        """
        found = {record.package: record for record in self._records.get(tenant_id, ())}
        for package in self._service.packages:
            record = found.get(package.name)
            if record is None:
                if package.optional:
                    continue
                return False
            if package.optional and record.status == UNINSTALLED:
                continue
            if record.status != INSTALLED or record.version != str(package.head):
                return False
        return True


async def _schema_version(connection: Connection) -> int | None:
    """The database's schema cookie (bumped by every schema change); None if unreadable."""
    if isinstance(connection, SQLiteConnection):
        # A connection just opened read it on its worker: no statement on the loop for it.
        opened = connection.take_schema_version_at_open()
        if opened is not None:
            return opened
    try:
        value = (await connection.execute("PRAGMA schema_version")).scalar()
    except DatabaseError:
        return None  # a server that refuses the pragma: read the ledger every time
    return value if isinstance(value, int) else None
