"""Fleet migrations over many tenants, plans, status rules, and lazy migration under a race."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyMiddleware, TenantContext, TenantStatus, tenant_db
from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.db.protocol import Executor
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.schema.fleet import TenantMigrationResult, run_fleet
from tenant_middleware.schema.ledger import LEDGER_TABLE
from tenant_middleware.schema.package import Migration, SchemaPackage
from tests.conftest import TenancyFactory, client_for

V1 = Migration(1, "items", sql="CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);")
V2 = Migration(
    2,
    "tags",
    sql="CREATE TABLE tags (item_id INTEGER REFERENCES items (id), tag TEXT NOT NULL);",
)
APP_V1 = SchemaPackage("app", (V1,))
APP_V2 = SchemaPackage("app", (V1, V2))


def path_of(tenancy: Tenancy, tenant: TenantContext) -> Path:
    path = tenancy.provisioner.locate(tenant.id).path
    assert path is not None
    return path


async def run_sql(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = await SQLiteConnection.open(path)
    try:
        return (await conn.execute(sql)).rows
    finally:
        await conn.close()


async def ledger_of(path: Path) -> list[tuple[Any, ...]]:
    return await run_sql(
        path,
        f"SELECT package, version FROM {LEDGER_TABLE} ORDER BY package, version",  # noqa: S608
    )


async def installation(tenancy: Tenancy, tenant: TenantContext) -> tuple[str, str]:
    (item,) = await tenancy.registry.installations(tenant.id)
    return item.version, item.status


async def test_fleet_of_200_with_one_broken_tenant_reports_it_and_a_rerun_finishes(
    make_tenancy: TenancyFactory,
) -> None:
    registry = MemoryRegistry()
    old = make_tenancy(registry=registry, packages=[APP_V1])
    slugs = [f"tenant{i:03d}" for i in range(200)]
    tenants = await asyncio.gather(*(old.provision(slug) for slug in slugs))
    await old.aclose()
    broken = tenants[137]
    # Someone created a table the new migration wants to create: its CREATE TABLE fails.
    await run_sql(path_of(old, broken), "CREATE TABLE tags (x)")

    new = make_tenancy(registry=registry, packages=[APP_V2])
    seen: list[TenantMigrationResult] = []
    report = await new.migrate(concurrency=8, on_result=seen.append)

    assert len(report.results) == 200
    assert seen == list(report.results)
    assert {r.slug for r in report.results} == set(slugs)
    assert (report.count("migrated"), report.count("failed")) == (199, 1)
    assert not report.ok
    (failure,) = report.failed
    assert (failure.tenant_id, failure.slug) == (broken.id, broken.slug)
    assert failure.error is not None
    assert "app@2 (tags) failed" in failure.error
    assert "tags already exists" in failure.error
    assert all(r.steps == ("app@2",) for r in report.results if r.outcome == "migrated")
    for tenant in tenants:
        expected = [("app", 1)] if tenant is broken else [("app", 1), ("app", 2)]
        assert await ledger_of(path_of(new, tenant)) == expected
    assert await installation(new, broken) == ("1", "failed")
    assert await installation(new, tenants[0]) == ("2", "installed")

    await run_sql(path_of(new, broken), "DROP TABLE tags")
    rerun = await new.migrate(concurrency=8)
    assert (rerun.count("migrated"), rerun.count("up_to_date"), rerun.count("failed")) == (
        1,
        199,
        0,
    )
    (finished,) = [r for r in rerun.results if r.outcome == "migrated"]
    assert (finished.slug, finished.steps) == (broken.slug, ("app@2",))
    assert await ledger_of(path_of(new, broken)) == [("app", 1), ("app", 2)]
    assert await installation(new, broken) == ("2", "installed")
    assert (await new.migrate(concurrency=8)).count("up_to_date") == 200


async def test_dry_run_plans_without_applying(make_tenancy: TenancyFactory) -> None:
    registry = MemoryRegistry()
    old = make_tenancy(registry=registry, packages=[APP_V1])
    tenants = [await old.provision(f"t{i}") for i in range(5)]
    await old.aclose()
    new = make_tenancy(registry=registry, packages=[APP_V2])

    plan = await new.migrate(dry_run=True)
    assert sorted((r.slug, r.outcome, r.steps) for r in plan.results) == [
        (f"t{i}", "planned", ("app@2",)) for i in range(5)
    ]
    for tenant in tenants:
        path = path_of(new, tenant)
        assert await ledger_of(path) == [("app", 1)]
        assert await run_sql(path, "SELECT name FROM sqlite_master WHERE name = 'tags'") == []
        assert await installation(new, tenant) == ("1", "installed")

    assert (await new.migrate()).count("migrated") == 5
    replan = await new.migrate(dry_run=True)
    assert {r.outcome for r in replan.results} == {"up_to_date"}


async def test_suspended_tenants_are_migrated_archived_failed_and_unbuilt_skipped(
    make_tenancy: TenancyFactory,
) -> None:
    registry = MemoryRegistry()
    old = make_tenancy(registry=registry, packages=[APP_V1])
    active = await old.provision("active")
    suspended = await old.provision("suspended")
    archived = await old.provision("archived")
    await old.suspend("suspended")
    await old.archive("archived")
    await registry.create(
        tenant_id="0c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5", slug="failed", status=TenantStatus.FAILED
    )
    await registry.create(
        tenant_id="1c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5",
        slug="building",
        status=TenantStatus.PROVISIONING,
    )
    unbuilt = await old.provision("unbuilt")
    await old.provisioner.destroy(old.provisioner.locate(unbuilt.id))  # its file is elsewhere
    await old.aclose()

    new = make_tenancy(registry=registry, packages=[APP_V2])
    report = await new.migrate()
    outcomes = {r.slug: r.outcome for r in report.results}
    assert outcomes == {
        "active": "migrated",
        "suspended": "migrated",
        "archived": "skipped",
        "failed": "skipped",
        "building": "skipped",
        "unbuilt": "skipped",
    }
    assert await ledger_of(path_of(new, suspended)) == [("app", 1), ("app", 2)]
    assert await ledger_of(path_of(new, archived)) == [("app", 1)]
    assert await ledger_of(path_of(new, active)) == [("app", 1), ("app", 2)]
    assert not path_of(new, unbuilt).exists()  # a fleet run never creates databases


async def test_migrate_named_tenants_by_slug_or_id(make_tenancy: TenancyFactory) -> None:
    registry = MemoryRegistry()
    old = make_tenancy(registry=registry, packages=[APP_V1])
    acme, globex, initech = [await old.provision(s) for s in ("acme", "globex", "initech")]
    await old.aclose()
    new = make_tenancy(registry=registry, packages=[APP_V2])
    report = await new.migrate(tenants=["acme", globex.id])
    assert sorted(r.slug for r in report.results) == ["acme", "globex"]
    assert await ledger_of(path_of(new, initech)) == [("app", 1)]
    assert await ledger_of(path_of(new, acme)) == [("app", 1), ("app", 2)]


async def test_an_edited_applied_migration_fails_that_tenant_as_drift(
    make_tenancy: TenancyFactory,
) -> None:
    registry = MemoryRegistry()
    old = make_tenancy(registry=registry, packages=[APP_V1])
    await old.provision("acme")
    await old.aclose()
    edited = SchemaPackage(
        "app", (Migration(1, "items", sql="CREATE TABLE items (id INTEGER PRIMARY KEY);"), V2)
    )
    new = make_tenancy(registry=registry, packages=[edited])
    report = await new.migrate()
    (result,) = report.results
    assert result.outcome == "failed"
    assert result.error is not None
    assert "app@1 (items) was changed after it was applied" in result.error


async def test_a_lazy_migration_raced_by_50_first_requests_is_applied_once(
    make_tenancy: TenancyFactory,
) -> None:
    registry = MemoryRegistry()
    old = make_tenancy(registry=registry, packages=[APP_V1])
    acme = await old.provision("acme")
    await old.aclose()
    calls: list[str] = []

    async def add_tags(tx: Executor) -> None:
        calls.append("add_tags")
        await asyncio.sleep(0.01)  # a slow migration keeps the race open
        await tx.execute("CREATE TABLE tags (item_id INTEGER, tag TEXT NOT NULL)")
        await tx.execute("INSERT INTO tags VALUES (0, 'migrated')")

    lazy = SchemaPackage("app", (V1, Migration(2, "tags", function=add_tags, checksum="tags-1")))

    async def read_tags(request: Request) -> JSONResponse:
        async with tenant_db() as db:
            tags = await db.execute("SELECT tag FROM tags")
        return JSONResponse([row[0] for row in tags.rows])

    # Two app instances on the same control plane and files, both on the new release.
    instances = [make_tenancy(registry=registry, packages=[lazy]) for _ in range(2)]
    apps = [
        Starlette(
            routes=[Route("/tags", read_tags)],
            middleware=[Middleware(TenancyMiddleware, tenancy=instance)],
        )
        for instance in instances
    ]
    clients = [client_for(app, "acme.example.com") for app in apps]
    try:
        responses = await asyncio.gather(*(clients[i % 2].get("/tags") for i in range(50)))
    finally:
        for client in clients:
            await client.aclose()

    assert [r.status_code for r in responses] == [200] * 50
    assert {tuple(r.json()) for r in responses} == {("migrated",)}
    assert calls == ["add_tags"]
    ledger = await run_sql(
        path_of(instances[0], acme),
        f"SELECT package, version, checksum FROM {LEDGER_TABLE} ORDER BY version",  # noqa: S608
    )
    assert ledger == [("app", 1, V1.checksum), ("app", 2, "tags-1")]
    assert [instance.stats().pools.pools_created for instance in instances] == [1, 1]
    assert await installation(instances[0], acme) == ("2", "installed")


# -- run_fleet on its own ----------------------------------------------------------------------


def fake_tenants(count: int) -> list[TenantContext]:
    return [
        TenantContext(
            id=f"00000000-0000-4000-8000-{i:012d}", slug=f"t{i}", status=TenantStatus.ACTIVE
        )
        for i in range(count)
    ]


async def test_run_fleet_bounds_concurrency_and_records_failures() -> None:
    running = peak = 0

    async def migrate_one(tenant: TenantContext) -> TenantMigrationResult:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.001)
            if tenant.slug in ("t3", "t17"):
                raise RuntimeError(f"{tenant.slug} is broken")
            return TenantMigrationResult(tenant.id, tenant.slug, "migrated", ("app@2",))
        finally:
            running -= 1

    reported: list[str] = []
    report = await run_fleet(
        fake_tenants(40), migrate_one, concurrency=3, on_result=lambda r: reported.append(r.slug)
    )
    assert peak == 3
    assert len(report.results) == 40
    assert sorted(reported) == sorted(f"t{i}" for i in range(40))
    assert sorted((r.slug, r.error) for r in report.failed) == [
        ("t17", "t17 is broken"),
        ("t3", "t3 is broken"),
    ]
    assert report.count("migrated") == 38


async def test_run_fleet_needs_a_positive_concurrency() -> None:
    async def migrate_one(tenant: TenantContext) -> TenantMigrationResult:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="concurrency"):
        await run_fleet(fake_tenants(1), migrate_one, concurrency=0)
    report = await run_fleet([], migrate_one, concurrency=4)
    assert (report.results, report.ok) == ((), True)


def corrupt(path: Path) -> None:
    """Overwrite a database file with bytes SQLite cannot read."""
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.write_bytes(b"not a database" * 512)


async def test_a_no_op_migrate_answers_from_the_installation_records(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[APP_V1])
    tenants = [await tenancy.provision(f"t{i}") for i in range(5)]
    await tenancy.pools.aclose()
    # The databases are not opened: one that could not even be read still counts as recorded.
    corrupt(path_of(tenancy, tenants[0]))
    report = await tenancy.migrate()
    assert report.count("up_to_date") == 5
    verified = await tenancy.migrate(verify=True)
    assert [r.slug for r in verified.failed] == ["t0"]
    assert verified.count("up_to_date") == 4


async def test_a_tenant_whose_records_lag_is_opened_and_its_records_caught_up(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[APP_V1])
    acme = await tenancy.provision("acme")
    await tenancy.registry.set_installation(acme.id, "app", "0", "installed")
    report = await tenancy.migrate()
    assert [r.outcome for r in report.results] == ["up_to_date"]  # opened: its ledger has it
    assert await installation(tenancy, acme) == ("1", "installed")
    await tenancy.pools.aclose()
    corrupt(path_of(tenancy, acme))
    assert [r.outcome for r in (await tenancy.migrate()).results] == ["up_to_date"]


async def test_a_new_package_version_is_applied_though_the_records_were_current(
    make_tenancy: TenancyFactory,
) -> None:
    registry = MemoryRegistry()
    old = make_tenancy(registry=registry, packages=[APP_V1])
    acme = await old.provision("acme")
    await old.aclose()
    new = make_tenancy(registry=registry, packages=[APP_V2])
    report = await new.migrate()
    assert [(r.outcome, r.steps) for r in report.results] == [("migrated", ("app@2",))]
    assert await installation(new, acme) == ("2", "installed")
    assert (await new.migrate()).count("up_to_date") == 1
