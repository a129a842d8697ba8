"""Fixtures for source tests: hand-built ASGI scopes and a tiny Starlette app around a source."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tenant_middleware.errors import RequestRefused, TenancyError
from tenant_middleware.sources import ScopeRewriter, TenantSource

if TYPE_CHECKING:
    from starlette.requests import Request

    from tenant_middleware._types import ASGIApp, Receive, Scope, Send

PEER = ("203.0.113.9", 5000)
PROXY = ("10.1.2.3", 5000)
TRUSTED = ("10.0.0.0/8",)

ScopeFactory = Callable[..., dict[str, Any]]
AppFactory = Callable[..., Starlette]
ClientFactory = Callable[..., httpx.AsyncClient]


class IdentifyMiddleware:
    """Run one source per request: store its key in `scope["state"]`, or answer its error."""

    def __init__(self, app: ASGIApp, *, source: TenantSource) -> None:
        self.app = app
        self.source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            key = await self.source.identify(scope)
        except RequestRefused as exc:
            response = JSONResponse({"code": exc.code}, status_code=exc.status_code)
            await response(scope, receive, send)
            return
        except TenancyError as exc:
            response = JSONResponse({"error": type(exc).__name__}, status_code=500)
            await response(scope, receive, send)
            return
        if key is not None and isinstance(self.source, ScopeRewriter):
            scope = self.source.rewrite(scope, key)
        scope.setdefault("state", {})["tenant_key"] = key
        await self.app(scope, receive, send)


async def show_key(request: Request) -> JSONResponse:
    key = request.state.tenant_key
    return JSONResponse({"key": None if key is None else str(key), "path": request.url.path})


@pytest.fixture
def make_scope() -> ScopeFactory:
    """Build an HTTP scope; `host` becomes the Host header, `headers` are added as given."""

    def factory(
        host: str | bytes | None = None,
        *,
        headers: Sequence[tuple[bytes, bytes]] = (),
        path: str = "/",
        root_path: str = "",
        client: tuple[str, int] | None = PEER,
        **extra: Any,
    ) -> dict[str, Any]:
        raw: list[tuple[bytes, bytes]] = []
        if host is not None:
            raw.append((b"host", host.encode() if isinstance(host, str) else host))
        raw.extend(headers)
        scope = {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "root_path": root_path,
            "query_string": b"",
            "headers": raw,
            "client": client,
            "server": ("testserver", 80),
        }
        scope.update(extra)
        return scope

    return factory


@pytest.fixture
def make_app() -> AppFactory:
    """Build a Starlette app whose routes see the key `source` found (`/{path}` by default)."""

    def factory(
        source: TenantSource,
        *,
        routes: Sequence[BaseRoute] | None = None,
        outer: Sequence[Middleware] = (),
    ) -> Starlette:
        return Starlette(
            routes=list(routes or [Route("/{path:path}", show_key)]),
            middleware=[*outer, Middleware(IdentifyMiddleware, source=source)],
        )

    return factory


@pytest.fixture
def open_client() -> ClientFactory:
    """Open an httpx client that calls an ASGI app in-process from the given peer address."""

    def factory(
        app: ASGIApp, base_url: str = "http://example.com", *, peer: tuple[str, int] = PEER
    ) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=peer)
        return httpx.AsyncClient(transport=transport, base_url=base_url)

    return factory
