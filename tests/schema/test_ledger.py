"""The per-tenant ledger of applied migrations, and packages installed through the runtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tenant_middleware import InvalidIdentifier, ProvisioningError, Tenancy
from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.db.protocol import Connection, Executor, Value
from tenant_middleware.schema.ledger import (
    LEDGER_TABLE,
    applied_checksums,
    pending_migrations,
    remove_package,
    upgrade,
)
from tenant_middleware.schema.package import Migration, SchemaPackage
from tests.conftest import TenancyFactory

CORE = SchemaPackage(
    "core",
    (
        Migration(1, "create_items", sql="CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);"),
        Migration(2, "add_price", sql="ALTER TABLE items ADD COLUMN price INTEGER DEFAULT 0;"),
    ),
)
NOTES = SchemaPackage(
    "notes",
    (
        Migration(
            1,
            "create_notes",
            sql="CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
            " CREATE INDEX notes_body ON notes (body);",
        ),
    ),
    uninstall_sql="DROP INDEX IF EXISTS notes_body; DROP TABLE IF EXISTS notes;",
    optional=True,
)


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[Connection]:
    connection = await SQLiteConnection.open(tmp_path / "tenant.db")
    yield connection
    await connection.close()


async def tables(conn: Executor) -> set[str]:
    result = await conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(row[0]) for row in result.rows}


async def ledger(conn: Executor) -> list[tuple[Value, ...]]:
    result = await conn.execute(
        f"SELECT package, version, name FROM {LEDGER_TABLE} ORDER BY package, version"  # noqa: S608
    )
    return result.rows


async def test_upgrade_applies_in_order_and_records_each_step(conn: Connection) -> None:
    ticks = iter(range(100, 200))
    applied = await upgrade(conn, [CORE, NOTES], clock=lambda: float(next(ticks)))
    assert [str(step) for step in applied] == ["core@1", "core@2", "notes@1"]
    assert await ledger(conn) == [
        ("core", 1, "create_items"),
        ("core", 2, "add_price"),
        ("notes", 1, "create_notes"),
    ]
    times = await conn.execute(f"SELECT applied_at FROM {LEDGER_TABLE} ORDER BY applied_at")  # noqa: S608
    assert [row[0] for row in times.rows] == [100.0, 101.0, 102.0]
    assert {"items", "notes", LEDGER_TABLE} <= await tables(conn)
    await conn.execute("INSERT INTO items (name, price) VALUES ('a', 3)")
    assert await upgrade(conn, [CORE, NOTES]) == []
    assert await pending_migrations(conn, [CORE, NOTES]) == []


async def test_pending_lists_only_what_is_left(conn: Connection) -> None:
    first = SchemaPackage("core", CORE.migrations[:1])
    await upgrade(conn, [first])
    pending = await pending_migrations(conn, [CORE])
    assert [str(step) for step in pending] == ["core@2"]
    assert await applied_checksums(conn) == {("core", 1): CORE.migrations[0].checksum}


async def test_planning_reads_without_creating_the_ledger(conn: Connection) -> None:
    pending = await pending_migrations(conn, [CORE])
    assert [str(step) for step in pending] == ["core@1", "core@2"]
    assert await tables(conn) == set()  # a dry run leaves the database as it found it
    assert await applied_checksums(conn) == {}


async def test_a_changed_applied_migration_is_drift(conn: Connection) -> None:
    await upgrade(conn, [CORE])
    edited = SchemaPackage(
        "core",
        (
            Migration(1, "create_items", sql="CREATE TABLE items (id INTEGER PRIMARY KEY);"),
            *CORE.migrations[1:],
            Migration(3, "more", sql="CREATE TABLE more (x);"),
        ),
    )
    with pytest.raises(ProvisioningError, match=r"core@1 \(create_items\) was changed"):
        await upgrade(conn, [edited])
    assert "more" not in await tables(conn)  # drift stops the run before anything is applied


async def test_a_failing_migration_rolls_back_alone(conn: Connection) -> None:
    broken = SchemaPackage(
        "core",
        (
            CORE.migrations[0],
            Migration(2, "half", sql="CREATE TABLE half (x); INSERT INTO missing VALUES (1);"),
            Migration(3, "after", sql="CREATE TABLE after (x);"),
        ),
    )
    with pytest.raises(ProvisioningError, match=r"core@2 \(half\) failed: .*missing"):
        await upgrade(conn, [broken])
    assert await ledger(conn) == [("core", 1, "create_items")]
    assert await tables(conn) == {"items", LEDGER_TABLE}  # no `half`, no `after`


async def test_python_migrations_run_in_the_transaction_and_count_once(conn: Connection) -> None:
    calls: list[str] = []

    async def backfill(tx: Executor) -> None:
        calls.append("backfill")
        await tx.execute("INSERT INTO items (name) VALUES ('seeded')")

    package = SchemaPackage(
        "core", (*CORE.migrations, Migration(3, "backfill", function=backfill, checksum="b1"))
    )
    await upgrade(conn, [package])
    await upgrade(conn, [package])
    assert calls == ["backfill"]
    assert (await conn.execute("SELECT name FROM items")).rows == [("seeded",)]
    assert (await applied_checksums(conn))[("core", 3)] == "b1"


async def test_a_failing_python_migration_leaves_no_trace(conn: Connection) -> None:
    async def explode(tx: Executor) -> None:
        await tx.execute("CREATE TABLE partial (x)")
        raise RuntimeError("backfill broke")

    package = SchemaPackage("core", (Migration(1, "explode", function=explode, checksum="e1"),))
    with pytest.raises(ProvisioningError, match="backfill broke"):
        await upgrade(conn, [package])
    assert await tables(conn) == set()  # not even the ledger: the transaction rolled back


async def test_concurrent_upgrades_from_two_connections_apply_once(tmp_path: Path) -> None:
    calls = 0

    async def counted(tx: Executor) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)  # widen the race
        await tx.execute("CREATE TABLE counted (x)")

    package = SchemaPackage("core", (Migration(1, "counted", function=counted, checksum="c1"),))
    conns = [await SQLiteConnection.open(tmp_path / "shared.db") for _ in range(4)]
    try:
        results = await asyncio.gather(*(upgrade(c, [package]) for c in conns))
        assert sorted(len(applied) for applied in results) == [0, 0, 0, 1]
        assert calls == 1
        assert await ledger(conns[0]) == [("core", 1, "counted")]
    finally:
        for c in conns:
            await c.close()


async def test_remove_package_keeps_or_drops_tables(conn: Connection) -> None:
    await upgrade(conn, [CORE, NOTES])
    await remove_package(conn, NOTES, drop_tables=False)
    assert "notes" in await tables(conn)
    assert [row[0] for row in await ledger(conn)] == ["core", "core"]
    await upgrade(conn, [CORE])
    await conn.execute("DROP TABLE notes")
    await upgrade(conn, [NOTES])
    await remove_package(conn, NOTES, drop_tables=True)
    assert "notes" not in await tables(conn)
    index = await conn.execute("SELECT name FROM sqlite_master WHERE name = 'notes_body'")
    assert index.rows == []
    assert [row[0] for row in await ledger(conn)] == ["core", "core"]


# -- through the runtime ---------------------------------------------------------------------


async def file_tables(path: Path) -> set[str]:
    conn = await SQLiteConnection.open(path)
    try:
        return await tables(conn)
    finally:
        await conn.close()


async def installations(tenancy: Tenancy, tenant_id: str) -> dict[str, tuple[str, str]]:
    """The control plane's view: package -> (version, status)."""
    found = await tenancy.registry.installations(tenant_id)
    return {item.package: (item.version, item.status) for item in found}


async def test_install_and_uninstall_an_optional_package(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy(packages=[CORE, NOTES])
    acme = await tenancy.provision("acme")
    path = tenancy.provisioner.locate(acme.id).path
    assert path is not None
    assert "notes" not in await file_tables(path)  # optional: not installed
    assert await installations(tenancy, acme.id) == {"core": ("2", "installed")}

    await tenancy.install_package("acme", "notes")
    assert "notes" in await file_tables(path)
    installed = await installations(tenancy, acme.id)
    assert installed == {"core": ("2", "installed"), "notes": ("1", "installed")}
    async with tenancy.connect(acme) as db:
        await db.execute("INSERT INTO notes (body) VALUES ('kept')")

    await tenancy.uninstall_package("acme", "notes")  # tables stay by default
    assert "notes" in await file_tables(path)
    installed = await installations(tenancy, acme.id)
    assert installed["notes"] == ("0", "uninstalled")
    async with tenancy.connect(acme) as db:
        assert (await db.execute("SELECT body FROM notes")).rows == [("kept",)]
        assert [r[0] for r in await ledger(db)] == ["core", "core"]
        await db.execute("DROP TABLE notes")

    await tenancy.install_package("acme", "notes")
    await tenancy.uninstall_package("acme", "notes", drop_tables=True)
    assert "notes" not in await file_tables(path)
    installed = await installations(tenancy, acme.id)
    assert installed == {"core": ("2", "installed"), "notes": ("0", "uninstalled")}


async def test_installed_optional_package_is_part_of_later_migrations(
    make_tenancy: TenancyFactory,
) -> None:
    old = make_tenancy(packages=[CORE, NOTES])
    await old.provision("acme")
    await old.provision("globex")
    await old.install_package("acme", "notes")
    await old.aclose()

    notes_v2 = SchemaPackage(
        "notes",
        (*NOTES.migrations, Migration(2, "tags", sql="ALTER TABLE notes ADD COLUMN tags TEXT;")),
        uninstall_sql=NOTES.uninstall_sql,
        optional=True,
    )
    upgraded = make_tenancy(registry=old.registry, packages=[CORE, notes_v2])
    report = await upgraded.migrate()
    outcomes = {r.slug: (r.outcome, r.steps) for r in report.results}
    assert outcomes == {"acme": ("migrated", ("notes@2",)), "globex": ("up_to_date", ())}


async def test_unknown_package_names_are_refused(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy(packages=[CORE])
    await tenancy.provision("acme")
    with pytest.raises(InvalidIdentifier, match="no schema package"):
        await tenancy.install_package("acme", "nope")
    with pytest.raises(InvalidIdentifier, match="no schema package"):
        await tenancy.uninstall_package("acme", "nope")
