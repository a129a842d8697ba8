"""11i. The cached request path in CPU time: what ours adds over bare Starlette, and over a floor.

The issue's measure: a cached subdomain request, direct ASGI call loop (no sockets), CPU time
(`time.thread_time`, so a neighbour's load on the other core does not count, only what it
steals from ours), added over bare Starlette in the same round; and fastapi-tenancy's added
cost against ours in the same run.

Variants, each the same one-route Starlette app:
- bare; a no-op pure-ASGI middleware (what any middleware pays in Starlette's stack);
- a floor tenancy middleware: the least a tenant middleware can do (host label from the raw
  headers, a dict lookup, a ContextVar set and reset, the tenant in `scope["state"]`), with
  none of our checks;
- ours: subdomain and header sources, tenant cached;
- fastapi-tenancy 0.5 (header, in-memory store) and starlette-context's raw middleware, when
  installed (bench/.venv).

Rounds interleave the variants in rotated order; "added" is each round's variant time minus
bare's in that round, and its median over the rounds is reported with the median of the
per-round ratios (fastapi-tenancy added / ours added).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from _apps import (
    ASGIApp,
    Header,
    _discard,
    _receive,
    expect_status,
    http_scope,
    request_headers,
    starlette_app,
    tenancy_app,
)
from bench_overhead import PassThrough, add_peers
from starlette.middleware import Middleware

TENANT = "acme"
_floor_tenant: contextvars.ContextVar[object] = contextvars.ContextVar("floor_tenant")


class FloorMiddleware:
    """The least a tenancy middleware does on a cached request, with none of the checks."""

    def __init__(self, app: Any, tenants: dict[bytes, object]) -> None:
        self.app = app
        self.tenants = tenants

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = b""
        for key, value in scope["headers"]:
            if key == b"host":
                host = value
                break
        tenant = self.tenants.get(host.partition(b".")[0])
        scope.setdefault("state", {})["tenant"] = tenant
        token = _floor_tenant.set(tenant)
        try:
            await self.app(scope, receive, send)
        finally:
            _floor_tenant.reset(token)


def cpu_loop(app: ASGIApp, scope: dict[str, Any]) -> Any:
    async def loop(n: int) -> float:
        receive, send, template = _receive, _discard, scope
        start = time.thread_time()
        for _ in range(n):
            await app(dict(template), receive, send)
        return time.thread_time() - start

    return loop


@asynccontextmanager
async def all_variants(
    only: str | None = None,
) -> AsyncIterator[dict[str, tuple[ASGIApp, list[Header]]]]:
    """Every variant, or only the one named (the peers are built only when one is named)."""
    async with AsyncExitStack() as stack:
        subdomain = request_headers("subdomain", TENANT)
        variants: dict[str, tuple[ASGIApp, list[Header]]] = {
            "bare": (starlette_app(), subdomain),
            "no-op pure ASGI middleware": (starlette_app([Middleware(PassThrough)]), subdomain),
            "floor tenancy middleware (no checks)": (
                starlette_app([Middleware(FloorMiddleware, tenants={b"acme": object()})]),
                subdomain,
            ),
        }
        for label, source in (("ours subdomain", "subdomain"), ("ours header", "header")):
            if only is not None and only != label:
                continue
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-c-")))
            tenancy, app = await tenancy_app(folder, source, (TENANT,))
            stack.push_async_callback(tenancy.aclose)
            variants[label] = (app, request_headers(source, TENANT))
        if only is None or only not in variants:
            await add_peers(variants, stack)
        yield variants


async def timed(rounds: int, n: int) -> dict[str, list[float]]:
    async with all_variants() as variants:
        loops = {}
        for name, (app, headers) in variants.items():
            scope = http_scope(headers)
            await expect_status(app, scope)
            loops[name] = cpu_loop(app, scope)
            await loops[name](20 * n)  # warm-up: caches filled, code paths hot
        gc.collect()
        gc.freeze()
        samples: dict[str, list[float]] = {name: [] for name in loops}
        names = list(loops)
        for r in range(rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(await loops[name](n) / n)
    return samples


async def only(variant: str, n: int) -> None:
    """`n` requests of one variant after its warm-up (what a callgrind run counts)."""
    async with all_variants(variant) as variants:
        app, headers = variants[variant]
        scope = http_scope(headers)
        await expect_status(app, scope)
        loop = cpu_loop(app, scope)
        await loop(500)
        gc.collect()
        gc.freeze()  # as in the timed rounds: no full collection over start-up's objects
        await loop(n)


def instructions(variants: list[str], low: int, high: int) -> dict[str, float]:
    """Instructions per request, counted by callgrind: (count at `high` - at `low`) / difference.

    The difference cancels start-up, imports and warm-up; callgrind counts the same total for
    the same run whatever else the machine does, so this is the one figure noise cannot move.
    """
    per_request: dict[str, float] = {}
    for variant in variants:
        totals = []
        for n in (low, high):
            with tempfile.TemporaryDirectory(prefix="bench-cg-") as folder:
                out = Path(folder) / "callgrind.out"
                subprocess.run(  # noqa: S603 -- our own script, under valgrind
                    [  # noqa: S607 -- valgrind from PATH, as a user would run it
                        "valgrind",
                        "--tool=callgrind",
                        f"--callgrind-out-file={out}",
                        sys.executable,
                        __file__,
                        "--only",
                        variant,
                        "--requests",
                        str(n),
                    ],
                    check=True,
                    capture_output=True,
                    env={**os.environ, "PYTHONHASHSEED": "0"},
                )
                summary = next(
                    line for line in out.read_text().splitlines() if line.startswith("summary:")
                )
                totals.append(int(summary.split()[1]))
        per_request[variant] = (totals[1] - totals[0]) / (high - low)
        print(f"  {variant}: {per_request[variant]:,.0f} instructions/request", flush=True)
    return per_request


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="20 rounds x 300 (smoke run)")
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions under callgrind"
    )
    args = parser.parse_args()
    if args.only:
        await only(args.only, args.requests)
        return
    rounds, n = (20, 300) if args.quick else (args.rounds, args.requests)
    samples = await timed(rounds, n)
    bare = samples["bare"]
    print(f"direct ASGI loop, CPU time (thread_time): {rounds} rounds x {n} requests")
    print(f"{'variant':<42} {'us/req med':>10} {'added med':>10} {'added p25':>10} {'x bare':>7}")
    added: dict[str, list[float]] = {}
    for name, values in samples.items():
        added[name] = [(v - b) * 1e6 for v, b in zip(values, bare, strict=True)]
        ratio = statistics.median(b / v for v, b in zip(values, bare, strict=True))
        print(
            f"{name:<42} {statistics.median(values) * 1e6:>10.2f} "
            f"{statistics.median(added[name]):>10.2f} "
            f"{statistics.quantiles(added[name], n=4)[0]:>10.2f} {ratio:>7.3f}"
        )
    peer = "fastapi-tenancy header"
    if peer in added:
        for ours in ("ours subdomain", "ours header"):
            ratios = [p / o for p, o in zip(added[peer], added[ours], strict=True) if o > 0]
            print(
                f"{peer} added / {ours} added: median of rounds {statistics.median(ratios):.2f}x,"
                f" of medians "
                f"{statistics.median(added[peer]) / statistics.median(added[ours]):.2f}x"
            )

    if args.instructions:
        print("callgrind, instructions per request (500 vs 1,500 requests after warm-up):")
        counted = instructions(
            [
                "bare",
                "floor tenancy middleware (no checks)",
                "ours subdomain",
                "ours header",
                *(["fastapi-tenancy header"] if peer in added else []),
            ],
            500,
            1500,
        )
        base = counted["bare"]
        for name, value in counted.items():
            print(f"  {name:<42} +{value - base:>8,.0f} over bare ({value / base:.3f}x)")
        if peer in counted:
            print(
                f"  {peer} added / ours subdomain added: "
                f"{(counted[peer] - base) / (counted['ours subdomain'] - base):.2f}x"
            )


if __name__ == "__main__":
    asyncio.run(main())
