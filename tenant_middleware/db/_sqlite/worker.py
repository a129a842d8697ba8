"""The thread side of `SQLiteConnection`: the only code that touches a `sqlite3.Connection`.

Each job is `fn(db, *args)` run on the connection's own thread; its result or its error
(sqlite3 errors translated into `DatabaseError`) goes back to the awaiting future on the loop.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from tenant_middleware.db._errors import from_sqlite
from tenant_middleware.db._transactions import BATCH_SAVEPOINT
from tenant_middleware.db.protocol import ResultSet
from tenant_middleware.errors import DatabaseError

if TYPE_CHECKING:
    import asyncio
    import queue
    from collections.abc import Sequence

    from tenant_middleware.db.protocol import Params, Statement

Job: TypeAlias = "tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]] | None"
MEMORY = ":memory:"


def serve(
    loop: asyncio.AbstractEventLoop,
    jobs: queue.SimpleQueue[Job],
    target: str,
    busy_timeout: float,
    read_only: bool,
    ready: asyncio.Future[None],
) -> None:
    """Open the database, then run jobs until the `None` sentinel; close it on the way out."""
    try:
        db = _connect(target, busy_timeout, read_only)
    except BaseException as exc:
        _post(loop, ready, None, _translate(exc))
        return
    _post(loop, ready, None, None)
    while (job := jobs.get()) is not None:
        fn, args, future = job
        try:
            result = fn(db, *args)
        except BaseException as exc:
            _post(loop, future, None, _translate(exc))
        else:
            _post(loop, future, result, None)
    db.close()


def _post(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: object,
    error: BaseException | None,
) -> None:
    try:
        loop.call_soon_threadsafe(_settle, future, result, error)
    except RuntimeError:
        return  # the loop closed while the job ran: nobody is left to wait for the result


def _settle(future: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
    if future.done():  # the waiting task was cancelled
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        error: DatabaseError = from_sqlite(exc)  # typed by SQLite's extended code
    elif isinstance(exc, (OSError, OverflowError, ValueError)) and not isinstance(
        exc, DatabaseError
    ):
        # Unbindable values (ints beyond 64 bits) and unusable paths are database errors too.
        error = DatabaseError(f"{type(exc).__name__}: {exc}")
    else:
        return exc
    error.__cause__ = exc
    return error


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    # Extended codes (SQLITE_BUSY_SNAPSHOT, ...) keep the primary code in the low byte.
    return (code is not None and code & 0xFF == sqlite3.SQLITE_BUSY) or (
        "database is locked" in str(exc)
    )


def _connect(target: str, busy_timeout: float, read_only: bool) -> sqlite3.Connection:
    if target == MEMORY:
        db = sqlite3.connect(MEMORY, timeout=busy_timeout, isolation_level=None)
    elif read_only:
        uri = Path(target).resolve().as_uri() + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None)
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(target, timeout=busy_timeout, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if not read_only:
            _enable_wal(db, busy_timeout)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        db.close()
        raise
    return db


def _enable_wal(db: sqlite3.Connection, busy_timeout: float) -> None:
    # Switching to WAL needs an exclusive lock and SQLite reports a clash at once instead of
    # calling the busy handler, so two processes creating one file retry here.
    deadline = time.monotonic() + busy_timeout
    delay = 0.001
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL").fetchall()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        else:
            return


def execute(db: sqlite3.Connection, sql: str, params: Params) -> ResultSet:
    """Run one statement and collect its rows."""
    if not isinstance(params, (tuple, list, dict)):
        # sqlite3 binds only dicts and sequences; accept any Mapping the protocol allows.
        params = dict(params) if isinstance(params, Mapping) else tuple(params)
    cursor = db.execute(sql, params)
    try:
        rows = cursor.fetchall()
        description = cursor.description
        columns = tuple(d[0] for d in description) if description else ()
        changed = max(cursor.rowcount, 0)
        return ResultSet(columns, rows, changed, cursor.lastrowid if changed else None)
    finally:
        cursor.close()


def batch(db: sqlite3.Connection, statements: Sequence[Statement]) -> list[ResultSet]:
    """Run statements atomically: in a transaction, or under a savepoint inside one."""
    nested = db.in_transaction
    db.execute(f"SAVEPOINT {BATCH_SAVEPOINT}" if nested else "BEGIN IMMEDIATE")
    try:
        results = [
            execute(db, stmt, ()) if isinstance(stmt, str) else execute(db, *stmt)
            for stmt in statements
        ]
        db.execute(f"RELEASE {BATCH_SAVEPOINT}" if nested else "COMMIT")
    except BaseException:
        if nested:
            rollback_to(db, BATCH_SAVEPOINT)
        else:
            rollback(db)
        raise
    return results


def run(db: sqlite3.Connection, sql: str) -> None:
    """Run one statement that returns nothing (BEGIN, SAVEPOINT)."""
    db.execute(sql)


def commit(db: sqlite3.Connection) -> None:
    """Commit, rolling back if the commit itself fails."""
    try:
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise


def rollback(db: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any."""
    # SQLite rolls back by itself on some errors; a second ROLLBACK would fail.
    if db.in_transaction:
        db.execute("ROLLBACK")


def release(db: sqlite3.Connection, savepoint: str) -> None:
    """Keep a savepoint's changes."""
    db.execute(f"RELEASE {savepoint}")


def rollback_to(db: sqlite3.Connection, savepoint: str) -> None:
    """Undo a savepoint's changes and drop it."""
    if db.in_transaction:
        db.execute(f"ROLLBACK TO {savepoint}")
        db.execute(f"RELEASE {savepoint}")


def close_db(db: sqlite3.Connection) -> None:
    """Roll back anything open and close the database."""
    rollback(db)
    db.close()
