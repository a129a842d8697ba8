"""Concurrent read-modify-write transactions on one tenant lose no update and raise nothing."""

from __future__ import annotations

import asyncio
import contextlib
import random

from tenant_middleware.db import Connection
from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.pool import PoolManager
from tenant_middleware.pool.lease import WriterGate
from tests.remote.conftest import OpenRemote
from tests.sqld import SqldServer

TRANSACTIONS = 100


async def increment(conn: Connection, gate: WriterGate | None) -> None:
    async with gate.hold() if gate else contextlib.nullcontext(), conn.transaction() as tx:
        value = (await tx.execute("SELECT n FROM counter WHERE id = 1")).scalar()
        assert isinstance(value, int)
        await asyncio.sleep(random.random() / 1000)  # let other tasks run mid-transaction
        await tx.execute("UPDATE counter SET n = ? WHERE id = 1", (value + 1,))


async def _counter(conn: Connection) -> int:
    value = (await conn.execute("SELECT n FROM counter WHERE id = 1")).scalar()
    assert isinstance(value, int)
    return value


async def _setup(conn: Connection) -> None:
    await conn.batch(
        [
            "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)",
            "INSERT INTO counter VALUES (1, 0)",
        ]
    )


async def test_through_the_pool_manager(sqld: SqldServer, namespace: str) -> None:
    async with HranaClient() as client:

        async def opener(tenant_id: str) -> Connection:
            return await RemoteConnection.open(
                sqld.url(tenant_id), token=sqld.token(), client=client, connect_to=sqld.connect_to
            )

        manager = PoolManager(opener, max_connections_per_tenant=4)
        try:
            async with manager.connection(namespace) as conn:
                await _setup(conn)

            async def one() -> None:
                async with manager.connection(namespace) as conn:
                    await increment(conn, None)  # the lease holds the tenant's writer gate

            results = await asyncio.gather(
                *(one() for _ in range(TRANSACTIONS)), return_exceptions=True
            )
            assert [r for r in results if r is not None] == []
            async with manager.connection(namespace) as conn:
                assert await _counter(conn) == TRANSACTIONS
            assert manager.stats().connections_opened == 4
        finally:
            await manager.aclose()


async def test_four_connections_sharing_one_writer_gate(open_remote: OpenRemote) -> None:
    conns = [await open_remote() for _ in range(4)]
    await _setup(conns[0])
    gate = WriterGate()
    results = await asyncio.gather(
        *(increment(conns[i % 4], gate) for i in range(TRANSACTIONS)), return_exceptions=True
    )
    assert [r for r in results if r is not None] == []
    assert await _counter(conns[0]) == TRANSACTIONS


async def test_begin_immediate_alone_serialises_writers_on_the_server(
    open_remote: OpenRemote,
) -> None:
    # No gate: each transaction's BEGIN IMMEDIATE waits on the server for the write lock.
    conns = [await open_remote() for _ in range(4)]
    await _setup(conns[0])
    results = await asyncio.gather(
        *(increment(conns[i % 4], None) for i in range(40)), return_exceptions=True
    )
    assert [r for r in results if r is not None] == []
    assert await _counter(conns[0]) == 40
