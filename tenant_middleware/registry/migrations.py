"""The control plane's own schema, as ordered and versioned migrations.

A migration is never edited once released: a change is a new entry at the end of
`MIGRATIONS`. Each one runs inside one write transaction that re-reads the applied versions,
so two processes starting at once apply it exactly once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenant_middleware.errors import RegistryError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tenant_middleware.db.protocol import Connection


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the control plane's schema."""

    version: int
    name: str
    statements: tuple[str, ...]


_INITIAL = (
    """
    CREATE TABLE tenants (
        id TEXT PRIMARY KEY NOT NULL,
        slug TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL
            CHECK (status IN ('provisioning', 'active', 'suspended', 'archived', 'failed')),
        plan TEXT,
        region TEXT,
        metadata TEXT NOT NULL DEFAULT '{}',
        version INTEGER NOT NULL DEFAULT 1,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        database_name TEXT,
        database_url TEXT,
        token_ciphertext BLOB,
        status_reason TEXT
    )
    """,
    "CREATE INDEX tenants_by_status ON tenants (status, slug)",
    "CREATE INDEX tenants_by_plan ON tenants (plan, slug)",
    """
    CREATE TABLE tenant_domains (
        domain TEXT PRIMARY KEY NOT NULL,
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        created_at REAL NOT NULL
    )
    """,
    "CREATE INDEX tenant_domains_by_tenant ON tenant_domains (tenant_id, domain)",
    """
    CREATE TABLE package_installations (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        package TEXT NOT NULL,
        version TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (tenant_id, package)
    )
    """,
    # No foreign key on purpose: the audit trail outlives a deleted tenant.
    """
    CREATE TABLE tenant_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}',
        at REAL NOT NULL
    )
    """,
    "CREATE INDEX tenant_events_by_tenant ON tenant_events (tenant_id, id)",
)

# Event kinds were spelled two ways before `EventKind`; one spelling from version 2 on.
_ONE_SPELLING_OF_EVENT_KINDS = (
    "UPDATE tenant_events SET kind = 'credentials_rotated' WHERE kind = 'credentials.rotated'",
    "UPDATE tenant_events SET kind = 'database_created' WHERE kind = 'provisioning.database'",
    "UPDATE tenant_events SET kind = 'schema_applied' WHERE kind = 'provisioning.schema'",
    "UPDATE tenant_events SET kind = 'database_recreated'"
    " WHERE kind = 'database.created_on_demand'",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", _INITIAL),
    Migration(2, "event_kinds", _ONE_SPELLING_OF_EVENT_KINDS),
)

_CREATE_LEDGER = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at REAL NOT NULL
    )
"""


async def applied_versions(conn: Connection) -> set[int]:
    """Return the versions recorded in `schema_migrations`."""
    result = await conn.execute("SELECT version FROM schema_migrations")
    return {int(row[0]) for row in result.rows if isinstance(row[0], int)}


async def migrate(
    conn: Connection,
    *,
    migrations: tuple[Migration, ...] = MIGRATIONS,
    clock: Callable[[], float] = time.time,
) -> list[int]:
    """Apply pending migrations in order; return the versions this call applied.

    Raise `RegistryError` when the database was migrated by a newer release than this one.
    """
    await conn.execute(_CREATE_LEDGER)
    known = {m.version for m in migrations}
    recorded = await applied_versions(conn)
    newer = {v for v in recorded if v > max(known, default=0)}
    if newer:
        raise RegistryError(
            f"the control plane is at schema version {max(newer)}, newer than this release "
            f"supports ({max(known, default=0)}); upgrade tenant-middleware"
        )
    applied: list[int] = []
    pending = [m for m in migrations if m.version not in recorded]
    for migration in sorted(pending, key=lambda m: m.version):
        async with conn.transaction(write=True) as tx:
            # Another process may have applied it since we looked; the write lock is held now.
            done = await tx.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            )
            if done.rows:
                continue
            for statement in migration.statements:
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, clock()),
            )
        applied.append(migration.version)
    return applied
