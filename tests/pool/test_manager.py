from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tenant_middleware import DatabaseError, TenantUnavailable
from tenant_middleware.db import Connection
from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.pool import PoolManager
from tests.conftest import eventually


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Files:
    """Opens real SQLite files, one per tenant, and counts what it opened."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.opened = 0

    async def __call__(self, tenant_id: str) -> Connection:
        self.opened += 1
        return await SQLiteConnection.open(self.root / f"{tenant_id}.db")


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_lease_runs_queries_and_returns_the_connection(files: Files) -> None:
    manager = PoolManager(files)
    async with manager.connection("a") as conn:
        await conn.execute("CREATE TABLE t (x)")
        await conn.execute("INSERT INTO t VALUES (?)", (1,))
        assert manager.stats().in_use == 1
    async with manager.connection("a") as conn:
        assert (await conn.execute("SELECT x FROM t")).rows == [(1,)]
    stats = manager.stats()
    assert (stats.in_use, stats.idle, stats.connections_opened) == (0, 1, 1)
    await manager.aclose()
    assert manager.stats().connections_open == 0


async def test_connection_is_returned_when_the_block_raises(files: Files) -> None:
    manager = PoolManager(files)
    with pytest.raises(RuntimeError):
        async with manager.connection("a"):
            raise RuntimeError("handler failed")
    assert manager.stats().in_use == 0
    assert manager.stats().idle == 1
    await manager.aclose()


async def test_a_lease_is_unusable_after_it_ends(files: Files) -> None:
    manager = PoolManager(files)
    async with manager.connection("a") as conn:
        leaked = conn
    with pytest.raises(DatabaseError, match="returned to the pool"):
        await leaked.execute("SELECT 1")
    await manager.aclose()


async def test_concurrent_first_requests_create_one_pool(files: Files) -> None:
    prepared: list[str] = []

    async def prepare(tenant_id: str) -> None:
        prepared.append(tenant_id)
        await asyncio.sleep(0.01)

    manager = PoolManager(files, prepare=prepare, max_connections_per_tenant=4)

    async def one() -> int:
        async with manager.connection("a") as conn:
            return int((await conn.execute("SELECT 1")).scalar() or 0)

    results = await asyncio.gather(*(one() for _ in range(100)))
    assert results == [1] * 100
    assert prepared == ["a"]
    stats = manager.stats()
    assert stats.pools_created == 1
    assert stats.connections_opened <= 4
    await manager.aclose()


async def test_a_failed_prepare_reaches_every_waiter_and_is_retried(files: Files) -> None:
    attempts = 0

    async def prepare(tenant_id: str) -> None:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise DatabaseError("database missing")

    manager = PoolManager(files, prepare=prepare)

    async def one() -> None:
        async with manager.connection("a"):
            pass

    results = await asyncio.gather(*(one() for _ in range(5)), return_exceptions=True)
    # Every waiter gets the contract's error, with the driver's as its cause.
    assert all(isinstance(r, TenantUnavailable) for r in results)
    assert all(isinstance(getattr(r, "__cause__", None), DatabaseError) for r in results)
    await one()
    assert attempts == 2
    await manager.aclose()


async def test_saturated_pool_answers_503_within_the_wait(files: Files) -> None:
    manager = PoolManager(files, max_connections_per_tenant=1, acquire_timeout=0.05)
    async with manager.connection("a"):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TenantUnavailable) as refused:
            async with manager.connection("a"):
                pass
        assert loop.time() - started < 1.0
    assert refused.value.retry_after >= 1
    stats = manager.stats()
    assert (stats.waits, stats.timeouts) == (1, 1)
    await manager.aclose()


async def test_a_waiter_gets_the_connection_when_it_comes_back(files: Files) -> None:
    manager = PoolManager(files, max_connections_per_tenant=1, acquire_timeout=5)
    order: list[str] = []
    held = asyncio.Event()

    async def holder() -> None:
        async with manager.connection("a"):
            order.append("held")
            held.set()
            await asyncio.sleep(0.02)
        order.append("released")

    async def waiter() -> None:
        await held.wait()
        async with manager.connection("a"):
            order.append("waiter got it")

    await asyncio.gather(holder(), waiter())
    assert order == ["held", "released", "waiter got it"]
    assert manager.stats().connections_opened == 1
    await manager.aclose()


async def test_lru_cap_and_global_cap_hold_over_500_tenants(files: Files) -> None:
    manager = PoolManager(files, max_pools=32, max_connections=48, max_connections_per_tenant=2)
    peak_pools = peak_connections = 0
    baseline_fds = open_fds()

    async def visit(i: int) -> None:
        nonlocal peak_pools, peak_connections
        async with manager.connection(f"tenant{i % 500}") as conn:
            await conn.execute("SELECT 1")
            stats = manager.stats()
            peak_pools = max(peak_pools, stats.open_pools)
            peak_connections = max(peak_connections, stats.connections_open)

    for start in range(0, 1000, 50):
        await asyncio.gather(*(visit(i) for i in range(start, start + 50)))
    assert peak_pools <= 32
    assert peak_connections <= 48
    assert manager.stats().evictions >= 500 - 32
    await manager.aclose()
    await eventually(lambda: manager.stats().connections_open == 0)  # scheduled closes finish
    assert open_fds() <= baseline_fds + 2


async def test_idle_connections_and_pools_are_reaped(files: Files) -> None:
    clock = Clock()
    manager = PoolManager(files, idle_timeout=30, clock=clock)
    for tenant in ("a", "b"):
        async with manager.connection(tenant):
            pass
    clock.now += 10
    async with manager.connection("b"):
        pass
    clock.now += 25
    assert manager.reap() == 1  # a's connection idled 35 s, b's only 25 s
    stats = manager.stats()
    assert (stats.open_pools, stats.idle) == (1, 1)
    clock.now += 31
    assert manager.reap() == 1
    assert manager.stats().open_pools == 0
    await manager.aclose()


async def test_discarded_pool_keeps_leases_in_use_working(files: Files) -> None:
    manager = PoolManager(files)
    async with manager.connection("a") as conn:
        await manager.discard("a")
        assert (await conn.execute("SELECT 2")).scalar() == 2
    stats = manager.stats()
    assert (stats.open_pools, stats.connections_open) == (0, 0)
    await manager.aclose()


async def test_read_modify_write_transactions_lose_no_update(files: Files) -> None:
    manager = PoolManager(files, max_connections_per_tenant=4)
    async with manager.connection("a") as conn:
        await conn.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)")
        await conn.execute("INSERT INTO counter VALUES (1, 0)")

    async def increment() -> None:
        async with manager.connection("a") as conn, conn.transaction() as tx:
            value = (await tx.execute("SELECT value FROM counter WHERE id = 1")).scalar()
            await asyncio.sleep(0)
            await tx.execute("UPDATE counter SET value = ? WHERE id = 1", (int(value or 0) + 1,))

    await asyncio.gather(*(increment() for _ in range(100)))
    async with manager.connection("a") as conn:
        assert (await conn.execute("SELECT value FROM counter")).scalar() == 100
    await manager.aclose()
