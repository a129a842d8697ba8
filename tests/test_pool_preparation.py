"""Opening a tenant's pool: what it reads, and what it may answer from this process's state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tenant_middleware import TenantContext, tenant_db
from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.models import TenantKey, TenantStatus
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.schema.package import Migration, SchemaPackage
from tests.conftest import TenancyFactory, client_for, rows_app

MARKS = SchemaPackage(
    "marks",
    (
        Migration(1, "create", sql="CREATE TABLE marks (n INTEGER);"),
        Migration(2, "mark", sql="INSERT INTO marks VALUES (2);"),
    ),
)


async def count_marks(request: Request) -> Response:
    async with tenant_db() as db:
        return JSONResponse({"marks": (await db.execute("SELECT count(*) FROM marks")).scalar()})


async def run_sql(path: Path, sql: str) -> None:
    conn = await SQLiteConnection.open(path)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class CountingRegistry(MemoryRegistry):
    """A memory registry that counts tenant lookups."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def lookup(self, key: TenantKey) -> Any:
        self.lookups += 1
        return await super().lookup(key)


def file_of(tenant: TenantContext, tenancy: Any) -> Path:
    path = tenancy.provisioner.locate(tenant.id).path
    assert path is not None
    return Path(path)


async def test_a_tenant_found_up_to_date_is_not_read_again_until_its_schema_changes(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[MARKS])
    acme = await tenancy.provision("acme")
    app = rows_app(tenancy, Route("/", count_marks))
    async with client_for(app, "acme.example.com") as client:
        assert (await client.get("/")).json() == {"marks": 1}
        # Out of band, a change no schema_version sees: the ledger forgets migration 2.
        await run_sql(file_of(acme, tenancy), "DELETE FROM _tenancy_schema WHERE version = 2")
        await tenancy.pools.discard(acme.id)
        assert (await client.get("/")).json() == {"marks": 1}  # remembered: not re-read
        # A schema change (any DDL) makes the next pool read the ledger again.
        await run_sql(file_of(acme, tenancy), "CREATE TABLE unrelated (x)")
        await tenancy.pools.discard(acme.id)
        assert (await client.get("/")).json() == {"marks": 2}  # migration 2 ran again


async def test_a_pool_opens_without_a_control_plane_read_while_the_follower_keeps_up(
    make_tenancy: TenancyFactory,
) -> None:
    registry = CountingRegistry()
    tenancy = make_tenancy(registry=registry, packages=[MARKS], cache_sync_interval=0.05)
    acme = await tenancy.provision("acme")
    app = rows_app(tenancy, Route("/", count_marks))
    follower = tenancy.change_follower
    assert follower is not None

    async def caught_up() -> None:
        # Two more polls: the provisioning's own events have been applied (they invalidate).
        target = follower.polls + 2
        for _ in range(200):
            if follower.polls >= target and follower.keeping_up():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the change follower did not poll")

    async with client_for(app, "acme.example.com") as client:
        await caught_up()
        assert (await client.get("/")).status_code == 200
        await caught_up()
        await tenancy.pools.discard(acme.id)
        registry.lookups = 0
        assert (await client.get("/")).status_code == 200
        assert registry.lookups == 0
        assert tenancy.stats().pools.open_pools == 1
        # Suspended by another process: the follower drops the cached context, so the next
        # pool (and the request) asks the control plane and is refused.
        await registry.set_status(acme.id, TenantStatus.SUSPENDED)
        for _ in range(100):
            if tenancy.cache.fresh(acme.id) is None:
                break
            await asyncio.sleep(0.02)
        refused = await client.get("/")
        assert refused.status_code == 403
        assert tenancy.stats().pools.open_pools == 0


async def test_without_a_follower_every_pool_reads_the_control_plane(
    make_tenancy: TenancyFactory,
) -> None:
    registry = CountingRegistry()
    tenancy = make_tenancy(registry=registry, packages=[MARKS], cache_sync_interval=0)
    acme = await tenancy.provision("acme")
    app = rows_app(tenancy, Route("/", count_marks))
    async with client_for(app, "acme.example.com") as client:
        assert (await client.get("/")).status_code == 200
        await tenancy.pools.discard(acme.id)
        registry.lookups = 0
        assert (await client.get("/")).status_code == 200
        assert registry.lookups == 1  # the pool's check; the request itself was cached
