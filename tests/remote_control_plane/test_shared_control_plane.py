"""Two app instances (two `Tenancy` runtimes) sharing one control plane on the sqld."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyMiddleware, TenantStatus, current_tenant, tenant_db
from tenant_middleware.registry import SQLRegistry
from tests.conftest import client_for
from tests.remote_control_plane.conftest import TenancyFactory
from tests.sqld import SqldServer


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"slug": current_tenant().slug})


async def query(request: Request) -> JSONResponse:
    async with tenant_db() as db:
        one = (await db.execute("SELECT 1")).scalar()
    return JSONResponse({"slug": current_tenant().slug, "one": one})


def app_for(tenancy: Tenancy) -> Starlette:
    return Starlette(
        routes=[Route("/whoami", whoami), Route("/query", query)],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )


async def test_the_config_puts_the_registry_on_the_sqld(
    make_instance: TenancyFactory, control_url: str
) -> None:
    tenancy = make_instance()
    assert isinstance(tenancy.registry, SQLRegistry)
    assert tenancy.registry.url == control_url
    assert tenancy.config.control_plane_on_sqld
    await tenancy.start()  # migrates over Hrana with a token minted from the signing key
    assert await tenancy.all_tenants() == []


async def test_a_tenant_provisioned_through_one_is_served_by_the_other(
    make_instance: TenancyFactory,
) -> None:
    one, two = make_instance(), make_instance()
    await asyncio.gather(one.start(), two.start())
    acme = await one.provision("acme")
    async with client_for(app_for(two), host="acme.example.com") as client:
        response = await client.get("/query")
    assert response.status_code == 200, response.text
    assert response.json() == {"slug": "acme", "one": 1}
    assert [t.id for t in await two.all_tenants()] == [acme.id]


async def test_a_suspension_reaches_the_other_instance_after_its_cache_ttl(
    make_instance: TenancyFactory,
) -> None:
    # Without the change follower: the cache's TTL alone bounds how stale it gets.
    one, two = make_instance(), make_instance(cache_ttl=0.5, cache_sync_interval=0)
    await one.provision("acme")
    async with client_for(app_for(two), host="acme.example.com") as client:
        assert (await client.get("/whoami")).status_code == 200  # cached by the second instance
        await one.suspend("acme")
        assert (await client.get("/whoami")).status_code == 200  # still cached: stale until TTL
        await asyncio.sleep(0.7)
        refused = await client.get("/whoami")
        assert refused.status_code == 403, refused.text
        await one.restore("acme")
        await asyncio.sleep(0.7)
        assert (await client.get("/whoami")).status_code == 200


async def test_a_suspension_reaches_the_other_instance_at_once_after_invalidate(
    make_instance: TenancyFactory,
) -> None:
    one, two = make_instance(), make_instance(cache_ttl=3600, cache_sync_interval=0)
    acme = await one.provision("acme")
    async with client_for(app_for(two), host="acme.example.com") as client:
        assert (await client.get("/whoami")).status_code == 200
        suspended = await one.suspend("acme")
        assert suspended.status is TenantStatus.SUSPENDED
        assert (await client.get("/whoami")).status_code == 200  # a long TTL: still cached
        two.invalidate(acme.id)
        assert (await client.get("/whoami")).status_code == 403


async def test_a_suspension_reaches_the_other_instance_through_the_event_log(
    make_instance: TenancyFactory,
) -> None:
    one, two = make_instance(), make_instance(cache_ttl=3600, cache_sync_interval=0.05)
    await two.start()
    await one.provision("acme")
    async with client_for(app_for(two), host="acme.example.com") as client:
        assert (await client.get("/query")).status_code == 200
        await one.suspend("acme")
        async with asyncio.timeout(10):
            while (await client.get("/query")).status_code != 403:  # noqa: ASYNC110 -- HTTP
                await asyncio.sleep(0.02)
            while two.pools.stats().open_pools:  # noqa: ASYNC110 -- closing as we look
                await asyncio.sleep(0.02)
        await one.restore("acme")
        async with asyncio.timeout(10):
            while (await client.get("/query")).status_code != 200:  # noqa: ASYNC110 -- HTTP
                await asyncio.sleep(0.02)


async def test_the_control_namespace_is_created_on_first_start(
    make_instance: TenancyFactory, sqld: SqldServer
) -> None:
    name = f"control{uuid.uuid4().hex[:12]}"  # left on the session's sqld, like any test's
    async with httpx.AsyncClient(base_url=sqld.admin_url, trust_env=False) as admin:
        assert (await admin.get(f"/v1/namespaces/{name}/config")).status_code == 404
        one = make_instance(control_plane_url=sqld.url(name))
        assert one.config.control_plane_namespace == name
        await one.start()
        assert (await admin.get(f"/v1/namespaces/{name}/config")).status_code == 200
    acme = await one.provision("acme")
    two = make_instance(control_plane_url=sqld.url(name))
    await two.start()  # it exists now: created once, found by the next instance
    assert (await two.get("acme")).id == acme.id


async def test_a_request_on_a_stale_context_gets_the_contracts_answer_not_a_server_error(
    make_instance: TenancyFactory,
) -> None:
    # No event log, a long TTL: the second instance still believes the tenant active; its
    # server does not, and the request must end as the tenant's status says.
    one, two = make_instance(), make_instance(cache_ttl=3600, cache_sync_interval=0)
    acme = await one.provision("acme")
    async with client_for(app_for(two), host="acme.example.com") as client:
        assert (await client.get("/query")).status_code == 200
        await one.suspend("acme")
        refused = await client.get("/query")
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "tenant_suspended"
        assert (await client.get("/whoami")).status_code == 403  # the stale context was dropped
        await one.restore("acme")
        two.invalidate(acme.id)  # what the event log would do (it is off here)
        assert (await client.get("/query")).status_code == 200
        await one.archive("acme")
        gone = await client.get("/query")
        assert gone.status_code == 410, gone.text
