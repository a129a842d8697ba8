"""The resolver's synchronous cached path (`resolve_now`) against its awaited one (`resolve`).

`resolve_now` is what the middleware tries first; it must answer exactly as `resolve` would
(the same tenant and scope, or the same refusal) or step aside with None.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyMiddleware, TenantKey, current_tenant
from tenant_middleware._types import Scope
from tenant_middleware.errors import TenancyError
from tests.conftest import TenancyFactory

HOSTILE_HOSTS = [
    "acme.example.com",
    "ACME.Example.COM.",
    "acme.example.com:8080",
    "globex.example.com",
    "nope.example.com",
    "www.example.com",
    "example.com",
    "a.acme.example.com",
    "shop.acme.test",
    "unknown.test",
    "127.0.0.1",
    "[::1]:80",
    "acme..example.com",
    "x" * 300 + ".example.com",
    "",
]


def http_scope(host: str | None, *extra: tuple[bytes, bytes], path: str = "/whoami") -> Scope:
    headers = [(b"host", host.encode())] if host is not None else []
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [*headers, (b"accept", b"*/*"), *extra],
        "client": ("203.0.113.9", 5000),
        "server": ("example.com", 80),
    }


async def outcome(resolved: Any) -> tuple[str, ...]:
    """A resolution or the refusal it raised, as comparable values."""
    try:
        tenant, scope = await resolved() if callable(resolved) else resolved
    except TenancyError as error:
        return ("refused", type(error).__name__)
    return ("tenant", tenant.id if tenant else "-", scope.get("root_path", ""), scope["path"])


async def both_ways(tenancy: Tenancy, scope: Scope) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(`resolve` after a warm-up, `resolve_now`) for one scope; "stepped aside" for None."""
    resolver = tenancy.resolver
    awaited = await outcome(lambda: resolver.resolve(dict(scope)))
    try:
        now = resolver.resolve_now(dict(scope))
    except TenancyError as error:
        return awaited, ("refused", type(error).__name__)
    if now is None:
        return awaited, ("stepped aside",)
    return awaited, await outcome(now)


CONFIGS: dict[str, dict[str, Any]] = {
    "subdomain": {"sources": ("subdomain",)},
    "subdomain+custom_domain": {"sources": ("subdomain", "custom_domain")},
    "subdomain+header": {"sources": ("subdomain", "header")},
    "header": {"sources": ("header",)},
    "path": {"sources": ("path",)},
    "subdomain, tenant required": {"sources": ("subdomain",), "tenant_required": True},
}


@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
async def test_resolve_now_answers_as_resolve_does_or_steps_aside(
    make_tenancy: TenancyFactory, config: str
) -> None:
    tenancy = make_tenancy(**CONFIGS[config])
    await tenancy.start()
    acme = await tenancy.provision("acme")
    await tenancy.provision("globex")
    await tenancy.add_domain("acme", "shop.acme.test")
    scopes = [http_scope(host) for host in HOSTILE_HOSTS]
    scopes += [
        http_scope("app.test", (b"x-tenant-id", b"acme")),
        http_scope("acme.example.com", (b"x-tenant-id", b"acme")),
        http_scope("acme.example.com", (b"x-tenant-id", b"globex")),  # a mismatch
        http_scope("acme.example.com", (b"x-tenant-id", acme.id.encode())),
        http_scope("app.test", (b"x-tenant-id", b"not a slug!")),
        http_scope("app.test", (b"x-tenant-id", b"acme"), (b"x-tenant-id", b"acme")),
        http_scope(None),
        http_scope("app.test", path="/t/acme/whoami"),
        http_scope("app.test", path="/t/nope/whoami"),
        http_scope("app.test", path="/t/Bad_Slug/whoami"),
    ]
    fast = 0
    for scope in scopes:
        awaited, now = await both_ways(tenancy, scope)
        if now != ("stepped aside",):
            assert now == awaited, (scope["headers"], scope["path"])
            fast += awaited[0] == "tenant" and awaited[1] != "-"
    # The sync path is really taken for cached tenants (acme and globex are named above).
    assert fast >= 1


async def test_a_suspended_tenant_in_the_cache_is_refused_on_the_sync_path(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("acme")
    app = Starlette(
        routes=[Route("/whoami", lambda r: JSONResponse({"slug": current_tenant().slug}))],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://acme.example.com") as c:
        assert (await c.get("/whoami")).json() == {"slug": "acme"}
        scope = http_scope("acme.example.com")
        assert tenancy.resolver.resolve_now(scope) is not None  # now served from the cache
        await tenancy.suspend("acme")
        assert (await c.get("/whoami")).status_code == 403
        # Cached again as suspended: the sync path itself refuses.
        with pytest.raises(TenancyError) as refused:
            tenancy.resolver.resolve_now(scope)
        assert refused.value.status_code == 403  # type: ignore[attr-defined]


class AsyncOnlySource:
    """A source with no `identify_now`: the chain must take the awaited path."""

    name = "async-only"

    async def identify(self, scope: Scope) -> TenantKey | None:
        return TenantKey("slug", "acme")


async def test_a_source_without_identify_now_turns_the_sync_path_off(
    make_tenancy: TenancyFactory, tmp_path: Any
) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("acme")
    custom = Tenancy(tenancy.config, registry=tenancy.registry, sources=[AsyncOnlySource()])
    try:
        await custom.start()

        async def whoami(request: Request) -> JSONResponse:
            return JSONResponse({"slug": current_tenant().slug})

        app = Starlette(
            routes=[Route("/whoami", whoami)],
            middleware=[Middleware(TenancyMiddleware, tenancy=custom)],
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x.test") as client:
            for _ in range(2):
                assert (await client.get("/whoami")).json() == {"slug": "acme"}
        assert custom.resolver.resolve_now(http_scope("x.test")) is None
    finally:
        await custom.aclose()
