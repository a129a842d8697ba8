from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from tenant_middleware.db import SQLiteConnection
from tenant_middleware.errors import DatabaseError, RegistryError
from tenant_middleware.models import EventKind, TenantKey
from tenant_middleware.registry import SQLRegistry
from tenant_middleware.registry.migrations import MIGRATIONS, Migration, applied_versions, migrate
from tenant_middleware.validation import new_tenant_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

TABLES = {
    "schema_migrations",
    "tenants",
    "tenant_domains",
    "package_installations",
    "tenant_events",
}


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[SQLiteConnection]:
    conn = await SQLiteConnection.open(tmp_path / "cp.db")
    yield conn
    await conn.close()


async def schema_names(conn: SQLiteConnection, kind: str) -> set[str]:
    result = await conn.execute(
        "SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%'", (kind,)
    )
    return {str(row[0]) for row in result.rows}


async def test_migrate_creates_the_schema_once(conn: SQLiteConnection) -> None:
    assert await migrate(conn, clock=lambda: 5.0) == [m.version for m in MIGRATIONS]
    assert await schema_names(conn, "table") == TABLES
    assert {
        "tenants_by_status",
        "tenants_by_plan",
        "tenant_domains_by_tenant",
        "tenant_events_by_tenant",
    } <= await schema_names(conn, "index")
    ledger = await conn.execute("SELECT version, name, applied_at FROM schema_migrations")
    assert ledger.rows == [(1, "initial", 5.0), (2, "event_kinds", 5.0)]
    assert await migrate(conn) == []
    assert await applied_versions(conn) == {1, 2}


async def test_tenant_columns_include_provisioning_fields(conn: SQLiteConnection) -> None:
    await migrate(conn)
    columns = {str(r[1]) for r in (await conn.execute("PRAGMA table_info(tenants)")).rows}
    assert {
        "id", "slug", "name", "status", "plan", "region", "metadata", "version", "created_at",
        "updated_at", "database_name", "database_url", "token_ciphertext", "status_reason",
    } == columns  # fmt: skip


async def test_schema_enforces_status_and_domain_ownership(conn: SQLiteConnection) -> None:
    await migrate(conn)
    insert = "INSERT INTO tenants (id, slug, status, created_at, updated_at) VALUES (?, ?, ?, 0, 0)"
    with pytest.raises(DatabaseError, match="CHECK"):
        await conn.execute(insert, ("id-1", "acme", "deleted"))
    await conn.execute(insert, ("id-1", "acme", "active"))
    await conn.execute(
        "INSERT INTO tenant_domains (domain, tenant_id, created_at) VALUES ('a.com', 'id-1', 0)"
    )
    with pytest.raises(DatabaseError, match="FOREIGN KEY"):
        await conn.execute(
            "INSERT INTO tenant_domains (domain, tenant_id, created_at) VALUES ('b.com', 'x', 0)"
        )
    await conn.execute(
        "INSERT INTO tenant_events (tenant_id, kind, at) VALUES ('id-1', 'created', 0)"
    )
    await conn.execute("DELETE FROM tenants WHERE id = 'id-1'")
    assert (await conn.execute("SELECT count(*) FROM tenant_domains")).scalar() == 0
    assert (await conn.execute("SELECT count(*) FROM tenant_events")).scalar() == 1


async def test_concurrent_migrations_apply_each_version_once(tmp_path: Path) -> None:
    conns = [await SQLiteConnection.open(tmp_path / "cp.db") for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        ledger = await conns[0].execute("SELECT version FROM schema_migrations")
    finally:
        for c in conns:
            await c.close()
    # Each version applied by exactly one of the three.
    assert sorted(version for result in results for version in result) == [1, 2]
    assert sorted(ledger.rows) == [(1,), (2,)]


async def test_two_registries_starting_at_once_on_a_new_file(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'new' / 'cp.db'}"
    registries = [SQLRegistry(url), SQLRegistry(url)]
    await asyncio.gather(*(r.start() for r in registries))
    try:
        tenant = await registries[0].create(tenant_id=new_tenant_id(), slug="acme")
        assert await registries[1].lookup(TenantKey("slug", "acme")) == tenant
    finally:
        for r in registries:
            await r.close()


async def test_failing_migration_leaves_nothing_behind(conn: SQLiteConnection) -> None:
    nxt = len(MIGRATIONS) + 1
    broken = (*MIGRATIONS, Migration(nxt, "broken", ("CREATE TABLE extra (x)", "NOT SQL")))
    with pytest.raises(DatabaseError):
        await migrate(conn, migrations=broken)
    assert await applied_versions(conn) == {m.version for m in MIGRATIONS}
    assert "extra" not in await schema_names(conn, "table")
    fixed = (*MIGRATIONS, Migration(nxt, "fixed", ("CREATE TABLE extra (x)",)))
    assert await migrate(conn, migrations=fixed) == [nxt]


async def test_a_newer_schema_is_refused(conn: SQLiteConnection) -> None:
    future = Migration(len(MIGRATIONS) + 1, "future", ("SELECT 1",))
    await migrate(conn, migrations=(*MIGRATIONS, future))
    with pytest.raises(RegistryError, match="newer"):
        await migrate(conn)


async def test_event_kinds_of_the_first_release_get_one_spelling(conn: SQLiteConnection) -> None:
    # A control plane written before EventKind, with the dotted spellings of that release.
    assert await migrate(conn, migrations=MIGRATIONS[:1]) == [1]
    tenant_id = new_tenant_id()
    await conn.execute(
        "INSERT INTO tenants (id, slug, status, created_at, updated_at)"
        " VALUES (?, 'acme', 'active', 0, 0)",
        (tenant_id,),
    )
    old = ["created", "provisioning.database", "provisioning.schema", "credentials.rotated"]
    old.append("database.created_on_demand")
    for kind in old:
        await conn.execute(
            "INSERT INTO tenant_events (tenant_id, kind, detail, at) VALUES (?, ?, '{}', 0)",
            (tenant_id, kind),
        )
    assert await migrate(conn) == [2]
    kinds = await conn.execute("SELECT kind FROM tenant_events ORDER BY id")
    assert [row[0] for row in kinds.rows] == [
        EventKind.CREATED,
        EventKind.DATABASE_CREATED,
        EventKind.SCHEMA_APPLIED,
        EventKind.CREDENTIALS_ROTATED,
        EventKind.DATABASE_RECREATED,
    ]
