"""`TenantDB` and `tenant_db()` leases through a real FastAPI app: the request's lease goes back
when the response is sent, BackgroundTasks take their own, a task re-enters what it holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import StreamingResponse

from tenant_middleware import TenancyMiddleware, current_tenant, tenant_db, tenant_scope
from tenant_middleware.integrations.fastapi import TenantDB
from tenant_middleware.pool import PooledConnection
from tenant_middleware.runtime import Tenancy
from tests.conftest import TenancyFactory, client_for

SCHEMA = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"


async def write_note(body: str) -> None:
    async with tenant_db() as db:
        await db.execute("INSERT INTO notes (body) VALUES (?)", (body,))


def notes_app(tenancy: Tenancy, seen: list[bool]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.post("/notes/{n}", status_code=201)
    async def create(n: int, db: TenantDB, tasks: BackgroundTasks) -> dict[str, int]:
        await db.execute("INSERT INTO notes (body) VALUES (?)", (f"request {n}",))

        async def later() -> None:
            seen.append(db.closed)  # the request's lease went back with the response
            await write_note(f"background {n}")

        tasks.add_task(later)
        return {"n": n}

    @app.get("/notes")
    async def count(db: TenantDB) -> dict[str, int]:
        rows = await db.execute("SELECT count(*) FROM notes")
        return {"notes": int(str(rows.rows[0][0]))}

    return app


async def prepared(tenancy: Tenancy) -> None:
    tenant = await tenancy.provision("acme")
    async with tenancy.connect(tenant) as db:
        await db.execute(SCHEMA)


async def test_background_tasks_write_through_a_pool_of_one_without_waiting(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(pool_max_connections_per_tenant=1, pool_acquire_timeout=30.0)
    await prepared(tenancy)
    seen: list[bool] = []
    async with client_for(notes_app(tenancy, seen), "acme.example.com") as http:
        created = [await http.post(f"/notes/{n}") for n in range(5)]
        counted = await http.get("/notes")
    assert [r.status_code for r in created] == [201] * 5
    assert counted.json() == {"notes": 10}  # each request's row and its background task's
    assert seen == [True] * 5
    stats = tenancy.pools.stats()
    assert (stats.waits, stats.timeouts, stats.in_use) == (0, 0, 0)


async def test_300_concurrent_requests_each_with_a_background_write(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy()
    await prepared(tenancy)
    async with client_for(notes_app(tenancy, []), "acme.example.com") as http:
        responses = await asyncio.gather(*(http.post(f"/notes/{n}") for n in range(300)))
        counted = await http.get("/notes")
    assert sorted({r.status_code for r in responses}) == [201]
    assert counted.json() == {"notes": 600}
    assert tenancy.pools.stats().timeouts == 0


async def test_a_second_tenant_db_in_the_same_task_reenters_the_held_lease(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(pool_max_connections_per_tenant=1, pool_acquire_timeout=30.0)
    await prepared(tenancy)
    app = FastAPI()
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.get("/nested")
    async def nested(db: TenantDB) -> dict[str, bool]:
        async with tenant_db() as inner, tenant_db() as innermost:
            same = inner is db and innermost is db
        # Leaving the inner blocks kept the outer lease.
        await db.execute("SELECT 1")
        return {"same": same, "open": not db.closed}

    async with client_for(app, "acme.example.com") as http:
        response = await http.get("/nested")
    assert response.json() == {"same": True, "open": True}
    assert tenancy.pools.stats().waits == 0


async def test_tasks_of_one_request_take_leases_of_their_own(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(pool_max_connections_per_tenant=3)
    await prepared(tenancy)
    app = FastAPI()
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.get("/fanout")
    async def fanout(db: TenantDB) -> dict[str, bool]:
        both = asyncio.Barrier(2)

        async def lease() -> PooledConnection:
            async with tenant_db() as connection:
                await both.wait()  # both held at once
                return connection

        first, second = await asyncio.gather(lease(), lease())
        return {"distinct": first is not second and db not in (first, second)}

    async with client_for(app, "acme.example.com") as http:
        response = await http.get("/fanout")
    assert response.json() == {"distinct": True}


async def test_a_streamed_response_keeps_its_lease_until_the_last_chunk(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(pool_max_connections_per_tenant=1)
    await prepared(tenancy)
    app = FastAPI()
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.get("/stream")
    async def stream(db: TenantDB) -> StreamingResponse:
        async def chunks() -> AsyncIterator[str]:
            for n in range(3):
                await db.execute("INSERT INTO notes (body) VALUES (?)", (f"chunk {n}",))
                yield f"{n}\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    async with client_for(app, "acme.example.com") as http:
        response = await http.get("/stream")
    assert response.text == "0\n1\n2\n"
    async with tenancy.connect("acme") as db:
        rows = await db.execute("SELECT count(*) FROM notes")
    assert rows.rows[0][0] == 3


async def test_tenant_scope_in_a_background_task_leases_its_own(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(pool_max_connections_per_tenant=1, pool_acquire_timeout=30.0)
    await prepared(tenancy)
    other = await tenancy.provision("globex")
    async with tenancy.connect(other) as db:
        await db.execute(SCHEMA)
    app = FastAPI()
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.post("/copy", status_code=202)
    async def copy(db: TenantDB, tasks: BackgroundTasks) -> dict[str, str]:
        await db.execute("INSERT INTO notes (body) VALUES ('acme')")

        async def mirror() -> None:
            async with tenant_scope(other):
                await write_note(f"from {current_tenant().slug}")
            await write_note("back in acme")

        tasks.add_task(mirror)
        return {}

    async with client_for(app, "acme.example.com") as http:
        assert (await http.post("/copy")).status_code == 202
    async with tenancy.connect("acme") as acme_db, tenancy.connect(other) as globex_db:
        acme = await acme_db.execute("SELECT body FROM notes ORDER BY id")
        globex = await globex_db.execute("SELECT body FROM notes ORDER BY id")
    assert [row[0] for row in acme.rows] == ["acme", "back in acme"]
    assert [row[0] for row in globex.rows] == ["from globex"]
    assert tenancy.pools.stats().waits == 0
