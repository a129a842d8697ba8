"""Opening a `sqlite3.Connection` for `SQLiteConnection`, on a lifecycle thread (a job).

The file is opened (created unless `create=False`), told to keep its WAL files at the last
close where that is possible (`persist`), and set up by one script: WAL mode, the pragmas, the
schema read. Where `persist` validated the handle the script runs in one `sqlite3_exec` (one
GIL release for all of it) and the schema cookie is read through the handle; otherwise, or if
that call fails, through `executescript` (each statement one GIL release instead of two or
three through `execute`).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from tenant_middleware.db._sqlite.persist import KEEP_WAL_LIMIT, Native, native, persist_wal
from tenant_middleware.db._sqlite.worker import MEMORY, NO_WAIT, is_busy, post, settle, translate

if TYPE_CHECKING:
    import asyncio

# The opened database and its schema cookie (None for a read-only one, which is not asked).
Opened: TypeAlias = "tuple[sqlite3.Connection, int | None]"
# (loop, future, target, busy_timeout, read_only, inline, create)
OpenRequest: TypeAlias = (
    "tuple[asyncio.AbstractEventLoop, asyncio.Future[Opened], str, float, bool, bool, bool]"
)


def open_job(request: OpenRequest) -> None:
    """On a worker thread: open the database and hand it to the future (a `WorkerSet` job)."""
    loop, future, target, busy_timeout, read_only, inline, create = request
    try:
        db, handle = connect(target, busy_timeout, read_only, inline=inline, create=create)
    except BaseException as exc:
        post(loop, settle, future, None, translate(exc))
        return
    try:
        # The schema cookie too, here on the worker: whoever checks the new connection's
        # schema first (the pool's preparation) then runs no statement on the loop for it.
        version = None
        if not read_only:
            version = handle.schema_version() if handle is not None else None
            if version is None:
                version = db.execute("PRAGMA schema_version").fetchone()[0]
    except BaseException as exc:
        db.close()
        post(loop, settle, future, None, translate(exc))
    else:
        post(loop, _settle_open, future, (db, version), None)


def _settle_open(future: asyncio.Future[Opened], opened: Opened, error: None) -> None:
    if future.done():  # the opener was cancelled: nobody will close it otherwise
        opened[0].close()
    else:
        future.set_result(opened)


def connect(
    target: str, busy_timeout: float, read_only: bool, *, inline: bool, create: bool = True
) -> tuple[sqlite3.Connection, Native | None]:
    """Open the database in WAL mode; `inline` ones are also used from the event loop's thread.

    Those never wait for a lock on the loop (`busy_timeout` 0 until a worker job sets it) and
    leave WAL checkpoints to the worker (`wal_autocheckpoint` 0): see `inline`. Without
    `create`, a missing file fails (`SQLITE_CANTOPEN`) instead of being created. Returns the
    connection and, where `persist` validated it, its native handle.
    """
    # Not check_same_thread: the connection runs on the loop and on any worker thread, but
    # `SQLiteConnection` never lets two of them use it at once.
    path, uri = target, False
    if target != MEMORY and (read_only or not create):
        path, target = _uri(target, "ro" if read_only else "rw")
        uri = True
    elif target != MEMORY:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        target, timeout=busy_timeout, isolation_level=None, check_same_thread=False, uri=uri
    )
    handle = None
    try:
        if read_only:
            db.executescript("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL")
        else:
            script = _setup_script(inline)
            if target != MEMORY:
                handle = native(db, path)
                if handle is not None and persist_wal(handle):
                    script = f"{KEEP_WAL_LIMIT}; {script}"  # else SQLite's default: delete them
            # Before any Python callback is set on the connection (the step cap's progress
            # handler comes later, on the loop): the script runs without the GIL.
            if handle is None or not handle.run_script(script):
                _set_up(db, script, busy_timeout)  # again through sqlite3: its errors, retries
    except BaseException:
        db.close()
        raise
    return db, handle


@functools.lru_cache(maxsize=4096)
def _uri(target: str, mode: str) -> tuple[str, str]:
    # The absolute path and the URI opening it in `mode`; a churning pool opens the same
    # files again and again, and building the URI (pathlib, quoting) is Python work on a
    # lifecycle thread that holds the GIL the loop waits for.
    # abspath, not resolve(): no system call per path component (SQLite makes its own).
    path = os.path.abspath(target)
    return path, Path(path).as_uri() + f"?mode={mode}"


def _setup_script(inline: bool) -> str:
    # One script: one GIL release in all (`sqlite3_exec`) or per statement (`executescript`),
    # instead of two or three through execute() and fetchall(). Each is a GIL hand-off the
    # loop's thread may have to wait for (BENCHMARKS.md 11g, 11k); all of them are idempotent,
    # so a failed native run can run again through sqlite3.
    statements = ["PRAGMA journal_mode = WAL"]
    if inline:
        statements.append("PRAGMA wal_autocheckpoint = 0")
    statements += ["PRAGMA foreign_keys = ON", "PRAGMA synchronous = NORMAL"]
    if inline:
        # Read the schema here, on the worker: the first statement of a new connection
        # reads it from the file, which is I/O the loop should not wait for.
        statements += ["SELECT count(*) FROM sqlite_master", NO_WAIT]
    return "; ".join(statements)


def _set_up(db: sqlite3.Connection, script: str, busy_timeout: float) -> None:
    # Switching to WAL needs an exclusive lock and SQLite reports a clash at once instead of
    # calling the busy handler, so two processes creating one file retry here.
    deadline = time.monotonic() + busy_timeout
    delay = 0.001
    while True:
        try:
            db.executescript(script)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        else:
            return
