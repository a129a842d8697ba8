"""3. The database path: tenant_db() vs a raw connection, pool costs, cold tenants, provision().

- provision: `tenancy.provision()` of new local tenants with a small schema package (two
  migrations: a table and an index, then three rows), each timed on its own;
- query: `SELECT ... WHERE id = ?` through `tenant_db()` (inside `tenant_scope`) vs the same
  statement on a raw `SQLiteConnection` opened on the same file; plus a warm pool lease alone
  (`tenancy.pools.connection(id)` enter/exit) and `tenant_db()` enter/exit alone;
- request: the same SELECT in a route handler, behind `TenancyMiddleware` with `tenant_db()`
  vs a bare app whose handler uses the raw connection;
- cold tenant: the first request of a tenant whose pool is closed (pool creation: file check,
  connection thread, WAL setup, schema ledger read), paired with its next (warm) request;
  and the same with the tenant's context evicted from the cache too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
from pathlib import Path

from _apps import (
    NOTES_PACKAGE,
    Scope,
    call_once,
    direct_loop,
    expect_status,
    http_scope,
    request_headers,
    starlette_app,
    tenancy_config,
)
from _harness import (
    DATA_DIR,
    Comparison,
    Report,
    Timed,
    compare,
    interleaved,
    parse_args,
    print_table,
    run,
    summarize,
)
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyMiddleware, TenantContext, tenant_scope
from tenant_middleware.context import tenant_db
from tenant_middleware.db._sqlite.connection import SQLiteConnection

SELECT = "SELECT id, title, body FROM notes WHERE id = ?"


def show_comparison(
    report: Report,
    section: str,
    title: str,
    headers: list[str],
    results: dict[str, Comparison],
    *,
    rounds: int,
    iterations: int,
) -> None:
    """Print one interleaved comparison (microseconds) and add it to the report."""
    print_table(
        title,
        headers,
        [
            [k, c.per_op.median * 1e6, c.per_op.p10 * 1e6, c.added.median * 1e6, c.ratio.median]
            for k, c in results.items()
        ],
    )
    report.add(
        section,
        {
            "rounds": rounds,
            "iterations": iterations,
            "variants": {k: v.as_dict() for k, v in results.items()},
        },
    )


async def settle() -> None:
    """Let scheduled connection closes finish before the next timed step."""
    for _ in range(3):
        await asyncio.sleep(0.001)


async def main() -> None:
    args = parse_args("Database path: tenant_db(), pools, cold tenants, provisioning")
    provisions, rounds, n, cold_tenants = (15, 40, 20, 10) if args.quick else (100, 200, 50, 60)
    report = Report("db", args.quick)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-db-", dir=DATA_DIR) as folder:
        tenancy = Tenancy(tenancy_config(Path(folder), "subdomain"), packages=[NOTES_PACKAGE])
        await tenancy.start()

        # -- provision() ----------------------------------------------------------------
        await tenancy.provision("warmup")
        tenants: list[TenantContext] = []
        times: list[float] = []
        for i in range(provisions):
            start = time.perf_counter()
            tenants.append(await tenancy.provision(f"p{i:04d}"))
            times.append(time.perf_counter() - start)
        prov = summarize([t * 1e3 for t in times])
        print_table(
            f"provision() of a new local tenant with a 2-migration package ({provisions} runs)",
            ["median ms", "p10 ms", "p75 ms", "max ms", "target ms"],
            [[prov.median, prov.p10, prov.p75, prov.maximum, 20.0]],
        )
        report.add("provision_ms", {**prov.as_dict(), "target_median_ms": 20})

        # -- one query, through the pool or raw -------------------------------------------
        acme = tenants[0]
        path = tenancy.provisioner.locate(acme.id).path
        assert path is not None
        raw = await SQLiteConnection.open(path)
        pools = tenancy.pools

        async def raw_select(k: int) -> float:
            start = time.perf_counter()
            for _ in range(k):
                await raw.execute(SELECT, (2,))
            return time.perf_counter() - start

        async def tenant_db_select(k: int) -> float:
            async with tenant_scope(acme, tenancy=tenancy):
                start = time.perf_counter()
                for _ in range(k):
                    async with tenant_db() as db:
                        await db.execute(SELECT, (2,))
                return time.perf_counter() - start

        async def pool_lease(k: int) -> float:
            start = time.perf_counter()
            for _ in range(k):
                async with pools.connection(acme.id):
                    pass
            return time.perf_counter() - start

        async def tenant_db_lease(k: int) -> float:
            async with tenant_scope(acme, tenancy=tenancy):
                start = time.perf_counter()
                for _ in range(k):
                    async with tenant_db():
                        pass
                return time.perf_counter() - start

        query_variants: dict[str, Timed] = {
            "raw SQLiteConnection SELECT": raw_select,
            "tenant_db() + SELECT": tenant_db_select,
            "pools.connection(id) enter/exit": pool_lease,
            "tenant_db() enter/exit": tenant_db_lease,
        }
        samples = await interleaved(query_variants, rounds=rounds, iterations=n, warmup=n)
        query = compare(samples, "raw SQLiteConnection SELECT")
        show_comparison(
            report,
            "query",
            f"One SELECT by primary key: {rounds} interleaved rounds x {n}",
            ["variant", "us/op med", "us/op p10", "vs raw SELECT us", "x raw"],
            query,
            rounds=rounds,
            iterations=n,
        )

        # -- the same through a request -----------------------------------------------------
        async def via_tenant_db(request: Request) -> Response:
            async with tenant_db() as db:
                row = (await db.execute(SELECT, (2,))).first()
            return JSONResponse({"row": row})

        async def via_raw(request: Request) -> Response:
            row = (await raw.execute(SELECT, (2,))).first()
            return JSONResponse({"row": row})

        app = starlette_app(
            [Middleware(TenancyMiddleware, tenancy=tenancy)], [Route("/", via_tenant_db)]
        )
        bare = starlette_app(routes=[Route("/", via_raw)])
        scope = http_scope(request_headers("subdomain", acme.slug))
        await expect_status(app, scope)
        await expect_status(bare, scope)
        samples = await interleaved(
            {
                "bare app, raw connection": direct_loop(bare, scope),
                "TenancyMiddleware + tenant_db()": direct_loop(app, scope),
            },
            rounds=rounds,
            iterations=n,
            warmup=n,
        )
        request = compare(samples, "bare app, raw connection")
        show_comparison(
            report,
            "request",
            f"GET / doing that SELECT, direct ASGI: {rounds} interleaved rounds x {n}",
            ["variant", "us/req med", "us/req p10", "added us", "x bare"],
            request,
            rounds=rounds,
            iterations=n,
        )
        await raw.close()

        # -- cold tenants -------------------------------------------------------------------
        cold: list[float] = []
        colder: list[float] = []
        warm: list[float] = []

        async def timed_request(scope_: Scope) -> float:
            begin = time.perf_counter()
            status, _ = await call_once(app, scope_)
            elapsed = time.perf_counter() - begin
            if status != 200:
                raise RuntimeError(f"cold request answered {status}")
            return elapsed

        for tenant in tenants[1 : 1 + cold_tenants]:
            tscope = http_scope(request_headers("subdomain", tenant.slug))
            await call_once(app, tscope)  # context cached, pool open
            await pools.discard(tenant.id)
            await settle()
            cold.append(await timed_request(tscope))
            warm.append(await timed_request(tscope))
            await pools.discard(tenant.id)
            tenancy.invalidate(tenant.id)
            await settle()
            colder.append(await timed_request(tscope))
        rows = []
        data = {}
        for label, values in (
            ("warm request (pool open, context cached)", warm),
            ("cold pool, context cached", cold),
            ("cold pool and context not cached", colder),
        ):
            s = summarize([v * 1e3 for v in values])
            rows.append([label, s.median, s.p10, s.p75, s.maximum])
            data[label] = s.as_dict()
        print_table(
            f"First request of a cold tenant (full request with a SELECT; {cold_tenants} tenants)",
            ["case", "median ms", "p10 ms", "p75 ms", "max ms"],
            rows,
        )
        report.add("cold_tenant_ms", data)
        report.add("pool_stats", dataclasses.asdict(tenancy.stats().pools))
        await tenancy.aclose()
    report.write(enabled=not args.no_write)


if __name__ == "__main__":
    run(main)
