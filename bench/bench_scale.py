"""4. Scale: N tenants requested round-robin through a cap of 256 open pools.

Each request is a full ASGI request behind `TenancyMiddleware` (subdomain source) whose handler
runs one `SELECT` through `tenant_db()`. With N <= 256 every pool stays open; above it,
round-robin is the LRU's worst case: every request opens its tenant's pool (a connection
opened on a worker thread, WAL setup, the ledger and identity checks) and retires the least
recently used one.

Each N runs in a fresh child process (so peak RSS, fds and threads are its own), rounds
interleave the N values, and each child:

1. warms the context cache with one `GET /ping` per tenant (no database), so what is measured
   is pool churn, not control-plane lookups (`cache_ttl` is raised to an hour for that);
2. opens the pools of up to 512 tenants with one `GET /` each;
3. times `--requests` `GET /` round-robin over the N tenants from `--concurrency` tasks and
   reports CPU per request (the process's, worker threads included, and the event loop
   thread's); meanwhile the parent samples the child's RSS, open fds and threads from
   `/proc/<pid>` every 20 ms (done on the child's own loop, the fd listing alone took ~12% of
   a loop-bound run's time).

The tenants come from a data set provisioned once into bench/data/scale (see `_dataset.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _dataset
from _apps import (
    NOTES_PACKAGE,
    call_once,
    http_scope,
    request_headers,
    starlette_app,
    tenancy_config,
)
from _harness import (
    Report,
    current_rss_mib,
    open_fds,
    peak_rss_mib,
    print_table,
    run,
    summarize,
    thread_count,
)
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyMiddleware
from tenant_middleware.context import tenant_db

POOL_CAP = 256
Run = dict[str, Any]
TIMED_START, TIMED_END = "timed run starts", "timed run ends"
SELECT = "SELECT id, title FROM notes WHERE id = ?"


async def _query(request: Request) -> Response:
    async with tenant_db() as db:
        row = (await db.execute(SELECT, (1,))).first()
    return JSONResponse({"row": row})


async def _ping(request: Request) -> Response:
    return PlainTextResponse("pong")


async def child(data_dir: Path, tenants: int, requests: int, concurrency: int) -> dict[str, Any]:
    """One measurement in this process; returns its figures."""
    config = tenancy_config(data_dir, "subdomain", pool_max_pools=POOL_CAP, cache_ttl=3600.0)
    tenancy = Tenancy(config, packages=[NOTES_PACKAGE])
    await tenancy.start()
    app = starlette_app(
        [Middleware(TenancyMiddleware, tenancy=tenancy)],
        [Route("/", _query), Route("/ping", _ping)],
    )
    slugs = [_dataset.slug("s", i) for i in range(tenants)]
    scopes = [http_scope(request_headers("subdomain", s)) for s in slugs]
    pings = [http_scope(request_headers("subdomain", s), "/ping") for s in slugs]
    baseline = {"rss_mib": current_rss_mib(), "fds": open_fds(), "threads": thread_count()}

    start = time.perf_counter()
    for scope in pings:
        status, _ = await call_once(app, scope)
        assert status == 200, status
    warm_contexts_s = time.perf_counter() - start
    for scope in scopes[-min(tenants, 2 * POOL_CAP) :]:
        await call_once(app, scope)
    before = tenancy.stats()

    order = itertools.islice(itertools.cycle(scopes), requests)
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for scope in order:  # workers share one iterator: round-robin over the tenants
            begin = time.perf_counter()
            status, _ = await call_once(app, scope)
            latencies.append(time.perf_counter() - begin)
            errors += status != 200

    # The parent samples RSS, fds and threads from /proc between these two lines: listing
    # ~850 fds every 20 ms on this process's own loop cost ~12% of a loop-bound run's time.
    print(TIMED_START, flush=True)
    cpu_start, loop_start = _process_cpu(), time.thread_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    # CPU per request: the whole process (worker threads included) and the loop's thread.
    cpu_ms = {
        "process": round((_process_cpu() - cpu_start) / requests * 1e3, 3),
        "loop": round((time.thread_time() - loop_start) / requests * 1e3, 3),
    }
    print(TIMED_END, flush=True)
    after = tenancy.stats()
    lat = summarize([x * 1e3 for x in latencies])
    ordered = sorted(latencies)
    result = {
        "tenants": tenants,
        "requests": requests,
        "concurrency": concurrency,
        "errors": errors,
        "seconds": round(elapsed, 3),
        "req_per_s": round(requests / elapsed, 1),
        "latency_ms": {
            **lat.as_dict(),
            "p99": round(ordered[int(len(ordered) * 0.99)] * 1e3, 3),
        },
        "cpu_ms_per_request": cpu_ms,
        "warm_contexts_s": round(warm_contexts_s, 2),
        "baseline": baseline,
        "peak": {"ru_maxrss_mib": round(peak_rss_mib(), 1)},
        "at_end": {"rss_mib": current_rss_mib(), "fds": open_fds(), "threads": thread_count()},
        "pools_during_run": {
            "evictions": after.pools.evictions - before.pools.evictions,
            "pools_created": after.pools.pools_created - before.pools.pools_created,
            "connections_opened": after.pools.connections_opened - before.pools.connections_opened,
            "timeouts": after.pools.timeouts - before.pools.timeouts,
            "waits": after.pools.waits - before.pools.waits,
        },
        "pools_at_end": dataclasses.asdict(after.pools),
        "cache_at_end": dataclasses.asdict(after.cache),
    }
    await tenancy.aclose()
    return result


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(data_dir: Path, tenants: int, requests: int, concurrency: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        str(tenants),
        "--data",
        str(data_dir),
        "--requests",
        str(requests),
        "--concurrency",
        str(concurrency),
    ]
    child_process = subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stdout, stderr = child_process.stdout, child_process.stderr
    assert stdout is not None
    assert stderr is not None
    errors: list[str] = []
    lines: list[str] = []
    timing = threading.Event()

    def read_lines() -> None:
        for line in stdout:
            if line.strip() == TIMED_START:
                timing.set()
            elif line.strip() == TIMED_END:
                timing.clear()
            lines.append(line)

    reader = threading.Thread(target=read_lines)
    drain = threading.Thread(target=lambda: errors.append(stderr.read()))
    reader.start()
    drain.start()
    peaks = {"rss_mib": 0.0, "fds": 0, "threads": 0}
    proc = Path(f"/proc/{child_process.pid}")
    while reader.is_alive():
        if timing.is_set():
            with contextlib.suppress(OSError):  # exited meanwhile
                peaks["rss_mib"] = max(peaks["rss_mib"], _rss_mib(proc))
                peaks["fds"] = max(peaks["fds"], len(os.listdir(proc / "fd")))
                peaks["threads"] = max(peaks["threads"], len(os.listdir(proc / "task")))
        time.sleep(0.02)
    reader.join()
    drain.join()
    if child_process.wait() != 0:
        raise RuntimeError(f"child for {tenants} tenants failed:\n{errors[0][-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["peak"].update(peaks)
    return result


def _rss_mib(proc: Path) -> float:
    for line in (proc / "status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=None, help="timed requests per run")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent request tasks")


async def main() -> None:
    from _harness import parse_args

    args = parse_args("Scale: tenants round-robin through a 256-pool cap", options)
    if args.child is not None:
        result = await child(args.data, args.child, args.requests, args.concurrency)
        print(json.dumps(result))
        return
    sizes = [100, 1000] if args.quick else [100, 1000, 10_000]
    requests = args.requests or (1000 if args.quick else 5000)
    rounds = 1 if args.quick else 2
    report = Report("scale", args.quick)
    data_dir, marker = await _dataset.ensure("scale", max(sizes), prefix="s")
    report.add("dataset", {"path": str(data_dir.relative_to(data_dir.parents[2])), **marker})
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    for r in range(rounds):
        order = sizes[r % len(sizes) :] + sizes[: r % len(sizes)]
        for n in order:
            print(f"round {r + 1}/{rounds}: {n} tenants ...", flush=True)
            runs[n].append(run_child(data_dir, n, requests, args.concurrency))
    rows = []
    summary: dict[str, Any] = {}
    base = runs[sizes[0]]
    for n in sizes:
        results = runs[n]

        def med(get: Callable[[dict[str, Any]], float], results: list[Run] = results) -> float:
            return float(statistics.median(get(x) for x in results))

        rps = med(lambda x: x["req_per_s"])
        row = {
            "req_per_s": rps,
            # Paired by round: each size against the smallest measured in the same round.
            "ratio_vs_smallest": statistics.median(
                x["req_per_s"] / b["req_per_s"] for x, b in zip(results, base, strict=True)
            ),
            "p50_ms": med(lambda x: x["latency_ms"]["median"]),
            "p99_ms": med(lambda x: x["latency_ms"]["p99"]),
            "cpu_ms": med(lambda x: x["cpu_ms_per_request"]["process"]),
            "loop_cpu_ms": med(lambda x: x["cpu_ms_per_request"]["loop"]),
            "peak_rss_mib": med(lambda x: x["peak"]["ru_maxrss_mib"]),
            "baseline_rss_mib": med(lambda x: x["baseline"]["rss_mib"]),
            "peak_fds": med(lambda x: x["peak"]["fds"]),
            "peak_threads": med(lambda x: x["peak"]["threads"]),
            "evictions": med(lambda x: x["pools_during_run"]["evictions"]),
            "open_pools_at_end": med(lambda x: x["pools_at_end"]["open_pools"]),
            "errors": sum(x["errors"] for x in results),
        }
        summary[str(n)] = {"median": row, "runs": results}
        rows.append(
            [
                n,
                rps,
                row["ratio_vs_smallest"],
                row["p50_ms"],
                row["p99_ms"],
                row["cpu_ms"],
                row["loop_cpu_ms"],
                row["peak_rss_mib"],
                row["peak_fds"],
                row["peak_threads"],
                row["evictions"],
                row["errors"],
            ]
        )
    print_table(
        f"{requests} requests round-robin, {args.concurrency} concurrent, pool cap {POOL_CAP}"
        f" (median of {rounds} runs per size)",
        [
            "tenants",
            "req/s",
            f"x {sizes[0]}",
            "p50 ms",
            "p99 ms",
            "CPU ms/req",
            "loop ms/req",
            "peak RSS MiB",
            "peak fds",
            "peak threads",
            "evictions",
            "errors",
        ],
        rows,
    )
    report.add(
        "config",
        {
            "pool_max_pools": POOL_CAP,
            "requests": requests,
            "concurrency": args.concurrency,
            "rounds": rounds,
            "cache_ttl": 3600,
        },
    )
    report.add("sizes", summary)
    report.write(enabled=not args.no_write)


if __name__ == "__main__":
    run(main)
