from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pytest

from tenant_middleware.db import Connection, ResultSet, SQLiteConnection
from tenant_middleware.db._sqlite.threads import WorkerSet
from tenant_middleware.errors import DatabaseBusy, DatabaseError
from tests.db.conftest import Opener

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from tenant_middleware.db import Executor


@pytest.fixture
async def conn(open_db: Opener) -> SQLiteConnection:
    conn = await open_db()
    await conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE, data BLOB)")
    return conn


class Boom(Exception):
    """Raised inside a transaction block to make it roll back."""


async def raise_inside(
    transaction: AbstractAsyncContextManager[Executor],
    body: Callable[[Executor], Awaitable[object]],
) -> None:
    """Run `body` in the transaction, then raise `Boom` from inside the block."""
    async with transaction as tx:
        await body(tx)
        raise Boom


async def names(conn: SQLiteConnection) -> list[Any]:
    result = await conn.execute("SELECT name FROM items ORDER BY id")
    return [row[0] for row in result.rows]


# -- opening ------------------------------------------------------------------------------


async def test_open_creates_directories_and_sets_pragmas(tmp_path: Path) -> None:
    conn = await SQLiteConnection.open(tmp_path / "a" / "b" / "x.db", busy_timeout=2.5)
    try:
        assert (tmp_path / "a" / "b" / "x.db").exists()
        assert (await conn.execute("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.execute("PRAGMA foreign_keys")).scalar() == 1
        assert (await conn.execute("PRAGMA synchronous")).scalar() == 1  # NORMAL
        # On the loop a statement never waits for a lock (it goes to a worker thread, which
        # waits with the real timeout), and checkpoints are the worker's too.
        assert (await conn.execute("PRAGMA busy_timeout")).scalar() == 0
        assert (await conn.execute("PRAGMA wal_autocheckpoint")).scalar() == 0
        async with conn.transaction(write=False) as tx:  # transactions run on a worker
            assert (await tx.execute("PRAGMA busy_timeout")).scalar() == 2500
        assert (await conn.execute("PRAGMA busy_timeout")).scalar() == 0
        assert isinstance(conn, Connection)
    finally:
        await conn.close()


async def test_thread_only_connection_keeps_sqlite_own_timeout_and_checkpoints(
    tmp_path: Path,
) -> None:
    conn = await SQLiteConnection.open(tmp_path / "x.db", busy_timeout=2.5, inline=False)
    try:
        assert not conn.inline
        assert (await conn.execute("PRAGMA busy_timeout")).scalar() == 2500
        assert (await conn.execute("PRAGMA wal_autocheckpoint")).scalar() == 1000
    finally:
        await conn.close()


async def test_open_failure_raises_database_error_without_leaking_a_thread(
    tmp_path: Path,
) -> None:
    baseline = threading.active_count()
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(DatabaseError) as info:
        await SQLiteConnection.open(tmp_path / "dir.db")
    assert not isinstance(info.value, sqlite3.Error)
    assert threading.active_count() == baseline


async def test_read_only_connection_reads_but_refuses_writes(
    conn: SQLiteConnection, open_db: Opener
) -> None:
    await conn.execute("INSERT INTO items (name) VALUES ('a')")
    reader = await open_db(read_only=True)
    assert (await reader.execute("SELECT name FROM items")).rows == [("a",)]
    with pytest.raises(DatabaseError, match="readonly"):
        await reader.execute("INSERT INTO items (name) VALUES ('b')")


async def test_read_only_open_of_a_missing_file_fails(open_db: Opener) -> None:
    with pytest.raises(DatabaseError):
        await open_db("missing.db", read_only=True)


# -- statements ---------------------------------------------------------------------------


async def test_execute_binds_positional_and_named_parameters(conn: SQLiteConnection) -> None:
    first = await conn.execute("INSERT INTO items (name, data) VALUES (?, ?)", ("a", b"\x00\x01"))
    second = await conn.execute("INSERT INTO items (name) VALUES (:name)", {"name": "b"})
    third = await conn.execute(
        "INSERT INTO items (name) VALUES (:name)", MappingProxyType({"name": "c"})
    )
    assert (first.rows_affected, first.last_insert_rowid) == (1, 1)
    assert (second.last_insert_rowid, third.last_insert_rowid) == (2, 3)
    result = await conn.execute("SELECT id, name, data FROM items WHERE id <= ? ORDER BY id", [2])
    assert result.columns == ("id", "name", "data")
    assert result.rows == [(1, "a", b"\x00\x01"), (2, "b", None)]
    assert result.rows_affected == 0
    assert result.last_insert_rowid is None
    assert result.mappings()[0] == {"id": 1, "name": "a", "data": b"\x00\x01"}


async def test_update_reports_rows_affected(conn: SQLiteConnection) -> None:
    await conn.batch([("INSERT INTO items (name) VALUES (?)", (n,)) for n in "abc"])
    result = await conn.execute("UPDATE items SET data = x'00' WHERE name != ?", ("a",))
    assert result.rows_affected == 2
    assert result.rows == []


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELEC 1", ()),
        ("INSERT INTO missing VALUES (1)", ()),
        ("SELECT ?", (1, 2)),
        ("SELECT ?", (2**70,)),
        ("SELECT ?", ([1],)),
    ],
    ids=["syntax", "no-table", "param-count", "int-overflow", "unbindable"],
)
async def test_errors_are_translated(conn: SQLiteConnection, sql: str, params: Any) -> None:
    with pytest.raises(DatabaseError) as info:
        await conn.execute(sql, params)
    assert not isinstance(info.value, sqlite3.Error)
    assert info.value.__cause__ is not None
    assert (await conn.execute("SELECT 1")).scalar() == 1  # the connection still works


async def test_constraint_violation_is_a_database_error(conn: SQLiteConnection) -> None:
    await conn.execute("INSERT INTO items (name) VALUES ('a')")
    with pytest.raises(DatabaseError, match="UNIQUE") as info:
        await conn.execute("INSERT INTO items (name) VALUES ('a')")
    assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
    assert not isinstance(info.value, DatabaseBusy)


async def test_memory_database_works(tmp_path: Path) -> None:
    conn = await SQLiteConnection.open(":memory:")
    try:
        await conn.execute("CREATE TABLE t (x)")
        await conn.execute("INSERT INTO t VALUES (42)")
        assert (await conn.execute("SELECT x FROM t")).scalar() == 42
    finally:
        await conn.close()
    assert os.listdir(tmp_path) == []


# -- batches ------------------------------------------------------------------------------


async def test_batch_returns_one_result_per_statement(conn: SQLiteConnection) -> None:
    results = await conn.batch(
        [
            ("INSERT INTO items (name) VALUES (?)", ("a",)),
            ("INSERT INTO items (name) VALUES (:n)", {"n": "b"}),
            "SELECT count(*) FROM items",
        ]
    )
    assert [r.last_insert_rowid for r in results[:2]] == [1, 2]
    assert results[2] == ResultSet(("count(*)",), [(2,)], 0, None)


async def test_failing_batch_undoes_earlier_statements(conn: SQLiteConnection) -> None:
    await conn.execute("INSERT INTO items (name) VALUES ('kept')")
    with pytest.raises(DatabaseError, match="UNIQUE"):
        await conn.batch(
            [
                "INSERT INTO items (name) VALUES ('new')",
                "INSERT INTO items (name) VALUES ('kept')",
            ]
        )
    assert await names(conn) == ["kept"]
    assert not (await conn.execute("SELECT 1")).rows_affected  # no transaction left open


async def test_batch_inside_a_transaction_joins_it(conn: SQLiteConnection) -> None:
    async with conn.transaction() as tx:
        await tx.batch(["INSERT INTO items (name) VALUES ('a')"])
        with pytest.raises(DatabaseError):
            await tx.batch(
                ["INSERT INTO items (name) VALUES ('b')", "INSERT INTO items (name) VALUES ('a')"]
            )
        await conn.batch(["INSERT INTO items (name) VALUES ('c')"])
    assert await names(conn) == ["a", "c"]


async def test_batch_in_a_transaction_rolls_back_with_it(conn: SQLiteConnection) -> None:
    with pytest.raises(Boom):
        await raise_inside(
            conn.transaction(), lambda tx: tx.batch(["INSERT INTO items (name) VALUES ('a')"])
        )
    assert await names(conn) == []


# -- transactions -------------------------------------------------------------------------


async def test_transaction_commits(conn: SQLiteConnection, open_db: Opener) -> None:
    async with conn.transaction() as tx:
        await tx.execute("INSERT INTO items (name) VALUES ('a')")
        await tx.execute("INSERT INTO items (name) VALUES ('b')")
    other = await open_db()
    assert await names(other) == ["a", "b"]


async def test_transaction_that_raises_rolls_back(conn: SQLiteConnection) -> None:
    with pytest.raises(Boom):
        await raise_inside(
            conn.transaction(), lambda tx: tx.execute("INSERT INTO items (name) VALUES ('a')")
        )
    assert await names(conn) == []
    async with conn.transaction() as tx:  # nothing was left open
        await tx.execute("INSERT INTO items (name) VALUES ('b')")
    assert await names(conn) == ["b"]


async def test_nested_transaction_is_a_savepoint(conn: SQLiteConnection) -> None:
    async with conn.transaction() as outer:
        await outer.execute("INSERT INTO items (name) VALUES ('outer')")
        with pytest.raises(Boom):
            await raise_inside(
                conn.transaction(),
                lambda inner: inner.execute("INSERT INTO items (name) VALUES ('inner')"),
            )
        async with conn.transaction() as inner:
            await inner.execute("INSERT INTO items (name) VALUES ('second')")
    assert await names(conn) == ["outer", "second"]


async def test_connection_calls_inside_own_transaction_join_it(conn: SQLiteConnection) -> None:
    # A statement sent on the connection (not the executor) by the owner joins the block;
    # waiting for the connection's lock instead would deadlock, hence the timeout.
    with pytest.raises(Boom):
        await asyncio.wait_for(
            raise_inside(
                conn.transaction(), lambda _: conn.execute("INSERT INTO items (name) VALUES ('a')")
            ),
            5,
        )
    assert await names(conn) == []


async def test_transaction_executor_is_unusable_after_the_block(conn: SQLiteConnection) -> None:
    async with conn.transaction() as tx:
        pass
    with pytest.raises(DatabaseError, match="ended"):
        await tx.execute("SELECT 1")
    with pytest.raises(DatabaseError, match="ended"):
        await tx.batch(["SELECT 1"])


async def test_other_tasks_wait_for_an_open_transaction(conn: SQLiteConnection) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def owner() -> None:
        async with conn.transaction() as tx:
            await tx.execute("INSERT INTO items (name) VALUES ('rolled-back')")
            inside.set()
            await release.wait()
            raise RuntimeError("undo")

    owner_task = asyncio.create_task(owner())
    await inside.wait()
    other = asyncio.create_task(conn.execute("INSERT INTO items (name) VALUES ('other')"))
    other_batch = asyncio.create_task(conn.batch(["INSERT INTO items (name) VALUES ('batch')"]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not other.done()
    assert not other_batch.done()
    release.set()
    with pytest.raises(RuntimeError, match="undo"):
        await owner_task
    await other
    await other_batch
    # Had the statements slipped into the owner's transaction, its rollback would undo them.
    assert await names(conn) == ["other", "batch"]


async def test_read_transaction_does_not_take_the_write_lock(open_db: Opener) -> None:
    reader = await open_db()
    await reader.execute("CREATE TABLE t (x)")
    writer = await open_db(busy_timeout=0.05)
    async with reader.transaction(write=False) as tx:
        assert (await tx.execute("SELECT count(*) FROM t")).scalar() == 0
        await writer.execute("INSERT INTO t VALUES (1)")
        # The read snapshot started before the insert committed.
        assert (await tx.execute("SELECT count(*) FROM t")).scalar() == 0
    assert (await reader.execute("SELECT count(*) FROM t")).scalar() == 1


async def test_write_lock_held_past_busy_timeout_raises_database_busy(open_db: Opener) -> None:
    holder = await open_db()
    await holder.execute("CREATE TABLE t (x)")
    impatient = await open_db(busy_timeout=0.05)
    async with holder.transaction() as tx:
        await tx.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(DatabaseBusy) as info:
            await impatient.execute("INSERT INTO t VALUES (2)")
        with pytest.raises(DatabaseBusy):
            async with impatient.transaction():
                pass
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    await impatient.execute("INSERT INTO t VALUES (2)")
    assert (await holder.execute("SELECT count(*) FROM t")).scalar() == 2


async def test_concurrent_writer_waits_instead_of_failing(open_db: Opener) -> None:
    first = await open_db()
    await first.execute("CREATE TABLE log (who TEXT)")
    second = await open_db()
    async with first.transaction() as tx:
        await tx.execute("INSERT INTO log VALUES ('first')")
        waiting = asyncio.create_task(second.execute("INSERT INTO log VALUES ('second')"))
        await asyncio.sleep(0.2)  # hold the write lock while the other connection asks for it
        assert not waiting.done()
    await waiting
    assert (await second.execute("SELECT who FROM log ORDER BY rowid")).rows == [
        ("first",),
        ("second",),
    ]


async def test_hundred_concurrent_read_modify_writes_lose_no_update(open_db: Opener) -> None:
    conns = [await open_db() for _ in range(4)]
    await conns[0].execute("CREATE TABLE counter (n INTEGER NOT NULL)")
    await conns[0].execute("INSERT INTO counter VALUES (0)")

    async def increment(conn: SQLiteConnection) -> None:
        async with conn.transaction() as tx:
            current = (await tx.execute("SELECT n FROM counter")).scalar()
            assert isinstance(current, int)
            await asyncio.sleep(0)  # let every other task run between the read and the write
            await tx.execute("UPDATE counter SET n = ?", (current + 1,))

    await asyncio.gather(*(increment(conns[i % 4]) for i in range(100)))
    assert (await conns[1].execute("SELECT n FROM counter")).scalar() == 100


async def test_cancelled_statement_leaves_the_connection_usable(conn: SQLiteConnection) -> None:
    slow = asyncio.create_task(
        conn.execute(
            "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 200000)"
            " SELECT count(*) FROM r"
        )
    )
    await asyncio.sleep(0)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert (await conn.execute("SELECT 7")).scalar() == 7


async def test_cancelled_transaction_waiter_leaves_the_connection_usable(
    conn: SQLiteConnection,
) -> None:
    async def hold_then_wait(tx_ready: asyncio.Event, release: asyncio.Event) -> None:
        async with conn.transaction() as tx:
            await tx.execute("INSERT INTO items (name) VALUES ('a')")
            tx_ready.set()
            await release.wait()

    async def wait_for_lock() -> None:
        async with conn.transaction() as tx:
            await tx.execute("INSERT INTO items (name) VALUES ('never')")

    ready, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold_then_wait(ready, release))
    await ready.wait()
    waiter = asyncio.create_task(wait_for_lock())
    await asyncio.sleep(0)
    waiter.cancel()
    release.set()
    await holder
    with pytest.raises(asyncio.CancelledError):
        await waiter
    async with conn.transaction() as tx:
        await tx.execute("INSERT INTO items (name) VALUES ('b')")
    assert await names(conn) == ["a", "b"]


# -- closing ------------------------------------------------------------------------------


async def test_closed_connection_refuses_work(open_db: Opener) -> None:
    conn = await open_db()
    await conn.close()
    await conn.close()
    assert conn.closed
    with pytest.raises(DatabaseError, match="closed"):
        await conn.execute("SELECT 1")
    with pytest.raises(DatabaseError, match="closed"):
        await conn.batch(["SELECT 1"])
    with pytest.raises(DatabaseError, match="closed"):
        async with conn.transaction():
            pass


async def test_close_during_a_transaction_rolls_it_back(open_db: Opener) -> None:
    conn = await open_db()
    await conn.execute("CREATE TABLE t (x)")

    async def insert_then_close() -> None:
        async with conn.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (1)")
            await conn.close()

    with pytest.raises(DatabaseError, match="before the transaction committed"):
        await insert_then_close()
    other = await open_db()
    assert (await other.execute("SELECT count(*) FROM t")).scalar() == 0


def fds_on(path: Path) -> int:
    """How many of this process's file descriptors are open on `path` (or its WAL files)."""
    fds = Path("/proc/self/fd")
    found = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith(str(path)):
                found += 1
    return found


async def test_connections_share_a_bounded_set_of_threads(tmp_path: Path) -> None:
    workers = WorkerSet(max_threads=2, idle_timeout=0.2)
    baseline = threading.active_count()
    conns = await asyncio.gather(
        *(SQLiteConnection.open(tmp_path / f"{i}.db", workers=workers) for i in range(12))
    )

    async def write_then_read(conn: SQLiteConnection) -> Any:
        async with conn.transaction() as tx:  # on the workers
            await tx.execute("CREATE TABLE t (x)")
            await tx.execute("INSERT INTO t VALUES (?)", (conn.path,))
        return (await conn.execute("SELECT x FROM t")).scalar()

    assert await asyncio.gather(*(write_then_read(c) for c in conns)) == [c.path for c in conns]
    assert workers.threads <= 2
    assert threading.active_count() <= baseline + 2
    for conn in conns:
        await conn.close()
    # Idle threads stop: a quiet process keeps none.
    for _ in range(100):
        if workers.threads == 0:
            break
        await asyncio.sleep(0.05)
    assert workers.threads == 0
    assert threading.active_count() <= baseline


async def test_close_closes_the_file(tmp_path: Path) -> None:
    conn = await SQLiteConnection.open(tmp_path / "closed.db")
    await conn.execute("CREATE TABLE t (x)")
    assert fds_on(tmp_path / "closed.db") > 0
    await conn.close()
    assert fds_on(tmp_path / "closed.db") == 0


async def test_dropped_connection_closes_its_file(tmp_path: Path) -> None:
    conn = await SQLiteConnection.open(tmp_path / "dropped.db")
    await conn.execute("CREATE TABLE t (x)")
    assert fds_on(tmp_path / "dropped.db") > 0
    del conn
    gc.collect()
    assert fds_on(tmp_path / "dropped.db") == 0


async def test_connections_opened_at_once_on_a_new_file_all_use_wal(tmp_path: Path) -> None:
    conns = await asyncio.gather(
        *(SQLiteConnection.open(tmp_path / "fresh" / "x.db") for _ in range(6))
    )
    try:
        modes = [(await c.execute("PRAGMA journal_mode")).scalar() for c in conns]
    finally:
        for c in conns:
            await c.close()
    assert modes == ["wal"] * 6
