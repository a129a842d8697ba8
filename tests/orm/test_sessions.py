"""TenantSession through the real ASGI app, on local files, a real sqld and the Turso emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyMiddleware
from tenant_middleware.integrations.starlette import request_session
from tenant_middleware.registry import MemoryRegistry
from tests.conftest import client_for
from tests.orm.conftest import orm_app
from tests.orm.models import ORM_PACKAGE, Project

Factory = Callable[..., Tenancy]


async def test_orm_crud_stays_in_each_tenants_database(
    make_orm_tenancy: Factory, direct_db: Any
) -> None:
    tenancy = make_orm_tenancy()
    await tenancy.start()
    acme, globex = await tenancy.provision("acme"), await tenancy.provision("globex")
    app = orm_app(tenancy)
    async with client_for(app, "acme.example.com") as a, client_for(app, "globex.example.com") as g:
        assert (await a.post("/projects", params={"name": "apollo"})).status_code == 200
        assert (await g.post("/projects", params={"name": "zeus", "tasks": 3})).status_code == 200
        assert (await a.get("/projects")).json() == [{"name": "apollo", "tasks": ["t0", "t1"]}]
        assert (await g.get("/projects")).json() == [{"name": "zeus", "tasks": ["t0", "t1", "t2"]}]
        # A handler that raises after flushing rolls its session back; one may roll back itself.
        assert (await a.post("/fail", params={"name": "ghost"})).status_code == 422
        assert (await a.post("/discard", params={"name": "ghost2"})).json() == {"discarded": True}
    for tenant, names, tasks in ((acme, ["apollo"], 2), (globex, ["zeus"], 3)):
        db = await direct_db(tenancy, tenant)
        assert [r[0] for r in (await db.execute("SELECT name FROM projects")).rows] == names
        assert (await db.execute("SELECT count(*) FROM tasks")).scalar() == tasks
    assert tenancy.stats().pools.in_use == 0


async def test_concurrent_read_modify_write_sessions_lose_no_update(
    make_orm_tenancy: Factory, direct_db: Any
) -> None:
    tenancy = make_orm_tenancy()
    await tenancy.start()
    acme = await tenancy.provision("acme")
    async with client_for(orm_app(tenancy), "acme.example.com") as client:
        answers = await asyncio.gather(*(client.post("/increment") for _ in range(12)))
    assert [r.status_code for r in answers] == [200] * 12
    assert sorted(r.json()["wrote"] for r in answers) == list(range(1, 13))
    db = await direct_db(tenancy, acme)
    assert (await db.execute("SELECT value FROM counter")).scalar() == 12


async def test_a_cancelled_request_rolls_back_and_returns_its_lease(
    make_orm_tenancy: Factory, direct_db: Any
) -> None:
    tenancy = make_orm_tenancy()
    await tenancy.start()
    acme = await tenancy.provision("acme")
    hold = asyncio.Event()
    async with client_for(orm_app(tenancy, hold=hold), "acme.example.com") as client:
        request = asyncio.ensure_future(client.post("/projects", params={"name": "lost"}))
        for _ in range(500):  # until the handler has flushed and waits, holding its lease
            await asyncio.sleep(0.01)
            if tenancy.stats().pools.in_use == 1:
                break
        assert tenancy.stats().pools.in_use == 1
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
        for _ in range(200):
            if tenancy.stats().pools.in_use == 0:
                break
            await asyncio.sleep(0.01)
        assert tenancy.stats().pools.in_use == 0
        hold.set()
        # The writer gate and the write lock are free: the next write goes through at once.
        assert (await client.post("/projects", params={"name": "kept"})).status_code == 200
    db = await direct_db(tenancy, acme)
    assert [r[0] for r in (await db.execute("SELECT name FROM projects")).rows] == ["kept"]


async def test_a_suspended_tenant_is_refused_on_the_session_path(
    make_orm_tenancy: Factory,
) -> None:
    tenancy = make_orm_tenancy()
    await tenancy.start()
    await tenancy.provision("acme")
    async with client_for(orm_app(tenancy), "acme.example.com") as client:
        assert (await client.get("/projects")).status_code == 200
        await tenancy.suspend("acme")
        for response in (await client.get("/projects"), await client.post("/increment")):
            assert response.status_code == 403
            assert response.json()["code"] == "tenant_suspended"
    assert tenancy.stats().pools.in_use == 0


async def test_an_unknown_tenant_never_reaches_a_session(make_orm_tenancy: Factory) -> None:
    tenancy = make_orm_tenancy()
    await tenancy.start()
    async with client_for(orm_app(tenancy), "nobody.example.com") as client:
        response: httpx.Response = await client.get("/projects")
    assert response.status_code == 404
    assert tenancy.stats().pools.acquisitions == 0


async def test_starlette_handlers_get_a_session_from_the_request(
    make_orm_tenancy: Factory, direct_db: Any
) -> None:
    async def add(request: Request) -> JSONResponse:
        async with request_session(request) as session:
            session.add(Project(name=request.query_params["name"]))
        async with request_session(request, read_only=True) as session:
            names = (await session.execute(select(Project.name))).scalars().all()
        return JSONResponse(list(names))

    tenancy = make_orm_tenancy()
    await tenancy.start()
    acme = await tenancy.provision("acme")
    app = Starlette(
        routes=[Route("/add", add, methods=["POST"])],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )
    async with client_for(app, "acme.example.com") as client:
        assert (await client.post("/add", params={"name": "hermes"})).json() == ["hermes"]
    db = await direct_db(tenancy, acme)
    assert (await db.execute("SELECT name FROM projects")).rows == [("hermes",)]


async def test_a_tenant_suspended_by_another_process_is_refused_mid_session(
    make_sqld_tenancy: Factory,
) -> None:
    registry = MemoryRegistry()
    serving = make_sqld_tenancy(registry, packages=(ORM_PACKAGE,), cache_sync_interval=60.0)
    operator = make_sqld_tenancy(registry, packages=(ORM_PACKAGE,))
    await serving.start()
    await operator.start()
    await operator.provision("acme")
    async with client_for(orm_app(serving), "acme.example.com") as client:
        assert (await client.get("/projects")).status_code == 200
        await operator.suspend("acme")  # the server blocks it; `serving` still caches it active
        response = await client.post("/projects", params={"name": "late"})
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_suspended"
    assert serving.stats().pools.in_use == 0


async def test_a_saturated_pool_answers_503_on_the_session_path(make_tenancy: Any) -> None:
    tenancy = make_tenancy(
        packages=(ORM_PACKAGE,), pool_max_connections_per_tenant=1, pool_acquire_timeout=0.2
    )
    await tenancy.start()
    acme = await tenancy.provision("acme")
    async with client_for(orm_app(tenancy), "acme.example.com") as client:
        async with tenancy.connect(acme):  # the tenant's only connection, held elsewhere
            response = await client.get("/projects")
        assert response.status_code == 503
        assert response.json()["code"] == "tenant_unavailable"
        assert "retry-after" in response.headers
        assert (await client.get("/projects")).status_code == 200
