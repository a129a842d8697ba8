"""The HTTP contract of DESIGN.md, through real Starlette and FastAPI apps."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from tenant_middleware import (
    DatabaseError,
    RequestRefused,
    Tenancy,
    TenancyMiddleware,
    TenantKey,
    TenantStatus,
    current_tenant,
    current_tenant_or_none,
)
from tenant_middleware._types import Receive, Scope, Send
from tenant_middleware.integrations.fastapi import CurrentTenant
from tenant_middleware.registry import MemoryRegistry
from tests.conftest import JWT_SECRET, TenancyFactory, client_for


async def whoami(request: Request) -> JSONResponse:
    tenant = current_tenant()
    assert request.state.tenant is tenant
    return JSONResponse({"slug": tenant.slug, "source": tenant.source})


def starlette_app(tenancy: Tenancy, **middleware: Any) -> Starlette:
    return Starlette(
        routes=[Route("/whoami", whoami), Route("/healthz", lambda r: PlainTextResponse("ok"))],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy, **middleware)],
    )


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"type", "title", "status", "detail", "code"}
    assert body["status"] == response.status_code
    return body


async def test_subdomain_request_reaches_its_tenant(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("acme")
    async with client_for(starlette_app(tenancy), "acme.example.com") as client:
        response = await client.get("/whoami")
    assert response.json() == {"slug": "acme", "source": "subdomain"}


async def test_no_tenant_when_required_is_400(make_tenancy: TenancyFactory) -> None:
    async with client_for(starlette_app(make_tenancy()), "example.com") as client:
        response = await client.get("/whoami")
    assert response.status_code == 400
    assert problem(response)["code"] == "tenant_required"


async def test_unknown_slug_domain_and_id_get_the_same_404(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy(sources=("subdomain", "custom_domain", "header"))
    await tenancy.provision("acme")
    app = starlette_app(tenancy)
    bodies = []
    async with client_for(app, "nope.example.com") as client:
        bodies.append(await client.get("/whoami"))
    async with client_for(app, "shop.unknown.org") as client:
        bodies.append(await client.get("/whoami"))
    async with client_for(app, "example.com") as client:
        headers = {"X-Tenant-Id": "7b0c7a2e-1111-4111-8111-111111111111"}
        bodies.append(await client.get("/whoami", headers=headers))
    assert [r.status_code for r in bodies] == [404, 404, 404]
    assert len({r.content for r in bodies}) == 1
    assert problem(bodies[0])["code"] == "tenant_not_found"
    assert b"acme" not in bodies[0].content


async def test_invalid_jwt_is_401(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy(sources=("jwt",), jwt_secret=JWT_SECRET, jwt_algorithms=("HS256",))
    await tenancy.provision("acme")
    token = jwt.encode({"tenant_id": "acme"}, "x" * 40, algorithm="HS256")
    async with client_for(starlette_app(tenancy)) as client:
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert problem(response)["code"] == "invalid_credentials"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_jwt_for_another_tenant_on_a_tenant_host_is_403(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(
        sources=("subdomain", "jwt"), jwt_secret=JWT_SECRET, jwt_algorithms=("HS256",)
    )
    await tenancy.provision("acme")
    await tenancy.provision("globex")
    globex_token = jwt.encode({"tenant_id": "globex"}, JWT_SECRET, algorithm="HS256")
    acme_token = jwt.encode({"tenant_id": "acme"}, JWT_SECRET, algorithm="HS256")
    async with client_for(starlette_app(tenancy), "acme.example.com") as client:
        refused = await client.get("/whoami", headers={"Authorization": f"Bearer {globex_token}"})
        accepted = await client.get("/whoami", headers={"Authorization": f"Bearer {acme_token}"})
    assert refused.status_code == 403
    assert problem(refused)["code"] == "tenant_mismatch"
    assert b"globex" not in refused.content
    assert accepted.json() == {"slug": "acme", "source": "subdomain"}


async def test_mismatch_answer_does_not_reveal_whether_the_other_tenant_exists(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(sources=("subdomain", "header"))
    await tenancy.provision("acme")
    await tenancy.provision("globex")
    async with client_for(starlette_app(tenancy), "acme.example.com") as client:
        existing = await client.get("/whoami", headers={"X-Tenant-Id": "globex"})
        missing = await client.get("/whoami", headers={"X-Tenant-Id": "initech"})
    assert existing.status_code == missing.status_code == 403
    assert existing.content == missing.content


@pytest.mark.parametrize(
    ("status", "http_status", "code"),
    [
        (TenantStatus.SUSPENDED, 403, "tenant_suspended"),
        (TenantStatus.ARCHIVED, 410, "tenant_archived"),
        (TenantStatus.PROVISIONING, 503, "tenant_unavailable"),
        (TenantStatus.FAILED, 503, "tenant_unavailable"),
    ],
)
async def test_tenant_status_is_enforced(
    make_tenancy: TenancyFactory, status: TenantStatus, http_status: int, code: str
) -> None:
    registry = MemoryRegistry()
    tenancy = make_tenancy(registry=registry, retry_after=7)
    await tenancy.start()
    await registry.create(
        tenant_id="6a3c0e52-5d1e-4c1a-9a38-0d7c3f5a1b20", slug="acme", status=status
    )
    async with client_for(starlette_app(tenancy), "acme.example.com") as client:
        response = await client.get("/whoami")
    assert response.status_code == http_status
    assert problem(response)["code"] == code
    if http_status == 503:
        assert response.headers["retry-after"] == "7"
    else:
        assert "retry-after" not in response.headers


class BrokenRegistry(MemoryRegistry):
    async def lookup(self, key: TenantKey) -> Any:
        raise DatabaseError("control plane unreachable at file:/secret/path.db")


async def test_registry_down_is_503_without_internals(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy(registry=BrokenRegistry())
    async with client_for(starlette_app(tenancy), "acme.example.com") as client:
        response = await client.get("/whoami")
    assert response.status_code == 503
    assert problem(response)["code"] == "tenant_unavailable"
    assert "retry-after" in response.headers
    assert b"secret" not in response.content


async def test_suspension_reaches_the_very_next_request(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy(cache_ttl=3600)
    acme = await tenancy.provision("acme")
    async with client_for(starlette_app(tenancy), "acme.example.com") as client:
        assert (await client.get("/whoami")).status_code == 200
        await tenancy.suspend(acme.id)
        assert (await client.get("/whoami")).status_code == 403
        await tenancy.restore(acme.id)
        assert (await client.get("/whoami")).status_code == 200


async def test_tenant_provisioned_after_a_404_is_reachable_at_once(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(negative_cache_ttl=3600)
    async with client_for(starlette_app(tenancy), "late.example.com") as client:
        assert (await client.get("/whoami")).status_code == 404
        await tenancy.provision("late")
        assert (await client.get("/whoami")).status_code == 200


async def test_excluded_paths_skip_tenancy(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy(exclude_paths=("/healthz",))
    async with client_for(starlette_app(tenancy), "nope.example.com") as client:
        assert (await client.get("/healthz")).text == "ok"
        below = await client.get("/healthz/deeper")
        assert below.headers["content-type"].startswith("text/plain")  # the app's own 404
        assert (await client.get("/healthzz")).status_code == 404
        assert (await client.get("/whoami")).status_code == 404


async def test_optional_tenancy_lets_requests_without_a_tenant_through(
    make_tenancy: TenancyFactory,
) -> None:
    async def page(request: Request) -> PlainTextResponse:
        assert request.state.tenant is None
        return PlainTextResponse(repr(current_tenant_or_none()))

    tenancy = make_tenancy(tenant_required=False)
    app = Starlette(
        routes=[Route("/", page)], middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)]
    )
    async with client_for(app, "example.com") as client:
        assert (await client.get("/")).text == "None"
    async with client_for(app, "nope.example.com") as client:
        assert (await client.get("/")).status_code == 404


async def test_on_error_hook_renders_refusals(make_tenancy: TenancyFactory) -> None:
    seen: list[RequestRefused] = []

    async def on_error(scope: Scope, receive: Receive, send: Send, error: RequestRefused) -> None:
        seen.append(error)
        response = PlainTextResponse(f"custom {error.code}", status_code=error.status_code)
        await response(scope, receive, send)

    async with client_for(starlette_app(make_tenancy(), on_error=on_error), "x.example.com") as c:
        response = await c.get("/whoami")
    assert response.status_code == 404
    assert response.text == "custom tenant_not_found"
    assert [error.code for error in seen] == ["tenant_not_found"]


async def test_context_is_reset_after_every_request_including_failing_ones(
    make_tenancy: TenancyFactory,
) -> None:
    async def boom(request: Request) -> Response:
        assert current_tenant().slug == "acme"
        raise RuntimeError("handler failed")

    tenancy = make_tenancy()
    await tenancy.provision("acme")
    app = Starlette(
        routes=[Route("/whoami", whoami), Route("/boom", boom)],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://acme.example.com") as c:
        assert (await c.get("/whoami")).status_code == 200
        assert current_tenant_or_none() is None
        assert (await c.get("/boom")).status_code == 500
        assert current_tenant_or_none() is None


async def test_concurrent_requests_never_see_another_tenant(
    make_tenancy: TenancyFactory,
) -> None:
    """2,000 concurrent requests over 50 tenants, each handler awaiting between reads."""
    mismatches: list[tuple[str, str]] = []

    async def check(request: Request) -> PlainTextResponse:
        named = request.query_params["t"]
        for _ in range(3):
            await asyncio.sleep(0)
            seen = current_tenant().slug
            if seen != named:
                mismatches.append((named, seen))
        return PlainTextResponse(current_tenant().slug)

    tenancy = make_tenancy()
    slugs = [f"tenant{i}" for i in range(50)]
    for slug in slugs:
        await tenancy.provision(slug)
    app = Starlette(
        routes=[Route("/check", check)],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )
    async with client_for(app, "example.com") as client:

        async def one(i: int) -> str:
            slug = slugs[i % len(slugs)]
            response = await client.get(
                "/check", params={"t": slug}, headers={"Host": f"{slug}.example.com"}
            )
            return response.text

        answers = await asyncio.gather(*(one(i) for i in range(2000)))
    assert mismatches == []
    assert answers == [slugs[i % len(slugs)] for i in range(2000)]
    assert current_tenant_or_none() is None


class CountingRegistry(MemoryRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def lookup(self, key: TenantKey) -> Any:
        self.lookups += 1
        await asyncio.sleep(0.01)  # a slow control plane widens the race
        return await super().lookup(key)


async def test_concurrent_first_requests_make_one_registry_lookup(
    make_tenancy: TenancyFactory,
) -> None:
    registry = CountingRegistry()
    tenancy = make_tenancy(registry=registry)
    await tenancy.provision("acme")
    registry.lookups = 0
    async with client_for(starlette_app(tenancy), "acme.example.com") as client:
        responses = await asyncio.gather(*(client.get("/whoami") for _ in range(100)))
    assert {r.status_code for r in responses} == {200}
    assert registry.lookups == 1


async def test_lifespan_starts_and_closes_the_runtime(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    app = starlette_app(tenancy)
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []
    started_during_startup: list[bool] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: Any) -> None:
        if message["type"] == "lifespan.startup.complete":
            started_during_startup.append(tenancy.started)
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert started_during_startup == [True]
    assert not tenancy.started


def test_works_under_starlette_testclient_with_lifespan(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    with TestClient(starlette_app(tenancy), base_url="http://example.com") as client:
        assert tenancy.started
        assert client.get("/whoami").status_code == 400
    assert not tenancy.started


async def test_fastapi_current_tenant_dependency(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("acme", plan="pro")
    app = FastAPI()
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.get("/plan")
    async def plan(tenant: CurrentTenant) -> dict[str, Any]:
        return {"slug": tenant.slug, "plan": tenant.plan}

    async with client_for(app, "acme.example.com") as client:
        assert (await client.get("/plan")).json() == {"slug": "acme", "plan": "pro"}
    async with client_for(app, "ghost.example.com") as client:
        assert (await client.get("/plan")).status_code == 404


async def ws_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(current_tenant().slug)
    await websocket.close()


@pytest.mark.parametrize(
    ("host", "close_code"),
    [
        ("acme.example.com", None),
        ("example.com", 1008),
        ("nope.example.com", 1008),
        ("paused.example.com", 1008),
        ("building.example.com", 1013),
    ],
)
def test_websocket_contract(
    make_tenancy: TenancyFactory, host: str, close_code: int | None
) -> None:
    registry = MemoryRegistry()
    tenancy = make_tenancy(registry=registry)
    app = Starlette(
        routes=[WebSocketRoute("/ws", ws_endpoint)],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )
    with TestClient(app, base_url=f"http://{host}") as client:
        client.portal.call(_seed_statuses, tenancy, registry)  # type: ignore[union-attr]
        if close_code is None:
            with client.websocket_connect("/ws", headers={"host": host}) as socket:
                assert socket.receive_text() == "acme"
            return
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/ws", headers={"host": host}),
        ):
            pass
        assert refused.value.code == close_code


async def _seed_statuses(tenancy: Tenancy, registry: MemoryRegistry) -> None:
    await tenancy.provision("acme")
    paused = await tenancy.provision("paused")
    await tenancy.suspend(paused.id)
    await registry.create(
        tenant_id="0b9f8c4e-6a55-4f0e-8d2a-3a7e5c1d9f00",
        slug="building",
        status=TenantStatus.PROVISIONING,
    )


def test_problem_bodies_are_json_with_the_contract_fields() -> None:
    from tenant_middleware.errors import TenantNotFound
    from tenant_middleware.problems import problem_body

    body = json.loads(problem_body(TenantNotFound("secret internal detail")))
    assert body["code"] == "tenant_not_found"
    assert "secret" not in body["detail"]
