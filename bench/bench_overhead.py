"""1. Middleware overhead: the same Starlette app bare and behind each middleware.

Two drivers, each interleaving every variant in many short rounds:

- direct: a loop of ASGI calls (a fresh copy of a prebuilt scope, a receive that returns an
  empty body, a send that drops messages): no sockets, no HTTP parsing;
- httpx: `httpx.AsyncClient` over `httpx.ASGITransport`, as tests and in-process clients do;
- fastapi: the direct loop on FastAPI apps, bare and behind `TenancyMiddleware`, reading the
  tenant not at all, through the library's `CurrentTenant` dependency, or through an
  `async def` dependency defined here.

Every variant is checked to answer 200 and warmed up first, so the tenant context is cached
(the miss path is `bench_cache.py`). The peers, fastapi-tenancy 0.5 in header mode on its
in-memory store and starlette-context's `RawContextMiddleware` without plugins, are measured
only when installed, i.e. in bench/.venv (`bench/setup.sh`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
from _apps import (
    ASGIApp,
    Header,
    direct_loop,
    expect_status,
    http_scope,
    request_headers,
    starlette_app,
    tenancy_app,
)
from _harness import (
    Comparison,
    Report,
    Timed,
    compare,
    interleaved,
    parse_args,
    print_table,
    run,
)
from fastapi import Depends, FastAPI
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection

from tenant_middleware import TenancyMiddleware, TenantContext
from tenant_middleware.integrations.fastapi import CurrentTenant
from tenant_middleware.integrations.starlette import request_tenant

TENANT = "acme"
Variants = dict[str, tuple[ASGIApp, list[Header]]]
OURS = {
    "ours subdomain": "subdomain",
    "ours header": "header",
    "ours jwt (repeated HS256)": "jwt",
    "ours default sources (subdomain+custom_domain)": "default",
}


async def add_peers(variants: Variants, stack: AsyncExitStack) -> None:
    """The peers' variants; skipped with a note when not installed (the project's own venv)."""
    try:
        from starlette_context.middleware import RawContextMiddleware
    except ImportError:
        print("starlette-context is not installed: skipped (run bench/setup.sh)")
    else:
        variants["starlette-context raw, no plugins"] = (
            starlette_app([Middleware(RawContextMiddleware)]),
            request_headers("subdomain", TENANT),
        )
    try:
        from fastapi_tenancy.core.config import TenancyConfig as FTConfig
        from fastapi_tenancy.core.types import IsolationStrategy, ResolutionStrategy
        from fastapi_tenancy.core.types import Tenant as FTTenant
        from fastapi_tenancy.manager import TenancyManager
        from fastapi_tenancy.middleware.tenancy import TenancyMiddleware as FTMiddleware
        from fastapi_tenancy.storage.memory import InMemoryTenantStore
    except ImportError:
        print("fastapi-tenancy is not installed: skipped (run bench/setup.sh)")
        return
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ft-")))
    headers = [
        (b"host", b"app.internal"),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"*/*"),
        (b"x-tenant-id", TENANT.encode()),
    ]
    for label, l1 in (("fastapi-tenancy header", False), ("fastapi-tenancy header + L1", True)):
        # Wired as in peers.md: in-memory store, `database` isolation (its validator wants a
        # URL template even for SQLite; these requests touch no database).
        config = FTConfig(
            database_url=f"sqlite+aiosqlite:///{folder}/master.db",
            resolution_strategy=ResolutionStrategy.HEADER,
            isolation_strategy=IsolationStrategy.DATABASE,
            database_url_template=f"sqlite+aiosqlite:///{folder}/{{database_name}}.db",
            l1_cache_enabled=l1,
        )
        store = InMemoryTenantStore()
        manager = TenancyManager(config, store)
        await manager.initialize()
        stack.push_async_callback(manager.close)
        await store.create(FTTenant(id="tenant-acme", identifier=TENANT, name="Acme"))
        variants[label] = (starlette_app([Middleware(FTMiddleware, manager=manager)]), headers)


class PassThrough:
    """A pure-ASGI middleware that only calls the app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@asynccontextmanager
async def all_variants() -> AsyncIterator[Variants]:
    """bare, ours (one variant per source), then the peers; all torn down on exit."""
    async with AsyncExitStack() as stack:
        variants: Variants = {"bare": (starlette_app(), request_headers("subdomain", TENANT))}
        # The floor: what any pure-ASGI middleware costs in Starlette's stack, doing nothing.
        variants["no-op pure ASGI middleware"] = (
            starlette_app([Middleware(PassThrough)]),
            request_headers("subdomain", TENANT),
        )
        for label, source in OURS.items():
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-tm-")))
            tenancy, app = await tenancy_app(folder, source, (TENANT,))
            stack.push_async_callback(tenancy.aclose)
            variants[label] = (app, request_headers(source, TENANT))
        await add_peers(variants, stack)
        yield variants


def httpx_loop(client: httpx.AsyncClient, headers: dict[str, str]) -> Timed:
    """A timed loop of `GET /` through the client."""

    async def loop(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            response = await client.get("/", headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"answered {response.status_code}: {response.text[:200]}")
        return time.perf_counter() - start

    return loop


HEADERS = ["variant", "us/req med", "us/req best", "added us med", "x bare", "added us best"]


def table_rows(results: dict[str, Comparison]) -> list[list[Any]]:
    return [
        [
            name,
            c.per_op.median * 1e6,
            c.per_op.minimum * 1e6,
            c.added.median * 1e6,
            c.ratio.median,
            c.added_best * 1e6,
        ]
        for name, c in results.items()
    ]


async def direct_section(variants: Variants, rounds: int, n: int) -> dict[str, Comparison]:
    loops: dict[str, Timed] = {}
    for name, (app, headers) in variants.items():
        scope = http_scope(headers)
        await expect_status(app, scope)
        loops[name] = direct_loop(app, scope)
    samples = await interleaved(loops, rounds=rounds, iterations=n, warmup=20 * n)
    return compare(samples, "bare")


async def httpx_section(variants: Variants, rounds: int, n: int) -> dict[str, Comparison]:
    async with AsyncExitStack() as clients:
        loops: dict[str, Timed] = {}
        for name, (app, headers) in variants.items():
            host = dict(headers)[b"host"].decode()
            extra = {k.decode(): v.decode() for k, v in headers if k != b"host"}
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{host}"
            )
            loops[name] = httpx_loop(await clients.enter_async_context(client), extra)
        samples = await interleaved(loops, rounds=rounds, iterations=n, warmup=5 * n)
    return compare(samples, "bare")


async def _async_current_tenant(connection: HTTPConnection) -> TenantContext:
    return request_tenant(connection)


AsyncCurrentTenant = Annotated[TenantContext, Depends(_async_current_tenant)]


async def fastapi_section(rounds: int, n: int) -> dict[str, Comparison]:
    """FastAPI apps: what reading the tenant through a dependency costs."""
    with tempfile.TemporaryDirectory(prefix="bench-tm-") as folder:
        tenancy, _ = await tenancy_app(Path(folder), "subdomain", (TENANT,))
        bare, plain, sync_dep, async_dep = FastAPI(), FastAPI(), FastAPI(), FastAPI()
        for app in (plain, sync_dep, async_dep):
            app.add_middleware(TenancyMiddleware, tenancy=tenancy)

        @bare.get("/")
        @plain.get("/")
        async def fixed() -> dict[str, str]:
            return {"slug": TENANT}

        @sync_dep.get("/")
        async def with_current_tenant(tenant: CurrentTenant) -> dict[str, str]:
            return {"slug": tenant.slug}

        @async_dep.get("/")
        async def with_async_dependency(tenant: AsyncCurrentTenant) -> dict[str, str]:
            return {"slug": tenant.slug}

        scope = http_scope(request_headers("subdomain", TENANT))
        apps = {
            "fastapi bare": bare,
            "fastapi + TenancyMiddleware, tenant not read": plain,
            "fastapi + TenancyMiddleware + CurrentTenant": sync_dep,
            "fastapi + TenancyMiddleware + async def dependency": async_dep,
        }
        loops: dict[str, Timed] = {}
        for name, app in apps.items():
            await expect_status(app, scope)
            loops[name] = direct_loop(app, scope)
        samples = await interleaved(loops, rounds=rounds, iterations=n, warmup=5 * n)
        await tenancy.aclose()
    return compare(samples, "fastapi bare")


async def main() -> None:
    args = parse_args("Middleware overhead: bare Starlette vs tenancy middlewares")
    direct_rounds, direct_n = (60, 100) if args.quick else (600, 200)
    httpx_rounds, httpx_n = (10, 10) if args.quick else (80, 25)
    report = Report("overhead", args.quick)
    async with all_variants() as variants:
        direct = await direct_section(variants, direct_rounds, direct_n)
        print_table(
            f"Direct ASGI call loop: {direct_rounds} interleaved rounds x {direct_n} requests",
            HEADERS,
            table_rows(direct),
        )
        through = await httpx_section(variants, httpx_rounds, httpx_n)
        print_table(
            f"httpx.ASGITransport: {httpx_rounds} interleaved rounds x {httpx_n} requests",
            HEADERS,
            table_rows(through),
        )
    fa_rounds, fa_n = (10, 20) if args.quick else (150, 50)
    fastapi_results = await fastapi_section(fa_rounds, fa_n)
    print_table(
        f"FastAPI, direct ASGI call loop: {fa_rounds} interleaved rounds x {fa_n} requests",
        HEADERS,
        table_rows(fastapi_results),
    )
    report.add(
        "fastapi",
        {
            "rounds": fa_rounds,
            "requests_per_round": fa_n,
            "variants": {k: v.as_dict() for k, v in fastapi_results.items()},
        },
    )
    report.add(
        "direct",
        {
            "rounds": direct_rounds,
            "requests_per_round": direct_n,
            "variants": {k: v.as_dict() for k, v in direct.items()},
        },
    )
    report.add(
        "httpx",
        {
            "rounds": httpx_rounds,
            "requests_per_round": httpx_n,
            "variants": {k: v.as_dict() for k, v in through.items()},
        },
    )
    report.write(enabled=not args.no_write)


if __name__ == "__main__":
    run(main)
