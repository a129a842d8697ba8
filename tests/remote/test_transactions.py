"""Atomic batches and interactive transactions (batons kept across requests) on a real sqld."""

from __future__ import annotations

import asyncio

import pytest

from tenant_middleware.db import Executor
from tenant_middleware.errors import DatabaseError
from tests.remote.conftest import OpenRemote, run_in


async def count(conn: Executor, table: str = "t") -> int:
    value = (await conn.execute(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608
    assert isinstance(value, int)
    return value


async def test_batch_runs_statements_in_order_and_returns_each_result(
    open_remote: OpenRemote,
) -> None:
    conn = await open_remote()
    results = await conn.batch(
        [
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v)",
            ("INSERT INTO t (v) VALUES (?)", ("a",)),
            ("INSERT INTO t (v) VALUES (:v)", {"v": "b"}),
            "SELECT v FROM t ORDER BY id",
        ]
    )
    assert [r.last_insert_rowid for r in results[1:3]] == [1, 2]
    assert results[3].rows == [("a",), ("b",)]
    assert await conn.batch([]) == []


async def test_batch_is_all_or_nothing(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE t (x UNIQUE)")
    with pytest.raises(DatabaseError, match=r"statement 3 of the batch: .*UNIQUE"):
        await conn.batch(
            [
                ("INSERT INTO t VALUES (?)", (1,)),
                ("INSERT INTO t VALUES (?)", (2,)),
                ("INSERT INTO t VALUES (?)", (1,)),
                ("INSERT INTO t VALUES (?)", (3,)),
            ]
        )
    assert await count(conn) == 0
    # The failed batch left no transaction open on the server.
    await conn.batch([("INSERT INTO t VALUES (?)", (9,))])
    assert await count(conn) == 1


async def test_transaction_commits_across_requests(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    other = await open_remote()
    await conn.execute("CREATE TABLE t (x)")
    async with conn.transaction() as tx:
        await tx.execute("INSERT INTO t VALUES (1)")
        await tx.execute("INSERT INTO t VALUES (2)")
        assert await count(tx) == 2
        assert await count(other) == 0  # not visible outside before the commit
    assert await count(other) == 2


async def test_transaction_rolls_back_when_the_block_raises(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE t (x)")
    transaction = conn.transaction()
    with pytest.raises(RuntimeError, match="boom"):
        await run_in(transaction, "INSERT INTO t VALUES (1)", then=RuntimeError("boom"))
    assert await count(conn) == 0
    async with conn.transaction() as tx:
        pass
    with pytest.raises(DatabaseError, match="has ended"):
        await tx.execute("SELECT 1")


async def test_a_failed_statement_rolls_the_transaction_back(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE t (x UNIQUE)")
    with pytest.raises(DatabaseError, match="UNIQUE"):
        await run_in(conn.transaction(), "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)")
    assert await count(conn) == 0


async def test_nested_transactions_are_savepoints(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE t (x)")
    async with conn.transaction() as tx:
        await tx.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(RuntimeError):
            await run_in(conn.transaction(), "INSERT INTO t VALUES (2)", then=RuntimeError())
        async with conn.transaction() as inner:
            await inner.execute("INSERT INTO t VALUES (3)")
        # The connection itself, in the transaction's task, runs inside the transaction.
        assert (await conn.execute("SELECT x FROM t ORDER BY x")).rows == [(1,), (3,)]
    assert (await conn.execute("SELECT x FROM t ORDER BY x")).rows == [(1,), (3,)]


async def test_a_savepoint_first_begins_the_transaction(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE t (x)")

    async def nested() -> None:
        async with conn.transaction():
            await run_in(conn.transaction(), "INSERT INTO t VALUES (1)", then=RuntimeError())

    with pytest.raises(RuntimeError):
        await nested()
    assert await count(conn) == 0


async def test_batch_inside_a_transaction_is_atomic_under_a_savepoint(
    open_remote: OpenRemote,
) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE t (x UNIQUE)")
    async with conn.transaction() as tx:
        await tx.batch([("INSERT INTO t VALUES (?)", (1,)), ("INSERT INTO t VALUES (?)", (2,))])
        with pytest.raises(DatabaseError, match="UNIQUE"):
            await tx.batch([("INSERT INTO t VALUES (?)", (3,)), ("INSERT INTO t VALUES (?)", (1,))])
        assert await count(tx) == 2
    assert (await conn.execute("SELECT x FROM t ORDER BY x")).rows == [(1,), (2,)]


async def test_a_batch_opening_a_transaction(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE t (x)")
    async with conn.transaction() as tx:
        await tx.batch(["INSERT INTO t VALUES (1)"])
    assert await count(conn) == 1


async def test_an_empty_transaction_sends_nothing_and_commits(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    async with conn.transaction():
        pass
    async with conn.transaction(write=False) as tx:
        assert (await tx.execute("SELECT 1")).scalar() == 1


async def test_read_transactions_see_one_snapshot(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    writer = await open_remote()
    await conn.execute("CREATE TABLE t (x)")
    async with conn.transaction(write=False) as tx:
        assert await count(tx) == 0
        await writer.execute("INSERT INTO t VALUES (1)")
        assert await count(tx) == 0
    assert await count(conn) == 1


async def test_other_tasks_wait_for_an_open_transaction(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE t (x)")
    order: list[str] = []

    async def outsider() -> None:
        await conn.execute("INSERT INTO t VALUES ('outsider')")
        order.append("outsider")

    async with conn.transaction() as tx:
        task = asyncio.create_task(outsider())
        await asyncio.sleep(0.05)
        assert not task.done()
        await tx.execute("INSERT INTO t VALUES ('tx')")
        order.append("tx")
    await task
    assert order == ["tx", "outsider"]


async def test_closing_refuses_further_work(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE t (x)")
    await conn.close()
    await conn.close()
    assert conn.closed
    with pytest.raises(DatabaseError, match="closed"):
        await conn.execute("SELECT 1")


async def test_closing_during_a_transaction_rolls_it_back(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    other = await open_remote()
    await conn.execute("CREATE TABLE t (x)")
    with pytest.raises(DatabaseError, match="closed before the transaction committed"):
        await run_in(conn.transaction(), "INSERT INTO t VALUES (1)", conn.close)
    assert await count(other) == 0


async def test_a_cancelled_transaction_rolls_back_and_frees_the_write_lock(
    open_remote: OpenRemote,
) -> None:
    conn = await open_remote()
    other = await open_remote()
    await conn.execute("CREATE TABLE t (x)")
    started = asyncio.Event()

    async def writer() -> None:
        async with conn.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (1)")
            started.set()
            await tx.execute("INSERT INTO t VALUES (2)")
            await asyncio.sleep(30)

    task = asyncio.create_task(writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Rolled back, and the write lock is free at once (not after the stream expires).
    await asyncio.wait_for(other.execute("INSERT INTO t VALUES (3)"), timeout=2)
    assert (await other.execute("SELECT x FROM t")).rows == [(3,)]
