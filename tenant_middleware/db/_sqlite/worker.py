"""The code of `SQLiteConnection` that touches a `sqlite3.Connection`: opening it, statements.

Each function is `fn(db, *args)`, run on a worker thread (a job) or inline on the event loop
under a step cap; sqlite3's errors are translated into `DatabaseError` for the caller.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit
from urllib.request import url2pathname

from tenant_middleware.db._errors import from_sqlite
from tenant_middleware.db._sqlite.persist import keep_wal
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
_FIRST = operator.itemgetter(0)


# (loop, future, target, busy_timeout, read_only, inline, create)
OpenRequest: TypeAlias = (
    "tuple[asyncio.AbstractEventLoop, asyncio.Future[sqlite3.Connection], str, float, bool,"
    " bool, bool]"
)


def open_job(request: OpenRequest) -> None:
    """On a worker thread: open the database and hand it to the future (a `WorkerSet` job)."""
    loop, future, target, busy_timeout, read_only, inline, create = request
    try:
        db = connect(target, busy_timeout, read_only, inline=inline, create=create)
    except BaseException as exc:
        post(loop, settle, future, None, translate(exc))
    else:
        post(loop, _settle_open, future, db, None)


def post(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """Call `callback(*args)` on the loop, unless the loop has closed."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        return  # the loop closed while the job ran: nobody is left to wait for the result


def _settle_open(
    future: asyncio.Future[sqlite3.Connection], db: sqlite3.Connection, error: None
) -> None:
    if future.done():  # the opener was cancelled: nobody will close it otherwise
        db.close()
    else:
        future.set_result(db)


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


def connect(
    target: str, busy_timeout: float, read_only: bool, *, inline: bool, create: bool = True
) -> sqlite3.Connection:
    """Open the database in WAL mode; `inline` ones are also used from the event loop's thread.

    Those never wait for a lock on the loop (`busy_timeout` 0 until a worker job sets it) and
    leave WAL checkpoints to the worker (`wal_autocheckpoint` 0): see `inline`. Without
    `create`, a missing file fails (`SQLITE_CANTOPEN`) instead of being created.
    """
    # Not check_same_thread: the connection runs on the loop and on any worker thread, but
    # `SQLiteConnection` never lets two of them use it at once.
    uri = False
    if target != MEMORY and (read_only or not create):
        mode = "ro" if read_only else "rw"
        # abspath, not resolve(): no system call per path component (SQLite makes its own).
        target, uri = Path(os.path.abspath(target)).as_uri() + f"?mode={mode}", True
    elif target != MEMORY:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        target, timeout=busy_timeout, isolation_level=None, check_same_thread=False, uri=uri
    )
    try:
        if read_only:
            db.executescript("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL")
        else:
            if target != MEMORY:
                keep_wal(db, db_path(target, uri))  # or SQLite's default: delete them
            _set_up(db, _setup_script(inline), busy_timeout)
    except BaseException:
        db.close()
        raise
    return db


def db_path(target: str, uri: bool) -> str:
    """The file a `connect` target names."""
    if not uri:
        return target
    return url2pathname(urlsplit(target).path)


def _setup_script(inline: bool) -> str:
    # One executescript: one GIL release per statement instead of two or three through
    # execute() and fetchall(). Each is a GIL hand-off the loop's thread may have to wait for
    # while it runs Python code (BENCHMARKS.md 11g); all of them are idempotent.
    statements = ["PRAGMA journal_mode = WAL"]
    if inline:
        statements.append("PRAGMA wal_autocheckpoint = 0")
    statements += ["PRAGMA foreign_keys = ON", "PRAGMA synchronous = NORMAL"]
    if inline:
        # Read the schema here, on the worker: the first statement of a new connection
        # reads it from the file, which is I/O the loop should not wait for.
        statements += ["SELECT count(*) FROM sqlite_master", NO_WAIT]
    return "; ".join(statements)


def busy_pragma(busy_timeout: float) -> str:
    """The statement that sets the connection's busy timeout."""
    return f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}"


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


def checkpoint(db: sqlite3.Connection) -> None:
    """Copy what it can of the WAL into the database, without waiting for readers."""
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


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
