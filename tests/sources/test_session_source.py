from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from tenant_middleware.errors import ConfigError, TenantNotFound
from tenant_middleware.models import TenantKey
from tenant_middleware.sources import SessionSource, TenantSource

if TYPE_CHECKING:
    from starlette.requests import Request

TENANT_ID = "0b7e3f0e-9a43-4c59-9d6e-1c1f1d6f2a10"


@pytest.mark.parametrize(
    ("session", "key"),
    [
        ({"tenant_id": "acme"}, TenantKey("slug", "acme")),
        ({"tenant_id": " ACME "}, TenantKey("slug", "acme")),
        ({"tenant_id": TENANT_ID.upper()}, TenantKey("id", TENANT_ID)),
        ({"tenant_id": ""}, None),
        ({"tenant_id": None}, None),
        ({"user": "alice"}, None),
        ({}, None),
    ],
)
async def test_session_values(make_scope, session, key):
    assert await SessionSource().identify(make_scope(session=session)) == key


@pytest.mark.parametrize("value", ["acme corp", "a" * 64, 42, ["acme"], {"id": "acme"}, True])
async def test_malformed_session_value_is_a_404(make_scope, value):
    with pytest.raises(TenantNotFound):
        await SessionSource().identify(make_scope(session={"tenant_id": value}))


async def test_custom_session_key(make_scope):
    source = SessionSource(key="org")
    scope = make_scope(session={"org": "acme", "tenant_id": "other"})
    assert await source.identify(scope) == TenantKey("slug", "acme")


async def test_missing_session_middleware_is_a_config_error(make_scope):
    with pytest.raises(ConfigError) as info:
        await SessionSource().identify(make_scope())
    assert info.value.setting == "sources"
    assert "SessionMiddleware" in str(info.value)


def test_empty_key_is_rejected():
    with pytest.raises(ConfigError) as info:
        SessionSource(key="")
    assert info.value.setting == "key"
    assert isinstance(SessionSource(), TenantSource)


async def test_through_starlette_session_middleware(make_app, open_client):
    async def login(request: Request) -> PlainTextResponse:
        request.session["tenant_id"] = request.query_params["tenant"]
        return PlainTextResponse("ok")

    async def show(request: Request) -> JSONResponse:
        key = request.state.tenant_key
        return JSONResponse({"key": None if key is None else str(key)})

    app = make_app(
        SessionSource(),
        routes=[Route("/login", login), Route("/", show)],
        outer=[Middleware(SessionMiddleware, secret_key="test-secret-key-for-sessions")],
    )
    async with open_client(app, "http://testserver") as http:
        before = await http.get("/")
        await http.get("/login", params={"tenant": "Acme"})
        after = await http.get("/")
        await http.get("/login", params={"tenant": "no such thing"})
        malformed = await http.get("/")
    assert before.json() == {"key": None}
    assert after.json() == {"key": "slug:acme"}
    assert malformed.status_code == 404
    assert malformed.json() == {"code": "tenant_not_found"}


async def test_through_an_app_without_session_middleware(make_app, open_client):
    async with open_client(make_app(SessionSource())) as http:
        response = await http.get("/")
    assert response.status_code == 500
    assert response.json() == {"error": ConfigError.__name__}
