"""Preparing a tenant's pool (`TenantDatabases.prepare`) with what this runtime remembers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tenant_middleware import Tenancy, TenancyConfig
from tenant_middleware.naming import local_location


def _identity(path: Path) -> tuple[object, ...] | None:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT tenant_id, slug, plan FROM _tenancy_identity").fetchone()
    return None if row is None else tuple(row)


async def test_a_database_recreated_under_a_running_runtime_records_its_identity_again(
    tmp_path: Path,
) -> None:
    config = TenancyConfig(data_dir=tmp_path / "data", cache_sync_interval=0)
    async with Tenancy(config) as tenancy:
        acme = await tenancy.provision("acme", plan="pro")
        path = local_location(config.data_dir, acme.id).path
        assert path is not None
        async with tenancy.connect(acme) as db:  # the identity is checked and remembered
            await db.execute("CREATE TABLE notes (body TEXT)")
            await db.execute("INSERT INTO notes VALUES ('kept?')")
        await tenancy.pools.discard(acme.id)
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        async with tenancy.connect(acme) as db:
            tables = await db.execute("SELECT name FROM sqlite_master WHERE name = 'notes'")
            assert tables.rows == []  # a new, empty file
        assert _identity(path) == (acme.id, "acme", "pro")
        kinds = [str(event.kind) for event in await tenancy.events(acme.id)]
        assert "database_recreated" in kinds


async def test_a_pool_reopened_after_its_identity_row_was_emptied_by_a_migration_restores_it(
    tmp_path: Path,
) -> None:
    # A schema change (any DDL) is what makes the remembered check stale: here a table made
    # and dropped next to the emptied identity row, by another process.
    config = TenancyConfig(data_dir=tmp_path / "data", cache_sync_interval=0)
    async with Tenancy(config) as tenancy:
        acme = await tenancy.provision("acme", plan="pro")
        path = local_location(config.data_dir, acme.id).path
        assert path is not None
        async with tenancy.connect(acme):
            pass
        await tenancy.pools.discard(acme.id)
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM _tenancy_identity")
            db.execute("CREATE TABLE scratch (x)")
            db.execute("DROP TABLE scratch")
        assert _identity(path) is None
        async with tenancy.connect(acme):
            pass
        assert _identity(path) == (acme.id, "acme", "pro")
