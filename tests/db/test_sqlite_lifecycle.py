"""Opening and closing local connections: kept WAL files, no-create opens, unattended closes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tenant_middleware.db import SQLiteConnection
from tenant_middleware.db._sqlite import persist
from tenant_middleware.db._sqlite.threads import LIFECYCLE_THREADS, THREAD_NAME, WorkerSet
from tenant_middleware.errors import DatabaseError
from tests.conftest import eventually

SQLITE_CANTOPEN = 14


def _sidecars(path: Path) -> dict[str, int]:
    """The sizes of the database's -wal and -shm files that exist."""
    found = {}
    for suffix in ("-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            found[suffix] = part.stat().st_size
    return found


def _open_fds_to(path: Path) -> int:
    names = {str(path), *(str(path) + suffix for suffix in ("-wal", "-shm"))}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") in names
        except OSError:
            continue  # closed while listing
    return count


def _other_process(path: Path, sql: str) -> str:
    """Run `sql` through the stdlib sqlite3 in another process; its rows, printed."""
    script = (
        "import sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)\n"
        "print(db.execute(sys.argv[2]).fetchall())\n"
        "db.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_this_interpreter_can_keep_wal_files() -> None:
    # The checks that persistence depends on pass here (CPython 3.11, a shared libsqlite3):
    # otherwise every test below would pass while measuring SQLite's default.
    assert persist.available()


async def test_the_last_close_keeps_an_emptied_wal_and_the_shared_memory_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kept.db"
    conn = await SQLiteConnection.open(path)
    await conn.execute("CREATE TABLE t (x)")
    for i in range(50):
        await conn.execute("INSERT INTO t VALUES (?)", (i,))
    assert _sidecars(path)["-wal"] > 0  # the writes are in the WAL (no checkpoint yet)
    await conn.close()
    assert _sidecars(path) == {"-wal": 0, "-shm": _sidecars(path)["-shm"]}
    again = await SQLiteConnection.open(path)
    assert (await again.execute("SELECT count(*) FROM t")).scalar() == 50
    await again.close()


async def test_another_process_reads_and_writes_through_a_kept_wal(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    conn = await SQLiteConnection.open(path)
    await conn.execute("CREATE TABLE t (x)")
    await conn.execute("INSERT INTO t VALUES (1)")
    # Committed, still only in the WAL of an open connection: another process sees it.
    assert await asyncio.to_thread(_other_process, path, "SELECT count(*) FROM t") == "[(1,)]"
    await conn.close()
    assert await asyncio.to_thread(_other_process, path, "SELECT count(*) FROM t") == "[(1,)]"
    await asyncio.to_thread(_other_process, path, "INSERT INTO t VALUES (2) RETURNING x")
    reopened = await SQLiteConnection.open(path)
    assert (await reopened.execute("SELECT sum(x) FROM t")).scalar() == 3
    await reopened.close()


def test_a_handle_that_fails_validation_leaves_sqlites_default(tmp_path: Path) -> None:
    path = tmp_path / "default.db"
    db = sqlite3.connect(path, isolation_level=None)
    # The handle's file is not the one named: no file control, the connection untouched.
    assert not persist.keep_wal(db, str(tmp_path / "another.db"))
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    assert "-wal" in _sidecars(path)
    db.close()
    assert _sidecars(path) == {}  # deleted by the last close, as SQLite does by default


def test_persistence_is_limited_to_known_interpreter_layouts() -> None:
    assert persist.layout_known("cpython", (3, 11))
    assert not persist.layout_known("cpython", (3, 7))
    assert not persist.layout_known("cpython", (3, 14))
    assert not persist.layout_known("pypy", (3, 11))


async def test_an_open_without_create_fails_on_a_missing_file_and_makes_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "missing" / "gone.db"
    with pytest.raises(DatabaseError) as caught:
        await SQLiteConnection.open(path, create=False)
    assert caught.value.sqlite_code == SQLITE_CANTOPEN
    assert not path.parent.exists()
    path.parent.mkdir()
    sqlite3.connect(path).close()
    conn = await SQLiteConnection.open(path, create=False)
    assert (await conn.execute("SELECT 1")).scalar() == 1
    await conn.close()


async def test_opening_runs_on_the_lifecycle_threads(tmp_path: Path) -> None:
    conn = await SQLiteConnection.open(tmp_path / "lane.db")
    lanes = [t for t in threading.enumerate() if t.name.startswith(f"{THREAD_NAME}-open-")]
    assert 1 <= len(lanes) <= LIFECYCLE_THREADS
    await conn.close()


async def test_close_later_closes_an_idle_connection_unattended(tmp_path: Path) -> None:
    path = tmp_path / "later.db"
    conn = await SQLiteConnection.open(path)
    await conn.execute("CREATE TABLE t (x)")
    assert _open_fds_to(path) == 3  # the database, its WAL and its shared memory
    conn.close_later()
    assert conn.closed
    with pytest.raises(DatabaseError, match="closed"):
        await conn.execute("SELECT 1")
    await eventually(lambda: _open_fds_to(path) == 0)


async def test_close_later_of_a_busy_connection_closes_after_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    conn = await SQLiteConnection.open(path, inline=False)  # every statement on a worker
    await conn.execute("CREATE TABLE t (x)")
    writer = asyncio.ensure_future(conn.execute("INSERT INTO t VALUES (1)"))
    await asyncio.sleep(0)
    conn.close_later()
    await writer
    await eventually(lambda: _open_fds_to(path) == 0)
    check = await SQLiteConnection.open(path)
    assert (await check.execute("SELECT count(*) FROM t")).scalar() == 1
    await check.close()


async def test_later_jobs_queued_meanwhile_run_in_one_job_in_order() -> None:
    workers = WorkerSet(max_threads=1, idle_timeout=0.2)
    gate = threading.Event()
    ran: list[tuple[int, str]] = []

    def hold(_: object) -> None:
        gate.wait(5)

    workers.submit(hold, None)  # the only thread is busy
    for i in range(5):
        workers.later(lambda i: ran.append((i, threading.current_thread().name)), i)
    gate.set()
    await eventually(lambda: len(ran) == 5)
    assert [i for i, _ in ran] == [0, 1, 2, 3, 4]
    assert len({name for _, name in ran}) == 1


async def test_a_new_connection_hands_its_schema_cookie_over_once(tmp_path: Path) -> None:
    path = tmp_path / "cookie.db"
    first = await SQLiteConnection.open(path)
    await first.execute("CREATE TABLE t (x)")
    await first.close()
    connection = await SQLiteConnection.open(path)
    try:
        read_here = (await connection.execute("PRAGMA schema_version")).scalar()
        assert read_here == 1
        assert connection.take_schema_version_at_open() == read_here
        assert connection.take_schema_version_at_open() is None  # later checks read it again
        read_only = await SQLiteConnection.open(path, read_only=True)
        assert read_only.take_schema_version_at_open() is None  # not asked on read-only ones
        await read_only.close()
    finally:
        await connection.close()


def test_a_validated_handle_runs_a_script_in_one_call_and_reads_the_schema_cookie(
    tmp_path: Path,
) -> None:
    path = tmp_path / "native.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        handle = persist.native(db, str(path))
        assert handle is not None
        assert handle.run_script(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x); PRAGMA user_version = 7"
        )
        assert db.execute("PRAGMA user_version").fetchone()[0] == 7
        assert handle.schema_version() == db.execute("PRAGMA schema_version").fetchone()[0] == 1
        # A failing script raises nothing here: the caller runs it again through sqlite3.
        assert not handle.run_script("CREATE TABLE t (x)")
        assert not db.in_transaction
    finally:
        db.close()
    other = sqlite3.connect(":memory:")
    assert persist.native(other, str(path)) is None  # not the file named
    other.close()


async def test_an_existing_file_opened_without_create_gets_the_whole_setup(
    tmp_path: Path,
) -> None:
    path = tmp_path / "setup.db"
    sqlite3.connect(path).close()  # a rollback-journal file: the setup switches it to WAL
    conn = await SQLiteConnection.open(path, create=False)
    try:
        assert (await conn.execute("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.execute("PRAGMA journal_size_limit")).scalar() == (
            persist.JOURNAL_SIZE_LIMIT
        )
        assert (await conn.execute("PRAGMA foreign_keys")).scalar() == 1
        assert (await conn.execute("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert (await conn.execute("PRAGMA busy_timeout")).scalar() == 0
        assert (await conn.execute("PRAGMA wal_autocheckpoint")).scalar() == 0
        assert conn.take_schema_version_at_open() == 0
    finally:
        await conn.close()
