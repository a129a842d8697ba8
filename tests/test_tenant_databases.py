"""Each request reaches its own tenant's database: pooled routing through real ASGI apps."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tenant_middleware import (
    NoTenantContext,
    Tenancy,
    TenantNotFound,
    TenantStatus,
    TenantUnavailable,
    current_tenant_or_none,
    tenant_db,
    tenant_scope,
)
from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.db._sqlite.threads import LIFECYCLE_THREADS, MAX_THREADS, THREAD_NAME
from tenant_middleware.naming import TENANTS_DIRECTORY, database_name, local_location
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.schema.ledger import LEDGER_TABLE
from tests.conftest import ROWS, ROWS_V2, TenancyFactory, client_for, eventually, rows, rows_app


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def sqlite_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(THREAD_NAME)]


def tenants_dir(tenancy: Tenancy) -> Path:
    return tenancy.config.data_dir / TENANTS_DIRECTORY


def files_in(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


async def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read a tenant's file directly, around the runtime."""
    conn = await SQLiteConnection.open(path)
    try:
        return (await conn.execute(sql)).rows
    finally:
        await conn.close()


def app_for(tenancy: Tenancy, *routes: Route) -> Starlette:
    return rows_app(tenancy, *routes)


async def test_5000_interleaved_requests_over_100_tenants_write_only_their_own_database(
    make_tenancy: TenancyFactory,
) -> None:
    baseline_fds = open_fds()
    tenancy = make_tenancy(
        packages=[ROWS],
        # One connection per tenant keeps the run light; the wait is generous because all
        # 5,000 requests are queued at once and this is not a latency test.
        pool_max_connections_per_tenant=1,
        pool_max_connections=100,
        pool_acquire_timeout=120,
    )
    slugs = [f"tenant{i:03d}" for i in range(100)]
    tenants = await asyncio.gather(*(tenancy.provision(slug) for slug in slugs))
    # Interleaved: consecutive requests name different tenants, in a scrambled order.
    plan = [(n, slugs[(n * 37) % len(slugs)]) for n in range(5000)]

    async with client_for(app_for(tenancy)) as client:

        async def one(n: int, slug: str) -> httpx.Response:
            return await client.get(
                "/write", params={"t": slug, "n": n}, headers={"Host": f"{slug}.example.com"}
            )

        responses = await asyncio.gather(*(one(n, slug) for n, slug in plan))

    errors = [(slug, r.status_code) for (_, slug), r in zip(plan, responses, strict=True)]
    assert [e for e in errors if e[1] != 200] == []
    for (_, slug), response in zip(plan, responses, strict=True):
        assert response.json() == {"slug": slug, "seen": [slug]}
    stats = tenancy.stats().pools
    assert (stats.pools_created, stats.timeouts, stats.in_use) == (100, 0, 0)

    expected: dict[str, set[int]] = {slug: set() for slug in slugs}
    for n, slug in plan:
        expected[slug].add(n)
    for tenant in tenants:
        path = local_location(tenancy.config.data_dir, tenant.id).path
        assert path is not None
        stored = await query(path, "SELECT tenant, seq FROM rows")
        assert {row[0] for row in stored} == {tenant.slug}
        assert sorted(row[1] for row in stored) == sorted(expected[tenant.slug])

    assert tenancy.stats().pools.connections_open == 100  # one per tenant, still open
    # ... on a bounded set of threads that all connections share, not one thread each.
    assert 0 < len(sqlite_threads()) <= MAX_THREADS + LIFECYCLE_THREADS  # statements; open/close
    await tenancy.aclose()
    assert tenancy.stats().pools.connections_open == 0
    assert open_fds() <= baseline_fds + 2


async def test_100_concurrent_read_modify_write_transactions_lose_no_update(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[ROWS])
    acme = await tenancy.provision("acme")
    async with client_for(app_for(tenancy), "acme.example.com") as client:
        responses = await asyncio.gather(*(client.get("/increment") for _ in range(100)))
    assert [r.status_code for r in responses] == [200] * 100
    # Every transaction saw the previous one's write: the values written are 1..100.
    assert sorted(r.json()["wrote"] for r in responses) == list(range(1, 101))
    async with tenancy.connect(acme) as db:
        assert (await db.execute("SELECT value FROM counter")).scalar() == 100
    assert tenancy.stats().pools.in_use == 0


async def test_requests_over_many_tenants_under_small_caps_all_get_a_connection(
    make_tenancy: TenancyFactory,
) -> None:
    """All at once, 60 tenants through 16 pools and 8 connections; some callers give up."""
    tenancy = make_tenancy(
        packages=[ROWS],
        pool_max_pools=16,
        pool_max_connections=8,
        pool_max_connections_per_tenant=2,
        pool_acquire_timeout=30,  # generous: a lost wake-up shows as a timeout, not slowness
    )
    tenants = [await tenancy.provision(f"t{i:02d}") for i in range(60)]
    peak_pools = peak_connections = 0

    async def visit(n: int) -> None:
        nonlocal peak_pools, peak_connections
        tenant = tenants[(n * 7) % len(tenants)]
        async with tenancy.connect(tenant) as db:
            await db.execute("INSERT INTO rows (tenant, seq) VALUES (?, ?)", (tenant.slug, n))
            stats = tenancy.stats().pools
            peak_pools = max(peak_pools, stats.open_pools)
            peak_connections = max(peak_connections, stats.connections_open)
            if n % 3 == 0:
                await asyncio.sleep(0.001)

    tasks = [asyncio.ensure_future(visit(n)) for n in range(1500)]
    await asyncio.sleep(0.02)
    cancelled = {n for n in range(0, 1500, 25) if tasks[n].cancel()}
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for n, r in enumerate(results) if n not in cancelled and r is not None]
    assert errors == []
    assert (peak_pools, peak_connections) == (16, 8)
    stats = tenancy.stats().pools
    assert (stats.in_use, stats.waiting, stats.timeouts) == (0, 0, 0)
    assert stats.connections_open == stats.idle <= 8
    written = 0
    for tenant in tenants:
        async with tenancy.connect(tenant) as db:
            seen = await db.execute("SELECT DISTINCT tenant FROM rows")
            assert seen.rows in ([], [(tenant.slug,)])
            written += int((await db.execute("SELECT count(*) FROM rows")).scalar() or 0)
    assert 1500 - len(cancelled) <= written <= 1500  # a cancelled one may have written first
    assert all(isinstance(results[n], asyncio.CancelledError) for n in cancelled)


async def hold_connection(request: Request) -> Response:
    async with tenant_db():
        request.app.state.held.set()
        await request.app.state.release.wait()
    return Response("held")


async def quick(request: Request) -> Response:
    async with tenant_db() as db:
        await db.execute("SELECT 1")
    return Response("quick")


async def test_saturated_pool_refuses_within_the_configured_wait(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(
        packages=[ROWS],
        pool_max_connections_per_tenant=1,
        pool_acquire_timeout=0.2,
        retry_after=7,
    )
    acme = await tenancy.provision("acme")
    loop = asyncio.get_running_loop()
    async with tenancy.connect(acme):
        started = loop.time()
        with pytest.raises(TenantUnavailable) as refused:
            async with tenancy.connect(acme):
                pass
        waited = loop.time() - started
    assert 0.15 <= waited < 0.2 + 2.0
    assert refused.value.retry_after == 7
    async with tenancy.connect(acme) as db:  # free again once the holder is done
        assert (await db.execute("SELECT value FROM counter")).scalar() == 0
    stats = tenancy.stats().pools
    assert (stats.timeouts, stats.in_use, stats.waiting) == (1, 0, 0)


async def test_saturated_pool_answers_503_through_the_http_app(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(
        packages=[ROWS],
        pool_max_connections_per_tenant=1,
        pool_acquire_timeout=0.2,
        retry_after=7,
    )
    await tenancy.provision("acme")
    app = app_for(tenancy, Route("/hold", hold_connection), Route("/quick", quick))
    app.state.held, app.state.release = asyncio.Event(), asyncio.Event()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(transport=transport, base_url="http://acme.example.com") as c:
        holder = asyncio.ensure_future(c.get("/hold"))
        await app.state.held.wait()
        started = loop.time()
        refused = await c.get("/quick")
        waited = loop.time() - started
        app.state.release.set()
        assert (await holder).status_code == 200
        assert (await c.get("/quick")).status_code == 200
    assert waited < 0.2 + 2.0
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "tenant_unavailable"
    assert refused.headers["retry-after"] == "7"


async def test_a_handler_that_raises_still_returns_its_connection(
    make_tenancy: TenancyFactory,
) -> None:
    async def boom(request: Request) -> Response:
        async with tenant_db() as db:
            await db.execute("INSERT INTO rows (tenant, seq) VALUES ('acme', 1)")
            raise RuntimeError("handler failed")

    tenancy = make_tenancy(packages=[ROWS], pool_max_connections_per_tenant=1)
    await tenancy.provision("acme")
    app = app_for(tenancy, Route("/boom", boom), Route("/rows", rows))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://acme.example.com") as c:
        for _ in range(3):  # with one connection, a leaked lease would hang the next request
            assert (await c.get("/boom")).status_code == 500
        assert (await c.get("/rows")).json() == [["acme", 1]] * 3
    stats = tenancy.stats().pools
    assert (stats.in_use, stats.idle, stats.connections_opened) == (0, 1, 1)
    assert current_tenant_or_none() is None


async def test_routing_provisioning_migrations_and_deletion_use_one_database(
    make_tenancy: TenancyFactory,
) -> None:
    registry = MemoryRegistry()
    tenancy = make_tenancy(registry=registry, packages=[ROWS])
    acme = await tenancy.provision("acme")
    globex = await tenancy.provision("globex")
    location = local_location(tenancy.config.data_dir, acme.id)
    assert location == tenancy.provisioner.locate(acme.id)
    assert location.path == tenants_dir(tenancy) / f"{database_name(acme.id)}.db"
    assert location.name == "t-" + acme.id.replace("-", "")
    assert location.path is not None
    assert location.path.exists()  # provisioning created exactly this file

    async with client_for(app_for(tenancy), "acme.example.com") as client:
        assert (await client.get("/write", params={"t": "acme", "n": 1})).status_code == 200
    assert await query(location.path, "SELECT tenant, seq FROM rows") == [("acme", 1)]

    # A new release with a second migration: the fleet run migrates the same file.
    await tenancy.aclose()
    upgraded = make_tenancy(registry=registry, packages=[ROWS_V2])
    report = await upgraded.migrate(tenants=["acme"])
    assert [(r.slug, r.outcome, r.steps) for r in report.results] == [
        ("acme", "migrated", ("app@2",))
    ]
    assert await query(location.path, f"SELECT package, version FROM {LEDGER_TABLE}") == [  # noqa: S608
        ("app", 1),
        ("app", 2),
    ]
    async with client_for(app_for(upgraded), "acme.example.com") as client:
        assert (await client.get("/rows")).json() == [["acme", 1]]
    async with upgraded.connect(acme) as db:
        await db.execute("UPDATE rows SET note = 'migrated here'")
    assert await query(location.path, "SELECT note FROM rows") == [("migrated here",)]

    before = files_in(tenants_dir(upgraded))
    await upgraded.delete(acme.id, destroy_data=True)
    after = files_in(tenants_dir(upgraded))
    assert location.path.name in before
    assert {name for name in before - after if name.endswith(".db")} == {location.path.name}
    assert all(name.startswith(database_name(globex.id)) for name in after)
    assert not any(name.startswith(location.name) for name in after)


async def test_a_tenant_whose_database_vanished_gets_it_back_on_first_request(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[ROWS])
    acme = await tenancy.provision("acme")
    location = tenancy.provisioner.locate(acme.id)
    assert location.path is not None
    await tenancy.provisioner.destroy(location)  # a lost disk, a new app instance
    assert not location.path.exists()

    async with client_for(app_for(tenancy), "acme.example.com") as client:
        assert (await client.get("/write", params={"t": "acme", "n": 5})).status_code == 200
        assert (await client.get("/rows")).json() == [["acme", 5]]
    assert location.path.exists()
    ledger = await query(location.path, f"SELECT package, version FROM {LEDGER_TABLE}")  # noqa: S608
    assert ledger == [("app", 1)]
    kinds = [str(event.kind) for event in await tenancy.events(acme.id)]
    assert kinds.count("database_recreated") == 1
    assert (await tenancy.get(acme.id)).status is TenantStatus.ACTIVE


async def test_delete_without_destroy_data_archives_and_keeps_the_file(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[ROWS])
    acme = await tenancy.provision("acme")
    path = tenancy.provisioner.locate(acme.id).path
    assert path is not None
    app = app_for(tenancy)
    async with client_for(app, "acme.example.com") as client:
        assert (await client.get("/write", params={"t": "acme", "n": 1})).status_code == 200
        assert tenancy.stats().pools.open_pools == 1
        await tenancy.delete("acme")
        assert (await tenancy.get("acme")).status is TenantStatus.ARCHIVED
        assert tenancy.stats().pools.open_pools == 0
        assert (await client.get("/rows")).status_code == 410
        await tenancy.delete("acme")  # again: still archived, nothing else happens
    assert (await tenancy.get("acme")).status is TenantStatus.ARCHIVED
    assert await query(path, "SELECT tenant, seq FROM rows") == [("acme", 1)]

    await tenancy.restore("acme")
    async with client_for(app, "acme.example.com") as client:
        assert (await client.get("/rows")).json() == [["acme", 1]]


async def test_delete_with_destroy_data_removes_the_file_and_the_record(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[ROWS])
    acme = await tenancy.provision("acme")
    path = tenancy.provisioner.locate(acme.id).path
    assert path is not None
    app = app_for(tenancy)
    async with client_for(app, "acme.example.com") as client:
        assert (await client.get("/write", params={"t": "acme", "n": 1})).status_code == 200
        assert tenancy.stats().pools.open_pools == 1
        await tenancy.delete("acme", destroy_data=True)
        assert (await client.get("/rows")).status_code == 404
    # The retired pool's connections close in the background.
    await eventually(lambda: tenancy.stats().pools.connections_open == 0)
    stats = tenancy.stats().pools
    assert (stats.open_pools, stats.connections_open) == (0, 0)
    assert files_in(tenants_dir(tenancy)) == set()
    with pytest.raises(TenantNotFound):
        await tenancy.get(acme.id)
    assert [str(e.kind) for e in await tenancy.registry.events(acme.id)][-1] == "deleted"
    again = await tenancy.provision("acme")  # the slug is free again, with a new database
    assert again.id != acme.id
    new_path = tenancy.provisioner.locate(again.id).path
    assert new_path is not None
    assert await query(new_path, "SELECT count(*) FROM rows") == [(0,)]


async def test_destroying_data_under_a_lease_in_use_leaves_no_file_behind(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[ROWS])
    acme = await tenancy.provision("acme")
    async with tenancy.connect(acme) as db:
        await db.execute("INSERT INTO rows (tenant, seq) VALUES ('acme', 1)")
        await tenancy.delete(acme.id, destroy_data=True)
        assert tenancy.stats().pools.open_pools == 0
    await eventually(lambda: tenancy.stats().pools.connections_open == 0)
    assert files_in(tenants_dir(tenancy)) == set()


async def test_suspend_and_archive_retire_the_tenants_pool(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy(packages=[ROWS])
    await tenancy.provision("acme")
    await tenancy.provision("globex")
    app = app_for(tenancy)

    async def visit(slug: str) -> int:
        async with client_for(app, f"{slug}.example.com") as client:
            return (await client.get("/rows")).status_code

    assert [await visit("acme"), await visit("globex")] == [200, 200]
    assert tenancy.stats().pools.open_pools == 2
    await tenancy.suspend("acme")
    stats = tenancy.stats().pools
    assert (stats.open_pools, stats.idle) == (1, 1)  # globex's pool is untouched
    assert await visit("acme") == 403
    assert tenancy.stats().pools.open_pools == 1
    await tenancy.restore("acme")
    assert await visit("acme") == 200
    assert tenancy.stats().pools.open_pools == 2
    await tenancy.archive("acme")
    assert tenancy.stats().pools.open_pools == 1
    assert await visit("acme") == 410
    await eventually(lambda: tenancy.stats().pools.connections_open == 1)  # globex's only


async def test_tenant_db_outside_a_request_needs_a_scope_and_a_runtime(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[ROWS])
    acme = await tenancy.provision("acme")
    with pytest.raises(NoTenantContext):
        async with tenant_db():
            pass
    async with tenant_scope(acme):
        with pytest.raises(NoTenantContext, match="needs a Tenancy runtime"):
            async with tenant_db():
                pass
    async with tenant_scope(acme, tenancy=tenancy), tenant_db() as db:  # a background job
        await db.execute("INSERT INTO rows (tenant, seq) VALUES ('acme', 9)")
    async with tenancy.connect("acme") as db:
        assert (await db.execute("SELECT seq FROM rows")).rows == [(9,)]
    assert current_tenant_or_none() is None


@pytest.mark.parametrize("status", [TenantStatus.PROVISIONING, TenantStatus.FAILED])
@pytest.mark.parametrize("by_context", [False, True], ids=["by slug", "by context"])
async def test_connect_refuses_a_tenant_without_a_ready_database(
    make_tenancy: TenancyFactory, status: TenantStatus, by_context: bool
) -> None:
    registry = MemoryRegistry()
    tenancy = make_tenancy(registry=registry)
    tenant = await registry.create(
        tenant_id="5f0e2a1c-9a3b-4c5d-8e7f-0a1b2c3d4e5f", slug="building", status=status
    )
    if by_context:
        await tenancy.start()  # a started runtime given a context: what tenant_db() does
    with pytest.raises(TenantUnavailable):
        async with tenancy.connect(tenant if by_context else "building"):
            pass
    assert files_in(tenants_dir(tenancy)) == set()  # refused before any file was made


async def test_a_request_that_outlives_a_deletion_does_not_recreate_the_database(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[ROWS], pool_max_connections_per_tenant=1)
    acme = await tenancy.provision("acme")
    outcomes: list[str] = []

    async def late_request() -> None:
        # Resolved before the deletion, so it holds the old context; waits for a connection.
        try:
            async with tenancy.connect(acme) as db:
                await db.execute("SELECT count(*) FROM rows")
            outcomes.append("served")
        except Exception as exc:  # any refusal will do; recreating the database will not
            outcomes.append(type(exc).__name__)

    async with tenancy.connect(acme):
        waiting = asyncio.ensure_future(late_request())
        await asyncio.sleep(0.01)
        assert tenancy.stats().pools.waiting == 1
        await tenancy.delete(acme.id, destroy_data=True)
    await waiting
    await late_request()  # and one more that arrives afterwards with the stale context
    await asyncio.sleep(0.05)
    assert "served" not in outcomes
    assert files_in(tenants_dir(tenancy)) == set()
    kinds = [str(event.kind) for event in await tenancy.registry.events(acme.id)]
    assert "database_recreated" not in kinds


async def test_a_runtime_restarted_in_the_same_process_serves_again(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[ROWS])
    await tenancy.provision("acme")
    app = app_for(tenancy)
    for n in (1, 2):  # two lifespans of one app: a test client used twice, a reload
        async with client_for(app, "acme.example.com") as client:
            assert (await client.get("/write", params={"t": "acme", "n": n})).status_code == 200
        await tenancy.aclose()
        assert tenancy.stats().pools.connections_open == 0
    await tenancy.start()
    async with tenancy.connect("acme") as db:
        assert (await db.execute("SELECT seq FROM rows ORDER BY seq")).rows == [(1,), (2,)]


@pytest.mark.parametrize("inline", [True, False])
async def test_sqlite_inline_decides_whether_tenant_statements_leave_the_loop(
    make_tenancy: TenancyFactory, inline: bool
) -> None:
    tenancy = make_tenancy(packages=[ROWS], sqlite_inline=inline)
    await tenancy.provision("acme")
    async with tenancy.connect("acme") as db:
        await db.execute("INSERT INTO rows (tenant, seq) VALUES ('acme', 1)")
        ran: list[bool] = []
        asyncio.get_running_loop().call_soon(ran.append, True)
        assert (await db.execute("SELECT seq FROM rows")).rows == [(1,)]
    # Inline, the SELECT never handed the loop over, so the callback had not run yet.
    assert ran == ([] if inline else [True])
