"""One rule for whatever fails below a tenant request: the contract's 503 (1013 on a
WebSocket), logged once, with nothing of the database in the body."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tenant_middleware import (
    DatabaseError,
    InvalidIdentifier,
    Tenancy,
    TenancyMiddleware,
    TenantContext,
    TenantUnavailable,
    tenant_db,
    tenant_scope,
)
from tenant_middleware.integrations.fastapi import TenantDB
from tests.conftest import TenancyFactory, client_for

UNAVAILABLE_BODY = {
    "type": "urn:tenant-middleware:problem:tenant_unavailable",
    "title": "Tenant unavailable",
    "status": 503,
    "detail": "This tenant is temporarily unavailable; retry later.",
    "code": "tenant_unavailable",
}


async def _broken_tenant(
    make_tenancy: TenancyFactory, **settings: Any
) -> tuple[Tenancy, TenantContext]:
    """A tenant whose database file is a directory: it cannot be opened."""
    tenancy = make_tenancy(retry_after=7, **settings)
    tenant = await tenancy.provision("acme")
    path = tenancy.provisioner.locate(tenant.id).path
    assert path is not None
    path.unlink()
    path.mkdir()
    return tenancy, tenant


async def read(request: Request) -> JSONResponse:
    async with tenant_db() as db:
        return JSONResponse((await db.execute(request.query_params["sql"])).rows)


def _app(tenancy: Tenancy, *routes: Route | WebSocketRoute) -> Starlette:
    return Starlette(
        routes=[Route("/read", read), *routes],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_database_that_will_not_open_is_503_logged_once(
    make_tenancy: TenancyFactory, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    tenancy, _ = await _broken_tenant(make_tenancy)
    caplog.set_level(logging.ERROR)
    async with client_for(_app(tenancy), host="acme.example.com") as client:
        answer = await client.get("/read", params={"sql": "SELECT 1"})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "7"
    assert answer.json() == UNAVAILABLE_BODY
    errors = _errors(caplog)
    assert len(errors) == 1
    assert errors[0].exc_info is not None  # with its cause
    assert str(tmp_path) not in answer.text


async def test_a_failing_query_is_503_and_the_response_never_names_the_database(
    make_tenancy: TenancyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    tenancy = make_tenancy()
    tenant = await tenancy.provision("acme")
    caplog.set_level(logging.ERROR)
    async with client_for(_app(tenancy), host="acme.example.com") as client:
        answer = await client.get("/read", params={"sql": "SELECT * FROM no_such_table"})
        assert (await client.get("/read", params={"sql": "SELECT 1"})).status_code == 200
    assert answer.status_code == 503
    assert answer.json() == UNAVAILABLE_BODY
    assert len(_errors(caplog)) == 1
    assert tenant.id.replace("-", "") not in answer.text


async def test_after_the_response_started_the_error_is_raised_as_before(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("acme")

    async def stream(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first part"
            async with tenant_db() as db:
                await db.execute("SELECT * FROM no_such_table")

        return StreamingResponse(body())

    async with client_for(_app(tenancy, Route("/stream", stream)), host="acme.example.com") as c:
        with pytest.raises(DatabaseError):
            await c.get("/stream")


async def test_a_callers_mistake_is_not_turned_into_a_503(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("acme")

    async def mistake(request: Request) -> JSONResponse:
        await tenancy.get("not a slug!")
        return JSONResponse({})

    async with client_for(_app(tenancy, Route("/mistake", mistake)), host="acme.example.com") as c:
        with pytest.raises(InvalidIdentifier):
            await c.get("/mistake")


async def test_an_accepted_websocket_closes_with_1013(make_tenancy: TenancyFactory) -> None:
    tenancy, _ = await _broken_tenant(make_tenancy)

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        async with tenant_db():
            await websocket.send_text("unreachable")

    app = _app(tenancy, WebSocketRoute("/ws", socket))
    sent: list[dict[str, Any]] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "root_path": "",
        "scheme": "ws",
        "query_string": b"",
        "headers": [(b"host", b"acme.example.com")],
        "client": ("203.0.113.9", 5000),
        "server": ("acme.example.com", 80),
        "subprotocols": [],
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == 1013


async def test_tenant_scope_gets_tenant_unavailable_not_a_driver_error(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy, tenant = await _broken_tenant(make_tenancy)
    async with tenant_scope(tenant, tenancy=tenancy):
        with pytest.raises(TenantUnavailable) as refused:
            async with tenant_db():
                pass
    assert refused.value.retry_after == 7
    assert isinstance(refused.value.__cause__, DatabaseError)


async def test_the_fastapi_tenant_db_dependency_answers_the_contract(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy, _ = await _broken_tenant(make_tenancy)
    app = FastAPI()
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.get("/one")
    async def one(db: TenantDB) -> int:
        return int((await db.execute("SELECT 1")).scalar() or 0)

    async with client_for(app, host="acme.example.com") as client:
        answer = await client.get("/one")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "7"
    assert answer.json() == UNAVAILABLE_BODY
