"""3b. Per-statement cost and event-loop lateness: ours against stdlib sqlite3 and aiosqlite.

- per operation (wall time, interleaved rounds): a SELECT by primary key, an autocommit INSERT
  and a 3-statement write transaction, each through stdlib `sqlite3` on the loop (the floor),
  `aiosqlite`, our `SQLiteConnection` (inline under its step cap, and `inline=False`: every
  statement on a worker thread) and `tenant_db()` inside `tenant_scope`;
- lateness: a 1 ms heartbeat's lateness while 32 tasks mix reads and writes (4 SELECTs : 1
  INSERT) through `tenant_db()` on 8 tenants, each task yielding to the loop between operations
  as a request does on its I/O; inline and thread-only, plus inline with a ~150k-step query
  every 50 ms (over the cap: it moves to a worker), inline with SELECTs only, and the
  heartbeat alone (what the shared machine itself adds); and the same mix without us, on the
  same files, four connections a file: stdlib `sqlite3` called on the loop (the floor any
  design that runs statements on the loop pays for the statements themselves) and aiosqlite.
  These run saturated (each task as fast as the loop lets it: lateness then is mostly the
  loop's queue of 32 tasks' turns); the mix through stdlib, aiosqlite, ours inline and ours
  thread-only runs again at a fixed 5,000 operations a second in all, a loop with room to
  spare, where lateness is what a statement or a checkpoint holds the loop. Besides
  p50/p99/max: the share of ticks more than 2 ms late, and where those ticks' time went (the
  loop thread on a CPU, waiting for one, or blocked).

Run: `bench/.venv/bin/python bench/bench_dbpath.py [--quick] [--lateness-only]` (about three
minutes; `--lateness-only` skips the per-operation part and writes no results file).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
from _apps import NOTES_PACKAGE, tenancy_config
from _harness import (
    DATA_DIR,
    Report,
    Timed,
    compare,
    interleaved,
    parse_args,
    print_table,
    run,
    summarize,
)

from tenant_middleware import Tenancy, TenantContext, tenant_scope
from tenant_middleware.context import tenant_db
from tenant_middleware.db._sqlite.connection import SQLiteConnection

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

SELECT = "SELECT id, title, body FROM notes WHERE id = ?"
INSERT = "INSERT INTO notes (title, body, created_at) VALUES ('t', 'b', 0)"
# ~150k SQLite steps (17 per row of the recursion): over the inline cap, so it moves to a worker.
LONG = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 9000) "
    "SELECT count(*) FROM c"
)


def stdlib_variants(db: sqlite3.Connection) -> dict[str, Timed]:
    async def select(k: int) -> float:
        start = time.perf_counter()
        for _ in range(k):
            db.execute(SELECT, (2,)).fetchall()
        return time.perf_counter() - start

    async def insert(k: int) -> float:
        start = time.perf_counter()
        for _ in range(k):
            db.execute(INSERT)
        return time.perf_counter() - start

    async def three(k: int) -> float:
        start = time.perf_counter()
        for _ in range(k):
            db.execute("BEGIN IMMEDIATE")
            for _ in range(3):
                db.execute(INSERT)
            db.execute("COMMIT")
        return time.perf_counter() - start

    return {"select": select, "insert": insert, "write tx (3)": three}


def aiosqlite_variants(db: aiosqlite.Connection) -> dict[str, Timed]:
    async def select(k: int) -> float:
        start = time.perf_counter()
        for _ in range(k):
            await db.execute_fetchall(SELECT, (2,))
        return time.perf_counter() - start

    async def insert(k: int) -> float:
        start = time.perf_counter()
        for _ in range(k):
            await db.execute(INSERT)
        return time.perf_counter() - start

    async def three(k: int) -> float:
        start = time.perf_counter()
        for _ in range(k):
            await db.execute("BEGIN IMMEDIATE")
            for _ in range(3):
                await db.execute(INSERT)
            await db.commit()
        return time.perf_counter() - start

    return {"select": select, "insert": insert, "write tx (3)": three}


def ours_variants(conn: SQLiteConnection) -> dict[str, Timed]:
    async def select(k: int) -> float:
        start = time.perf_counter()
        for _ in range(k):
            await conn.execute(SELECT, (2,))
        return time.perf_counter() - start

    async def insert(k: int) -> float:
        start = time.perf_counter()
        for _ in range(k):
            await conn.execute(INSERT)
        return time.perf_counter() - start

    async def three(k: int) -> float:
        start = time.perf_counter()
        for _ in range(k):
            await conn.batch([INSERT, INSERT, INSERT])
        return time.perf_counter() - start

    return {"select": select, "insert": insert, "write tx (3)": three}


def tenant_db_variants(tenancy: Tenancy, tenant: TenantContext) -> dict[str, Timed]:
    async def select(k: int) -> float:
        async with tenant_scope(tenant, tenancy=tenancy):
            start = time.perf_counter()
            for _ in range(k):
                async with tenant_db() as db:
                    await db.execute(SELECT, (2,))
            return time.perf_counter() - start

    async def insert(k: int) -> float:
        async with tenant_scope(tenant, tenancy=tenancy):
            start = time.perf_counter()
            for _ in range(k):
                async with tenant_db() as db:
                    await db.execute(INSERT)
            return time.perf_counter() - start

    async def three(k: int) -> float:
        async with tenant_scope(tenant, tenancy=tenancy):
            start = time.perf_counter()
            for _ in range(k):
                async with tenant_db() as db:
                    await db.batch([INSERT, INSERT, INSERT])
            return time.perf_counter() - start

    return {"select": select, "insert": insert, "write tx (3)": three}


class Heartbeat:
    """A 1 ms heartbeat that also says where each late tick's time went (Linux schedstat).

    Per tick, from the loop thread's `/proc/thread-self/schedstat`: the time it ran on a CPU
    (our code, between two ticks), the time it waited for a CPU (the machine: the neighbours,
    and our own worker threads) and the rest, blocked (the 1 ms sleep itself, the GIL, disk).
    """

    def __init__(self) -> None:
        self.late: list[float] = []
        # For ticks more than 2 ms late: (lateness, on CPU, waiting for a CPU, blocked), ms.
        self.tail: list[tuple[float, float, float, float]] = []
        try:
            self._fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None

    def _sched(self) -> tuple[int, int]:
        if self._fd is None:
            return 0, 0
        fields = os.pread(self._fd, 64, 0).split()
        return int(fields[0]), int(fields[1])

    async def run(self, stopped: Callable[[], bool]) -> None:
        while not stopped():
            cpu0, wait0 = self._sched()
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            wall = time.perf_counter() - before
            late = (wall - 0.001) * 1e3
            self.late.append(late)
            if late > 2.0:
                cpu1, wait1 = self._sched()
                on_cpu, waiting = (cpu1 - cpu0) / 1e6, (wait1 - wait0) / 1e6
                self.tail.append((late, on_cpu, waiting, wall * 1e3 - on_cpu - waiting))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.late)
        tail = self.tail
        return {
            "p50_ms": ordered[len(ordered) // 2],
            "p99_ms": ordered[int(len(ordered) * 0.99)],
            "max_ms": ordered[-1],
            # The tail, not only its worst tick: the share of ticks more than 2 ms late, and
            # where those ticks' time went (summed over them, as shares of their wall time).
            "late_2ms_pct": 100 * len(tail) / len(ordered),
            **_shares(tail),
        }


def _shares(tail: list[tuple[float, float, float, float]]) -> dict[str, float]:
    wall = sum(t[0] + 1.0 for t in tail)
    if not wall:
        return {"tail_cpu_pct": 0.0, "tail_wait_pct": 0.0, "tail_blocked_pct": 0.0}
    return {
        "tail_cpu_pct": 100 * sum(t[1] for t in tail) / wall,
        "tail_wait_pct": 100 * sum(t[2] for t in tail) / wall,
        "tail_blocked_pct": 100 * sum(t[3] for t in tail) / wall,
    }


async def idle_lateness(seconds: float) -> dict[str, float]:
    """The heartbeat alone: what the shared machine itself adds (its noise floor)."""
    beat = Heartbeat()
    end = time.perf_counter() + seconds
    await beat.run(lambda: time.perf_counter() >= end)
    beat.close()
    return {"ops_per_s": 0.0, **beat.summary()}


class Mix:
    """What the 32 tasks of a lateness run share: whether to stop, and the operations run."""

    def __init__(self) -> None:
        self.stopped = False
        self.ops = 0


TASKS = 32
# The offered load of the paced runs: the notes' (`dbpath.md`) second figure, a loop with room
# to spare, where lateness is what one statement holds the loop, not the queue of 32 tasks.
PACED_OPS_PER_S = 5_000.0


def pacer(rate: float | None, i: int) -> Callable[[], Awaitable[None]]:
    """What task `i` awaits between its operations.

    Without a rate, `sleep(0)`: a request yields on its own I/O (reading the body, sending the
    answer); an inline statement does not, so a task that only queried would never yield.
    With one, the task's share of `rate` operations a second, the tasks' slots staggered.
    """
    if rate is None:
        return lambda: asyncio.sleep(0)
    interval = TASKS / rate
    next_at = time.perf_counter() + i * interval / TASKS

    def wait() -> Awaitable[None]:
        nonlocal next_at
        next_at += interval
        return asyncio.sleep(max(next_at - time.perf_counter(), 0.0))

    return wait


async def run_mix(
    seconds: float, start: Callable[[Mix], list[Coroutine[Any, Any, None]]]
) -> dict[str, float]:
    """Run `start(mix)`'s tasks for `seconds` beside the heartbeat: ops/s and its lateness."""
    mix = Mix()
    heart = Heartbeat()
    # As `interleaved` does: what exists now is out of the collector's sight, as in a
    # long-running server, so a full collection scans only what the requests allocate.
    gc.collect()
    gc.freeze()
    tasks = [asyncio.ensure_future(task) for task in start(mix)]
    beat = asyncio.ensure_future(heart.run(lambda: mix.stopped))
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    mix.stopped = True
    await asyncio.gather(*tasks, beat)
    elapsed = time.perf_counter() - began
    heart.close()
    return {"ops_per_s": mix.ops / elapsed, **heart.summary()}


async def lateness(
    tenancy: Tenancy,
    tenants: list[TenantContext],
    seconds: float,
    *,
    heavy: bool,
    writes: bool = True,
    rate: float | None = None,
) -> dict[str, float]:
    """Heartbeat lateness (ms) and ops/s while 32 tasks query 8 tenants through tenant_db().

    Saturated (each task as fast as the loop lets it), or at `rate` operations a second in all.
    """

    async def worker(mix: Mix, i: int) -> None:
        tenant = tenants[i % len(tenants)]
        pause = pacer(rate, i)
        n = 0
        async with tenant_scope(tenant, tenancy=tenancy):
            while not mix.stopped:
                async with tenant_db() as db:
                    if writes and n % 5 == 4:
                        await db.execute(INSERT)
                    else:
                        await db.execute(SELECT, (2,))
                n += 1
                mix.ops += 1
                await pause()

    async def heavy_query(mix: Mix) -> None:
        async with tenant_scope(tenants[0], tenancy=tenancy):
            while not mix.stopped:
                async with tenant_db() as db:
                    await db.execute(LONG)
                await asyncio.sleep(0.05)

    def start(mix: Mix) -> list[Coroutine[Any, Any, None]]:
        tasks = [worker(mix, i) for i in range(TASKS)]
        return [*tasks, heavy_query(mix)] if heavy else tasks

    return await run_mix(seconds, start)


async def driver_lateness(
    paths: list[Path], seconds: float, *, driver: str, rate: float | None = None
) -> dict[str, float]:
    """The same 32 tasks' mix without us, four connections a file as a pool of four would be.

    `stdlib`: `sqlite3` called on the loop, SQLite's own autocheckpoint on (the floor any
    design running statements on the loop pays for the statements themselves); `aiosqlite`:
    a thread per connection.
    """

    async def stdlib_task(mix: Mix, i: int) -> None:
        db = sqlite3.connect(paths[i % len(paths)], isolation_level=None)
        db.execute("PRAGMA synchronous = NORMAL")
        pause = pacer(rate, i)
        n = 0
        while not mix.stopped:
            if n % 5 == 4:
                db.execute(INSERT)
            else:
                db.execute(SELECT, (2,)).fetchall()
            n += 1
            mix.ops += 1
            await pause()
        db.close()

    async def aiosqlite_task(mix: Mix, i: int) -> None:
        async with aiosqlite.connect(paths[i % len(paths)], isolation_level=None) as db:
            await db.execute("PRAGMA synchronous = NORMAL")
            pause = pacer(rate, i)
            n = 0
            while not mix.stopped:
                if n % 5 == 4:
                    await db.execute(INSERT)
                else:
                    await db.execute_fetchall(SELECT, (2,))
                n += 1
                mix.ops += 1
                await pause()

    task = stdlib_task if driver == "stdlib" else aiosqlite_task
    return await run_mix(seconds, lambda mix: [task(mix, i) for i in range(TASKS)])


def _lateness_only_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lateness-only", action="store_true", help="skip the per-op part")


async def main() -> None:
    args = parse_args(
        "Per-statement cost against sqlite3 and aiosqlite; event-loop lateness",
        _lateness_only_option,
    )
    rounds, n, seconds = (20, 50, 1.0) if args.quick else (100, 200, 4.0)
    report = Report("dbpath", args.quick)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-dbpath-", dir=DATA_DIR) as folder:
        inline = Tenancy(tenancy_config(Path(folder) / "a", "subdomain"), packages=[NOTES_PACKAGE])
        threaded = Tenancy(
            tenancy_config(Path(folder) / "b", "subdomain", sqlite_inline=False),
            packages=[NOTES_PACKAGE],
        )
        await inline.start()
        await threaded.start()
        tenants = [await inline.provision(f"t{i}") for i in range(8)]
        threaded_tenants = [await threaded.provision(f"t{i}") for i in range(8)]
        # One file per variant (same schema and rows), so inserts of one do not slow another.
        files: dict[str, Path] = {}
        for name in ("stdlib", "aiosqlite", "ours", "ours-threads"):
            tenant = await inline.provision(f"file-{name}")
            path = inline.provisioner.locate(tenant.id).path
            assert path is not None
            files[name] = path
        std = sqlite3.connect(files["stdlib"], isolation_level=None)
        std.execute("PRAGMA journal_mode = WAL")
        std.execute("PRAGMA synchronous = NORMAL")
        aio = await aiosqlite.connect(files["aiosqlite"], isolation_level=None)
        await aio.execute("PRAGMA journal_mode = WAL")
        await aio.execute("PRAGMA synchronous = NORMAL")
        ours = await SQLiteConnection.open(files["ours"])
        ours_threads = await SQLiteConnection.open(files["ours-threads"], inline=False)
        families: dict[str, dict[str, Timed]] = {
            "stdlib sqlite3 inline (floor)": stdlib_variants(std),
            "aiosqlite": aiosqlite_variants(aio),
            "SQLiteConnection (inline, step cap)": ours_variants(ours),
            "SQLiteConnection inline=False": ours_variants(ours_threads),
            "tenant_db() in tenant_scope": tenant_db_variants(inline, tenants[0]),
        }
        results: dict[str, Any] = {}
        for op in () if args.lateness_only else ("select", "insert", "write tx (3)"):
            variants = {family: timed[op] for family, timed in families.items()}
            samples = await interleaved(variants, rounds=rounds, iterations=n, warmup=n)
            table = compare(samples, "stdlib sqlite3 inline (floor)")
            aio_median = summarize(samples["aiosqlite"]).median
            rows = [
                [
                    name,
                    c.per_op.median * 1e6,
                    c.per_op.minimum * 1e6,
                    1 / c.ratio.median,
                    aio_median / c.per_op.median,
                ]
                for name, c in table.items()
            ]
            print_table(
                f"{op}: {rounds} interleaved rounds x {n} (wall time)",
                ["variant", "us/op med", "us/op min", "x floor", "x faster than aiosqlite"],
                rows,
            )
            results[op] = {
                name: {**c.as_dict(), "x_floor": 1 / c.ratio.median} for name, c in table.items()
            }
        if results:
            report.add("per_op", results)
        std.close()
        await aio.close()
        await ours.close()
        await ours_threads.close()

        tenant_files = [inline.provisioner.locate(t.id).path for t in tenants]
        paths = [path for path in tenant_files if path is not None]
        rate = PACED_OPS_PER_S
        paced = f"{rate:,.0f} ops/s"
        runs: dict[str, list[dict[str, float]]] = {
            "idle loop (machine noise)": [],
            "stdlib sqlite3 on the loop (floor)": [],
            "aiosqlite": [],
            "inline": [],
            "thread-only": [],
            "inline, heavy query": [],
            "inline, reads only": [],
            f"stdlib sqlite3 on the loop, {paced}": [],
            f"aiosqlite, {paced}": [],
            f"inline, {paced}": [],
            f"thread-only, {paced}": [],
        }
        for _ in range(3):  # interleaved: the neighbours' load hits every variant alike
            runs["idle loop (machine noise)"].append(await idle_lateness(seconds))
            runs["stdlib sqlite3 on the loop (floor)"].append(
                await driver_lateness(paths, seconds, driver="stdlib")
            )
            runs["aiosqlite"].append(await driver_lateness(paths, seconds, driver="aiosqlite"))
            runs["inline"].append(await lateness(inline, tenants, seconds, heavy=False))
            runs["thread-only"].append(
                await lateness(threaded, threaded_tenants, seconds, heavy=False)
            )
            runs["inline, heavy query"].append(await lateness(inline, tenants, seconds, heavy=True))
            runs["inline, reads only"].append(
                await lateness(inline, tenants, seconds, heavy=False, writes=False)
            )
            runs[f"stdlib sqlite3 on the loop, {paced}"].append(
                await driver_lateness(paths, seconds, driver="stdlib", rate=rate)
            )
            runs[f"aiosqlite, {paced}"].append(
                await driver_lateness(paths, seconds, driver="aiosqlite", rate=rate)
            )
            runs[f"inline, {paced}"].append(
                await lateness(inline, tenants, seconds, heavy=False, rate=rate)
            )
            runs[f"thread-only, {paced}"].append(
                await lateness(threaded, threaded_tenants, seconds, heavy=False, rate=rate)
            )
        table_rows = []
        summary: dict[str, Any] = {}
        for name, measured in runs.items():
            med = {k: summarize([m[k] for m in measured]).median for k in measured[0]}
            table_rows.append(
                [
                    name,
                    med["ops_per_s"],
                    med["p50_ms"],
                    med["p99_ms"],
                    med["max_ms"],
                    med["late_2ms_pct"],
                    med["tail_cpu_pct"],
                    med["tail_wait_pct"],
                    med["tail_blocked_pct"],
                ]
            )
            summary[name] = {"median_of_3": med, "runs": measured}
        print_table(
            f"1 ms heartbeat lateness, {TASKS} tasks (4 SELECT : 1 INSERT) on 8 tenants, "
            "saturated unless a rate is given, "
            f"{seconds:.0f} s x 3 interleaved runs (median of runs)",
            [
                "variant",
                "ops/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "% ticks > 2 ms",
                "their % on CPU",
                "% waiting for CPU",
                "% blocked",
            ],
            table_rows,
        )
        report.add("lateness", summary)
        await inline.aclose()
        await threaded.aclose()
    # A lateness-only run would replace the per-operation figures in the results file.
    report.write(enabled=not (args.no_write or args.lateness_only))


if __name__ == "__main__":
    run(main)
