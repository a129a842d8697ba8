"""The apps, tenancies and ASGI call loops the bench scripts share.

The app under test is the smallest real Starlette app: one `GET /` route answering `ok` as
plain text. Variants wrap that same app in a middleware; nothing else differs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyConfig, TenancyMiddleware
from tenant_middleware.schema.package import Migration, SchemaPackage

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Header = tuple[bytes, bytes]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

BASE_DOMAIN = "example.com"
JWT_SECRET = "bench-secret-of-at-least-32-bytes-long!"  # noqa: S105 -- a bench fixture
HEADERS: tuple[Header, ...] = ((b"user-agent", b"bench/1.0"), (b"accept", b"*/*"))

# A small schema package: what `provision()` applies to every new tenant.
NOTES_PACKAGE = SchemaPackage(
    "notes",
    (
        Migration(
            1,
            "create_notes",
            sql=(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
                "body TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL);\n"
                "CREATE INDEX notes_created ON notes (created_at);\n"
            ),
        ),
        Migration(
            2,
            "seed_notes",
            sql=(
                "INSERT INTO notes (id, title, body, created_at) VALUES "
                "(1, 'welcome', 'hello', 0), (2, 'second', 'more', 0), (3, 'third', '', 0);\n"
            ),
        ),
    ),
)


# -- the app ------------------------------------------------------------------------------
async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


def starlette_app(
    middleware: Sequence[Middleware] = (), routes: Sequence[Route] | None = None
) -> Starlette:
    """The bench app (`GET /` -> `ok`), wrapped in `middleware` (outermost first)."""
    return Starlette(routes=list(routes or [Route("/", _ok)]), middleware=list(middleware))


def tenancy_config(data_dir: Path, source: str, **overrides: Any) -> TenancyConfig:
    """A config with exactly one identification source."""
    options: dict[str, Any] = {
        "sources": (source,) if source != "default" else ("subdomain", "custom_domain"),
        "base_domains": (BASE_DOMAIN,),
        "data_dir": data_dir,
    }
    if source == "jwt":
        options.update(jwt_algorithms=("HS256",), jwt_secret=JWT_SECRET)
    options.update(overrides)
    return TenancyConfig(**options)


def request_headers(source: str, slug: str) -> list[Header]:
    """The headers that name `slug` to a tenancy configured with `source`."""
    if source in ("subdomain", "default"):
        return [(b"host", f"{slug}.{BASE_DOMAIN}".encode()), *HEADERS]
    host = (b"host", b"app.internal")
    if source == "header":
        return [host, *HEADERS, (b"x-tenant-id", slug.encode())]
    if source == "jwt":
        token = jwt.encode(
            {"tenant_id": slug, "exp": int(time.time()) + 86_400}, JWT_SECRET, algorithm="HS256"
        )
        return [host, *HEADERS, (b"authorization", f"Bearer {token}".encode())]
    raise ValueError(f"no headers for source {source!r}")


async def tenancy_app(
    data_dir: Path, source: str, slugs: Sequence[str] = ("acme",), **overrides: Any
) -> tuple[Tenancy, Starlette]:
    """A started Tenancy with `slugs` provisioned, and the bench app behind its middleware."""
    tenancy = Tenancy(tenancy_config(data_dir, source, **overrides))
    await tenancy.start()
    for slug in slugs:
        await tenancy.provision(slug)
    return tenancy, starlette_app([Middleware(TenancyMiddleware, tenancy=tenancy)])


# -- direct ASGI calls --------------------------------------------------------------------
def http_scope(headers: Sequence[Header], path: str = "/") -> Scope:
    """An HTTP scope as uvicorn would build it for `GET path` from 127.0.0.1."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50_000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": list(headers),
    }


_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}


async def _receive() -> Message:
    return _REQUEST


async def _discard(message: Message) -> None:
    return None


async def call_once(app: ASGIApp, scope: Scope) -> tuple[int, bytes]:
    """One request; returns the status and the body (to check a variant before timing it)."""
    status = 0
    body = b""

    async def send(message: Message) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    await app(dict(scope), _receive, send)
    return status, body


async def expect_status(app: ASGIApp, scope: Scope, status: int = 200) -> None:
    """Fail fast when a variant does not answer as it should (a 404 is no benchmark of a 200)."""
    got, body = await call_once(app, scope)
    if got != status:
        raise RuntimeError(f"expected {status}, got {got}: {body[:200]!r}")


def direct_loop(app: ASGIApp, scope: Scope) -> Callable[[int], Awaitable[float]]:
    """A timed loop: `n` requests straight into the ASGI app, a fresh scope copy each."""

    async def loop(n: int) -> float:
        receive, send, template = _receive, _discard, scope
        start = time.perf_counter()
        for _ in range(n):
            await app(dict(template), receive, send)
        return time.perf_counter() - start

    return loop


def rotating_loop(app: ASGIApp, scopes: Sequence[Scope]) -> Callable[[int], Awaitable[float]]:
    """Like `direct_loop`, but each request takes the next scope (tenants round-robin)."""
    position = 0

    async def loop(n: int) -> float:
        nonlocal position
        receive, send, count = _receive, _discard, len(scopes)
        start = time.perf_counter()
        for _ in range(n):
            await app(dict(scopes[position]), receive, send)
            position = (position + 1) % count
        return time.perf_counter() - start

    return loop
