"""Statements on the event loop under a step cap: what runs there, what goes to a worker."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import TYPE_CHECKING

import pytest

from tenant_middleware.db._sqlite.connection import CHECKPOINT_EVERY
from tenant_middleware.db._sqlite.inline import STEP_INTERVAL
from tenant_middleware.db._sqlite.worker import RESTART_FRAMES
from tenant_middleware.errors import DatabaseBusy
from tests.db.conftest import Opener

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tenant_middleware.db import SQLiteConnection

# Millions of SQLite steps: far over the inline budget (2 x STEP_INTERVAL), ~0.1-1 s of work.
LONG_COUNT = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) "
    "SELECT count(*) FROM c"
)


class LoopWatch:
    """Whether the loop ran other callbacks meanwhile (so the awaited work left the loop)."""

    def __init__(self) -> None:
        self.ran = False
        asyncio.get_running_loop().call_soon(self._mark)

    def _mark(self) -> None:
        self.ran = True


class Heartbeat:
    """A 1 ms heartbeat: counts its beats and keeps its largest gap."""

    def __init__(self) -> None:
        self.beats = 0
        self.max_gap = 0.0
        self._task = asyncio.ensure_future(self._beat())

    async def _beat(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            self.beats += 1
            last = now

    async def stop(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


async def test_short_statements_run_on_the_loop_without_a_hand_off(open_db: Opener) -> None:
    conn = await open_db()
    await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    watch = LoopWatch()
    # Thousands of runs of one cached statement: SQLite's step counter carries over between
    # them, so a cap that aborted on the handler's first call would send some to a worker.
    # (Fewer writes than CHECKPOINT_EVERY: a checkpoint is a worker job.)
    writes = CHECKPOINT_EVERY - 2
    for i in range(writes):
        await conn.execute("INSERT INTO t (v) VALUES (?)", (str(i),))
    for i in range(5000):
        row = i % writes + 1
        assert (await conn.execute("SELECT v FROM t WHERE id = ?", (row,))).scalar() == str(row - 1)
    results = await conn.batch(["INSERT INTO t (v) VALUES ('b')", "SELECT count(*) FROM t"])
    assert not watch.ran
    assert results[1].scalar() == writes + 1


async def test_a_long_query_moves_to_a_worker_and_the_loop_keeps_beating(
    open_db: Opener,
) -> None:
    conn = await open_db()
    heartbeat = Heartbeat()
    await asyncio.sleep(0.01)
    beats_before = heartbeat.beats
    started = time.perf_counter()
    assert (await conn.execute(LONG_COUNT)).scalar() == 2_000_000
    elapsed = time.perf_counter() - started
    beats_during = heartbeat.beats - beats_before
    await heartbeat.stop()
    # Run inline, the query would have held the loop for all of it: no beat in between.
    assert beats_during >= 3
    assert heartbeat.max_gap < max(elapsed / 2, 0.05)


async def test_a_batch_over_the_budget_runs_again_on_a_worker_exactly_once(
    open_db: Opener,
) -> None:
    conn = await open_db()
    await conn.execute("CREATE TABLE t (x INTEGER)")
    watch = LoopWatch()
    many = (
        "INSERT INTO t WITH RECURSIVE c(x) AS "
        "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT x FROM c"
    )
    results = await conn.batch(
        ["INSERT INTO t VALUES (0)", (many, (STEP_INTERVAL * 10,)), "SELECT count(*) FROM t"]
    )
    assert watch.ran  # it left the loop
    # The inline attempt rolled back whole: nothing of it is counted twice.
    assert results[2].scalar() == STEP_INTERVAL * 10 + 1
    assert (await conn.execute("SELECT count(*) FROM t")).scalar() == STEP_INTERVAL * 10 + 1


async def test_a_write_that_meets_a_lock_waits_for_it_on_a_worker(open_db: Opener) -> None:
    conn = await open_db(busy_timeout=5.0)
    holder = await open_db()
    await conn.execute("CREATE TABLE t (x)")
    heartbeat = Heartbeat()
    async with holder.transaction(write=True) as tx:
        await tx.execute("INSERT INTO t VALUES ('holder')")
        insert = asyncio.ensure_future(conn.execute("INSERT INTO t VALUES ('waiter')"))
        await asyncio.sleep(0.2)
        assert not insert.done()  # neither failed at once (busy timeout 0 inline) nor ran
        beats = heartbeat.beats
    assert (await insert).rows_affected == 1
    await heartbeat.stop()
    assert beats >= 20  # the loop kept running while the insert waited for the lock
    rows = (await conn.execute("SELECT x FROM t ORDER BY rowid")).rows
    assert rows == [("holder",), ("waiter",)]


async def test_a_lock_held_past_the_busy_timeout_is_still_database_busy(
    open_db: Opener,
) -> None:
    conn = await open_db(busy_timeout=0.1)
    holder = await open_db()
    await conn.execute("CREATE TABLE t (x)")
    async with holder.transaction(write=True) as tx:
        await tx.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(DatabaseBusy):
            await conn.execute("INSERT INTO t VALUES (2)")
        with pytest.raises(DatabaseBusy):
            await conn.batch(["INSERT INTO t VALUES (3)"])
    assert (await conn.execute("SELECT x FROM t")).rows == [(1,)]


async def test_statements_after_a_worker_job_wait_for_it_in_order(open_db: Opener) -> None:
    conn = await open_db()
    await conn.execute("CREATE TABLE t (x)")
    long_insert = asyncio.ensure_future(
        conn.execute(
            "INSERT INTO t WITH RECURSIVE c(x) AS "
            "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x FROM c"
        )
    )
    await asyncio.sleep(0)  # it has gone over the budget and is on a worker now
    # This one waits until the worker is done with the connection, then sees its rows.
    assert (await conn.execute("SELECT count(*) FROM t")).scalar() == 200_000
    assert (await long_insert).rows_affected == 200_000


async def test_inline_writes_checkpoint_the_wal_on_a_worker(
    open_db: Opener, tmp_path: Path
) -> None:
    conn = await open_db("wal.db")
    reader = await open_db("wal.db")  # keeps the WAL from being removed between writes
    await conn.execute("CREATE TABLE t (x)")
    await reader.execute("SELECT count(*) FROM t")
    page = int((await conn.execute("PRAGMA page_size")).scalar() or 0)
    for i in range(CHECKPOINT_EVERY * 10):
        await conn.execute("INSERT INTO t VALUES (?)", (i,))
    await conn.execute("SELECT 1")  # after the last checkpoint job
    wal = tmp_path / "wal.db-wal"
    # SQLite's own autocheckpoint is off; without ours the WAL would hold every write's frame.
    assert wal.stat().st_size < CHECKPOINT_EVERY * 3 * page


async def _insert_in_turn(
    conn: SQLiteConnection, writes: int, after_each: Callable[[], object] = lambda: None
) -> None:
    # One row at a time, yielding between rows: several of these interleave their writes.
    for i in range(writes):
        await conn.execute("INSERT INTO t VALUES (?)", (i,))
        await asyncio.sleep(0)
        after_each()


def _wal_salt(wal: Path) -> int:
    # The WAL header's first salt: SQLite adds one to it each time the WAL is started over.
    salt: int = struct.unpack(">I", wal.read_bytes()[16:20])[0]
    return salt


async def test_writes_overlapping_every_checkpoint_still_restart_the_wal(
    open_db: Opener, tmp_path: Path
) -> None:
    # Four connections to one file write in turn, as a tenant's pooled connections do under
    # load: each one's checkpoint runs on a worker while the others keep appending, so a
    # PASSIVE checkpoint never finds the WAL fully copied and SQLite never starts it over.
    connections = [await open_db("busy.db") for _ in range(4)]
    await connections[0].execute("CREATE TABLE t (x)")
    page = int((await connections[0].execute("PRAGMA page_size")).scalar() or 0)
    wal = tmp_path / "busy.db-wal"
    salt = _wal_salt(wal)
    writes = CHECKPOINT_EVERY * 10
    sizes: list[int] = []
    await asyncio.gather(
        *(
            _insert_in_turn(conn, writes, lambda: sizes.append(wal.stat().st_size))
            for conn in connections
        )
    )
    largest = max(sizes)
    assert (await connections[0].execute("SELECT count(*) FROM t")).scalar() == 4 * writes
    restarts = _wal_salt(wal) - salt
    # Each round of checkpoints (the four reach CHECKPOINT_EVERY together) finds it past
    # RESTART_FRAMES; how many frames pile up meanwhile depends on the disk's fsync, so the
    # bound is loose: without restarts the WAL holds all 8,000 writes' frames (~33 MB).
    assert RESTART_FRAMES < 4 * CHECKPOINT_EVERY
    assert restarts >= 3
    assert largest < 4 * writes * (page + 24) / 2


async def test_a_reader_keeps_its_snapshot_while_writes_want_the_wal_restarted(
    open_db: Opener,
) -> None:
    # The restart gives up (after a few ms) while a reader still needs the old frames: the
    # writes all land, and the reader's transaction keeps seeing what it saw first.
    writers = [await open_db("read.db") for _ in range(2)]
    reader = await open_db("read.db")
    await writers[0].execute("CREATE TABLE t (x)")
    await writers[0].execute("INSERT INTO t VALUES (0)")
    async with reader.transaction(write=False) as tx:
        assert (await tx.execute("SELECT count(*) FROM t")).scalar() == 1

        await asyncio.gather(*(_insert_in_turn(conn, CHECKPOINT_EVERY * 5) for conn in writers))
        assert (await tx.execute("SELECT count(*) FROM t")).scalar() == 1
    assert (await reader.execute("SELECT count(*) FROM t")).scalar() == 1 + 2 * 5 * CHECKPOINT_EVERY


async def test_thread_only_connections_never_run_statements_on_the_loop(
    open_db: Opener,
) -> None:
    conn = await open_db(inline=False)
    watch = LoopWatch()
    await conn.execute("SELECT 1")
    assert watch.ran
