"""A request that names its tenant twice is refused, never "the first one wins"."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tenant_middleware import AmbiguousTenant, TenancyMiddleware
from tenant_middleware.models import TenantKey
from tenant_middleware.sources import HeaderSource, JWTSource
from tests.conftest import JWT_SECRET, TenancyFactory
from tests.sources.test_jwt_source import hs256


async def test_the_tenant_header_twice_is_ambiguous(make_scope) -> None:
    source = HeaderSource()
    once = make_scope(headers=[(b"x-tenant-id", b"acme")])
    assert await source.identify(once) == TenantKey("slug", "acme")
    for second in (b"other", b"acme"):  # even the same value twice: a proxy appended one
        twice = make_scope(headers=[(b"x-tenant-id", b"acme"), (b"x-tenant-id", second)])
        with pytest.raises(AmbiguousTenant):
            await source.identify(twice)


async def test_two_authorization_headers_are_ambiguous(make_scope) -> None:
    source = JWTSource(algorithms=["HS256"], secret=JWT_SECRET)
    token = hs256({"tenant_id": "acme"}, secret=JWT_SECRET)
    header = (b"authorization", f"Bearer {token}".encode())
    assert await source.identify(make_scope(headers=[header])) == TenantKey("slug", "acme")
    with pytest.raises(AmbiguousTenant):
        await source.identify(make_scope(headers=[header, (b"authorization", b"Basic eDp5")]))


@pytest.mark.parametrize(
    "cookies",
    [
        [b"tt=A; theme=dark; tt=B"],  # twice in one Cookie header
        [b"tt=A", b"theme=dark; tt=B"],  # in two Cookie headers
    ],
)
async def test_two_cookies_of_the_token_name_are_ambiguous(make_scope, cookies) -> None:
    source = JWTSource(algorithms=["HS256"], secret=JWT_SECRET, cookie="tt")
    token = hs256({"tenant_id": "acme"}, secret=JWT_SECRET)
    single = make_scope(headers=[(b"cookie", f"theme=dark; tt={token}".encode())])
    assert await source.identify(single) == TenantKey("slug", "acme")
    filled = [
        value.replace(b"A", token.encode()).replace(b"B", token.encode()) for value in cookies
    ]
    with pytest.raises(AmbiguousTenant):
        await source.identify(make_scope(headers=[(b"cookie", value) for value in filled]))


async def test_an_ambiguous_request_gets_400_problem_json_and_websockets_1008(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(sources=("header",))
    await tenancy.start()
    await tenancy.provision("acme")
    reached = []

    async def hello(request: object) -> PlainTextResponse:
        reached.append(request)
        return PlainTextResponse("hello")

    async def socket(websocket: WebSocket) -> None:
        reached.append(websocket)
        await websocket.accept()
        await websocket.close()

    app = Starlette(
        routes=[Route("/", hello), WebSocketRoute("/ws", socket)],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example.com") as client:
        assert (await client.get("/", headers={"x-tenant-id": "acme"})).status_code == 200
        answer = await client.get("/", headers=[("x-tenant-id", "acme"), ("x-tenant-id", "x")])
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    body = json.loads(answer.content)
    assert body["code"] == "ambiguous_tenant"
    assert "acme" not in answer.text
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "root_path": "",
        "scheme": "ws",
        "query_string": b"",
        "headers": [(b"host", b"example.com"), (b"x-tenant-id", b"a"), (b"x-tenant-id", b"b")],
        "client": ("203.0.113.9", 5000),
        "server": ("example.com", 80),
        "subprotocols": [],
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "ambiguous_tenant"}]
    assert len(reached) == 1  # only the unambiguous request reached the app
