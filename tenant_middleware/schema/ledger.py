"""The ledger of applied migrations, kept in each tenant's own database.

Applying is safe to race: each migration runs in its own write transaction (`BEGIN
IMMEDIATE`) that first re-reads the ledger, so two processes or two first requests apply a
migration once. A checksum that differs from the applied one is drift and stops the tenant's
migration with an error instead of guessing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenant_middleware.errors import ProvisioningError
from tenant_middleware.schema.migration import Migration
from tenant_middleware.schema.package import SchemaPackage

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Connection, Executor

LEDGER_TABLE = "_tenancy_schema"
_CREATE_LEDGER = (
    "CREATE TABLE IF NOT EXISTS _tenancy_schema ("
    "package TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, "
    "checksum TEXT NOT NULL, applied_at REAL NOT NULL, PRIMARY KEY (package, version))"
)


@dataclass(frozen=True, slots=True)
class PendingMigration:
    """A migration not yet applied to one tenant."""

    package: SchemaPackage
    migration: Migration

    def __str__(self) -> str:
        return f"{self.package.name}@{self.migration.version}"


async def applied_checksums(conn: Executor) -> dict[tuple[str, int], str]:
    """Return `{(package, version): checksum}` of every applied migration; only reads."""
    ledger = await conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEDGER_TABLE,)
    )
    if not ledger.rows:
        return {}  # nothing applied yet; a plan (a dry run) must not create the table
    result = await conn.execute("SELECT package, version, checksum FROM _tenancy_schema")
    return {(str(p), int(v or 0)): str(c) for p, v, c in result.rows}


def plan(
    packages: Sequence[SchemaPackage], applied: dict[tuple[str, int], str]
) -> list[PendingMigration]:
    """Return the migrations still to apply, in order; raise on checksum drift."""
    pending: list[PendingMigration] = []
    for package in packages:
        for migration in package.migrations:
            checksum = applied.get((package.name, migration.version))
            if checksum is None:
                pending.append(PendingMigration(package, migration))
            elif checksum != migration.checksum:
                raise ProvisioningError(
                    f"{package.name}@{migration.version} ({migration.name}) was changed after "
                    "it was applied: add a new migration instead of editing an applied one"
                )
    return pending


async def pending_migrations(
    conn: Executor, packages: Sequence[SchemaPackage]
) -> list[PendingMigration]:
    """Read the ledger and return what is left to apply."""
    return plan(packages, await applied_checksums(conn))


async def upgrade(
    conn: Connection,
    packages: Sequence[SchemaPackage],
    *,
    clock: Callable[[], float] = time.time,
) -> list[PendingMigration]:
    """Apply every pending migration, each in its own write transaction; return those applied."""
    done: list[PendingMigration] = []
    for step in await pending_migrations(conn, packages):
        foreign_keys = step.migration.foreign_keys
        async with conn.transaction(write=True, foreign_keys=foreign_keys) as tx:
            await tx.execute(_CREATE_LEDGER)
            key = (step.package.name, step.migration.version)
            again = await tx.execute(
                "SELECT 1 FROM _tenancy_schema WHERE package = ? AND version = ?", key
            )
            if again.rows:  # applied by someone else since we read the ledger
                continue
            try:
                await step.migration.apply(tx)
            except ProvisioningError:
                raise
            except Exception as exc:
                raise ProvisioningError(f"{step} ({step.migration.name}) failed: {exc}") from exc
            if not foreign_keys:
                # Unenforced while it ran: refuse to commit rows that now point nowhere.
                broken = await tx.execute("PRAGMA foreign_key_check")
                if broken.rows:
                    raise ProvisioningError(
                        f"{step} ({step.migration.name}) left {len(broken.rows)} rows "
                        "violating foreign keys; rolled back"
                    )
            await tx.execute(
                "INSERT INTO _tenancy_schema (package, version, name, checksum, applied_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (*key, step.migration.name, step.migration.checksum, clock()),
            )
        done.append(step)
    return done


async def remove_package(conn: Connection, package: SchemaPackage, *, drop_tables: bool) -> None:
    """Forget a package in the tenant's ledger; with `drop_tables`, run its uninstall SQL."""
    async with conn.transaction(write=True) as tx:
        await tx.execute(_CREATE_LEDGER)
        if drop_tables:
            for statement in package.uninstall_statements:
                await tx.execute(statement)
        await tx.execute("DELETE FROM _tenancy_schema WHERE package = ?", (package.name,))
