"""Alembic revisions as a schema package: a fleet of 200, cascades kept, drift, the trap."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest

from tenant_middleware import ConfigError, Migration, ProvisioningError, SchemaPackage, Tenancy
from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.schema.ledger import upgrade
from tests.conftest import TenancyFactory

SCRIPTS = Path(__file__).parent / "alembic_app"


async def run_sql(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = await SQLiteConnection.open(path)
    try:
        return (await conn.execute(sql)).rows
    finally:
        await conn.close()


def path_of(tenancy: Tenancy, tenant_id: str) -> Path:
    path = tenancy.provisioner.locate(tenant_id).path
    assert path is not None
    return path


def test_revisions_load_oldest_first_with_file_checksums() -> None:
    package = SchemaPackage.from_alembic("projects", SCRIPTS)
    assert [(m.version, m.name) for m in package.migrations] == [(1, "a1"), (2, "b2"), (3, "c3")]
    assert all(len(m.checksum) == 64 and not m.foreign_keys for m in package.migrations)
    assert len({m.checksum for m in package.migrations}) == 3


def test_a_branched_history_is_refused(tmp_path: Path) -> None:
    shutil.copytree(SCRIPTS, tmp_path / "scripts")
    branch = (tmp_path / "scripts/versions/c3_rebuild_projects.py").read_text()
    (tmp_path / "scripts/versions/d4_other.py").write_text(
        branch.replace('revision = "c3"', 'revision = "d4"')
    )
    with pytest.raises(ConfigError, match="heads"):
        SchemaPackage.from_alembic("projects", tmp_path / "scripts")
    with pytest.raises(ConfigError, match="not a directory"):
        SchemaPackage.from_alembic("projects", tmp_path / "missing")


async def test_a_fleet_of_200_at_concurrency_8_keeps_every_child_and_reruns_as_no_op(
    make_tenancy: TenancyFactory,
) -> None:
    registry = MemoryRegistry()
    old = make_tenancy(registry=registry)
    tenants = await asyncio.gather(*(old.provision(f"t{i:03d}") for i in range(200)))
    await old.aclose()
    broken = tenants[77]
    await run_sql(path_of(old, broken.id), "CREATE TABLE projects (x)")  # revision a1 fails

    new = make_tenancy(registry=registry, packages=[SchemaPackage.from_alembic("p", SCRIPTS)])
    report = await new.migrate(concurrency=8)
    assert (report.count("migrated"), report.count("failed")) == (199, 1)
    (failure,) = report.failed
    assert failure.slug == broken.slug
    assert failure.error is not None
    assert "already exists" in failure.error
    for tenant in tenants:
        if tenant is broken:
            continue
        path = path_of(new, tenant.id)
        assert await run_sql(path, "SELECT count(*) FROM tasks") == [(3,)]
        assert await run_sql(path, "SELECT id, name, rank FROM projects ORDER BY id") == [
            (1, "apollo", 0),
            (2, "zeus", 0),
        ]
        assert await run_sql(path, "PRAGMA foreign_keys") == [(1,)]
    (installation,) = await new.registry.installations(broken.id)
    assert (installation.version, installation.status) == ("0", "failed")

    rerun = await new.migrate(concurrency=8)
    assert (rerun.count("up_to_date"), rerun.count("failed")) == (199, 1)
    await run_sql(path_of(new, broken.id), "DROP TABLE projects")
    resumed = await new.migrate(concurrency=8)
    assert (resumed.count("migrated"), resumed.count("up_to_date")) == (1, 199)
    assert await run_sql(path_of(new, broken.id), "SELECT count(*) FROM tasks") == [(3,)]


async def test_with_foreign_keys_enforced_the_rebuild_would_delete_the_children(
    tmp_path: Path,
) -> None:
    package = SchemaPackage.from_alembic("p", SCRIPTS)
    enforced = SchemaPackage(
        "p", tuple(dataclasses.replace(m, foreign_keys=True) for m in package.migrations)
    )
    results: dict[str, int] = {}
    for label, target in (("unenforced", package), ("enforced", enforced)):
        conn = await SQLiteConnection.open(tmp_path / f"{label}.db")
        try:
            await upgrade(conn, [target])
            results[label] = int((await conn.execute("SELECT count(*) FROM tasks")).scalar() or 0)
            assert (await conn.execute("PRAGMA foreign_keys")).scalar() == 1
        finally:
            await conn.close()
    assert results == {"unenforced": 3, "enforced": 0}


async def test_an_edited_applied_revision_is_drift(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    shutil.copytree(SCRIPTS, scripts)
    conn = await SQLiteConnection.open(tmp_path / "t.db")
    try:
        await upgrade(conn, [SchemaPackage.from_alembic("p", scripts)])
        seed = scripts / "versions/b2_seed.py"
        seed.write_text(seed.read_text().replace('"thunder"', '"lightning"'))
        with pytest.raises(ProvisioningError, match="changed after it was applied"):
            await upgrade(conn, [SchemaPackage.from_alembic("p", scripts)])
    finally:
        await conn.close()


async def test_a_migration_leaving_dangling_foreign_keys_is_rolled_back(tmp_path: Path) -> None:
    package = SchemaPackage.from_alembic("p", SCRIPTS)
    dangling = SchemaPackage(
        "q",
        (
            Migration(
                1, "dangle", sql="INSERT INTO tasks VALUES (9, 404, 'orphan');", foreign_keys=False
            ),
        ),
    )
    conn = await SQLiteConnection.open(tmp_path / "t.db")
    try:
        await upgrade(conn, [package])
        with pytest.raises(ProvisioningError, match="violating foreign keys"):
            await upgrade(conn, [dangling])
        assert (await conn.execute("SELECT count(*) FROM tasks")).scalar() == 3
        assert (await conn.execute("PRAGMA foreign_keys")).scalar() == 1
    finally:
        await conn.close()
