"""The code of `SQLiteConnection` that touches a `sqlite3.Connection`: statements, closing.

Each function is `fn(db, *args)`, run on a worker thread (a job) or inline on the event loop
under a step cap; sqlite3's errors are translated into `DatabaseError` for the caller. Opening
is in `opening`.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import sqlite3
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tenant_middleware.db._errors import from_sqlite
from tenant_middleware.db._transactions import BATCH_SAVEPOINT
from tenant_middleware.db.protocol import make_result
from tenant_middleware.errors import DatabaseError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Sequence

    from tenant_middleware.db.protocol import Params, ResultSet, Statement

logger = logging.getLogger("tenant_middleware.pool")

MEMORY = ":memory:"
NO_WAIT = "PRAGMA busy_timeout = 0"
# A WAL still holding this many frames after a PASSIVE checkpoint is started over (2 MiB of
# 4 KiB pages, half of `persist.JOURNAL_SIZE_LIMIT`: started over well before SQLite would
# truncate it, which it does on a commit, on the loop).
RESTART_FRAMES = 512
# How long restarting it may wait for the write lock (between two inline writes) or for
# readers of the old frames, holding off writers meanwhile.
RESTART_WAIT = "PRAGMA busy_timeout = 5"
_FIRST = operator.itemgetter(0)


def post(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """Call `callback(*args)` on the loop, unless the loop has closed."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        return  # the loop closed while the job ran: nobody is left to wait for the result


def settle(future: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
    if future.done():  # the waiting task was cancelled
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def translate(exc: BaseException) -> BaseException:
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


def is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    # Extended codes (SQLITE_BUSY_SNAPSHOT, ...) keep the primary code in the low byte.
    return (code is not None and code & 0xFF == sqlite3.SQLITE_BUSY) or (
        "database is locked" in str(exc)
    )


def busy_pragma(busy_timeout: float) -> str:
    """The statement that sets the connection's busy timeout."""
    return f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}"


def execute(db: sqlite3.Connection, sql: str, params: Params) -> ResultSet:
    """Run one statement and collect its rows."""
    if not isinstance(params, (tuple, list, dict)):
        # sqlite3 binds only dicts and sequences; accept any Mapping the protocol allows.
        params = dict(params) if isinstance(params, Mapping) else tuple(params)
    # fetchall() steps the statement to its end, which resets it: no cursor.close() needed.
    cursor = db.execute(sql, params)
    rows = cursor.fetchall()
    description = cursor.description
    columns = tuple(map(_FIRST, description)) if description else ()
    changed = cursor.rowcount
    if changed > 0:
        return make_result(columns, rows, changed, cursor.lastrowid)
    return make_result(columns, rows, 0, None)


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


def checkpoint(db: sqlite3.Connection, busy_pragma: str) -> None:
    """Copy what it can of the WAL into the database, waiting for nobody; restart a long WAL.

    A PASSIVE checkpoint leaves the WAL to be started over by the next write that finds it
    all copied, which never comes while other connections' writes overlap every checkpoint:
    the WAL then grows by every write (BENCHMARKS.md 11m), and SQLite truncates it on some
    later commit, on the loop. So a WAL left long is restarted here: RESTART, waiting at most
    `RESTART_WAIT` for the write lock (inline writers meeting it go to a worker for that
    moment) and for readers that still need the old frames (then it gives up).
    """
    _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if frames < RESTART_FRAMES:
        return
    db.execute(RESTART_WAIT)
    try:
        db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
    finally:
        db.execute(busy_pragma)


def close_quietly(db: sqlite3.Connection) -> None:
    """Close a database dropped without `close()` (a finalizer: it must not raise)."""
    with contextlib.suppress(sqlite3.Error):
        db.close()


def close_logged(db: sqlite3.Connection) -> None:
    """Close a database nobody waits for (`WorkerSet.later`): log a failure, never raise."""
    try:
        close_db(db)
    except Exception:
        logger.warning("closing a connection failed", exc_info=True)


def close_db(db: sqlite3.Connection) -> None:
    """Roll back anything open and close the database."""
    rollback(db)
    db.close()
