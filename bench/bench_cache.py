"""2. The context cache's miss path: a tenant's first request, and unknown tenants.

Behind `TenancyMiddleware` (subdomain source) on a real SQLite control plane holding a few
hundred tenants, interleaved in rounds, each request timed on its own:

- warm hit: the tenant's context is cached (what `bench_overhead.py` measures);
- miss: the tenant was just invalidated, so the request looks it up in the control plane
  (a read on one of the registry's reader connections, off the event loop);
- negative hit: an unknown subdomain already answered once (404 from the negative cache);
- negative miss: an unknown subdomain never seen before (a control-plane lookup, then 404);
- bare: the same app without the middleware, for scale.

Then a stampede: 200 concurrent first requests for one uncached tenant (single-flight: one
control-plane lookup).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import tempfile
import time
from pathlib import Path

from _apps import (
    ASGIApp,
    Scope,
    call_once,
    http_scope,
    request_headers,
    starlette_app,
    tenancy_config,
)
from _harness import Report, Timed, compare, interleaved, parse_args, print_table, run
from starlette.middleware import Middleware

from tenant_middleware import Tenancy, TenancyMiddleware, TenantStatus
from tenant_middleware.validation import new_tenant_id


async def main() -> None:
    args = parse_args("Context cache: miss path and negative cache")
    tenants, rounds, per_round = (100, 40, 5) if args.quick else (500, 300, 10)
    report = Report("cache", args.quick)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as folder:
        tenancy = Tenancy(tenancy_config(Path(folder), "subdomain"))
        await tenancy.start()
        # Registry rows only: these requests never open a tenant's database.
        ids: dict[str, str] = {}
        for i in range(tenants):
            slug = f"t{i:05d}"
            tenant = await tenancy.registry.create(
                tenant_id=new_tenant_id(), slug=slug, status=TenantStatus.ACTIVE
            )
            ids[slug] = tenant.id
        app = starlette_app([Middleware(TenancyMiddleware, tenancy=tenancy)])
        bare = starlette_app()
        scopes = {slug: http_scope(request_headers("subdomain", slug)) for slug in ids}
        hot = scopes["t00000"]
        unknown = http_scope(request_headers("subdomain", "nobody-here"))
        fresh_unknown = (f"ghost{i}" for i in itertools.count())
        slugs = itertools.cycle(list(ids)[1:])

        async def timed(app_: ASGIApp, scope: Scope, status: int) -> float:
            start = time.perf_counter()
            got, _ = await call_once(app_, scope)
            elapsed = time.perf_counter() - start
            if got != status:
                raise RuntimeError(f"expected {status}, got {got}")
            return elapsed

        async def bare_loop(n: int) -> float:
            return sum([await timed(bare, hot, 200) for _ in range(n)])

        async def hit_loop(n: int) -> float:
            return sum([await timed(app, hot, 200) for _ in range(n)])

        async def miss_loop(n: int) -> float:
            total = 0.0
            for _ in range(n):
                slug = next(slugs)
                tenancy.invalidate(ids[slug])  # untimed: the next request must look it up
                total += await timed(app, scopes[slug], 200)
            return total

        async def negative_hit_loop(n: int) -> float:
            await call_once(app, unknown)  # untimed: (re)fill the 5 s negative entry
            return sum([await timed(app, unknown, 404) for _ in range(n)])

        async def negative_miss_loop(n: int) -> float:
            total = 0.0
            for _ in range(n):
                scope = http_scope(request_headers("subdomain", next(fresh_unknown)))
                total += await timed(app, scope, 404)
            return total

        variants: dict[str, Timed] = {
            "bare (no middleware)": bare_loop,
            "warm hit": hit_loop,
            "miss (control-plane lookup)": miss_loop,
            "negative hit (unknown, cached 404)": negative_hit_loop,
            "negative miss (unknown, first 404)": negative_miss_loop,
        }
        for _ in range(3):
            await hit_loop(20)
        samples = await interleaved(variants, rounds=rounds, iterations=per_round, warmup=per_round)
        results = compare(samples, "bare (no middleware)")
        hit = samples["warm hit"]
        rows = []
        for name, c in results.items():
            over_hit = [v - h for v, h in zip(samples[name], hit, strict=True)]
            rows.append(
                [
                    name,
                    c.per_op.median * 1e6,
                    c.per_op.p10 * 1e6,
                    c.added.median * 1e6,
                    sorted(over_hit)[len(over_hit) // 2] * 1e6,
                ]
            )
        print_table(
            f"Per request, {rounds} interleaved rounds x {per_round} requests, "
            f"{tenants} tenants in the control plane",
            ["variant", "us/req med", "us/req p10", "added vs bare", "added vs warm hit"],
            rows,
        )

        # Stampede: many concurrent first requests for one tenant make one lookup.
        slug = "t00001"
        tenancy.invalidate(ids[slug])
        loads_before = tenancy.stats().cache.loads
        start = time.perf_counter()
        statuses = await asyncio.gather(*(call_once(app, scopes[slug]) for _ in range(200)))
        stampede_s = time.perf_counter() - start
        loads = tenancy.stats().cache.loads - loads_before
        assert all(status == 200 for status, _ in statuses)
        print_table(
            "Stampede: 200 concurrent first requests for one uncached tenant",
            ["requests", "wall ms", "control-plane lookups"],
            [[200, stampede_s * 1e3, loads]],
        )
        stats = tenancy.stats().cache
        await tenancy.aclose()
    report.add(
        "per_request",
        {
            "rounds": rounds,
            "requests_per_round": per_round,
            "tenants_in_control_plane": tenants,
            "variants": {k: v.as_dict() for k, v in results.items()},
        },
    )
    report.add(
        "stampede", {"requests": 200, "wall_ms": round(stampede_s * 1e3, 2), "lookups": loads}
    )
    report.add("cache_stats", dataclasses.asdict(stats))
    report.write(enabled=not args.no_write)


if __name__ == "__main__":
    run(main)
