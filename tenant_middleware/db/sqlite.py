"""Local SQLite/libSQL files through the stdlib `sqlite3`, run on one worker thread per connection.

The event loop never blocks on SQLite: each connection owns a thread that alone touches its
`sqlite3.Connection` (`check_same_thread` stays on as a guard). Jobs go through a FIFO queue
and results come back with `call_soon_threadsafe`, so statements run in submission order; an
asyncio lock keeps other tasks out while one task has a transaction open.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from tenant_middleware.db.protocol import Executor, Params, ResultSet, Statement
from tenant_middleware.errors import DatabaseBusy, DatabaseError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

T = TypeVar("T")
_Job: TypeAlias = "tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]] | None"
_MEMORY = ":memory:"


class SQLiteConnection:
    """A `Connection` to a local SQLite/libSQL file (or `:memory:`)."""

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop) -> None:
        # Use `await SQLiteConnection.open(path)`; the constructor only wires the worker.
        self.path = path
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._depth = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        # A connection dropped without close() still stops its thread when collected.
        self._stop = weakref.finalize(self, self._jobs.put, None)

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, busy_timeout: float = 5.0, read_only: bool = False
    ) -> SQLiteConnection:
        """Open (creating parent directories unless read-only) a database file in WAL mode."""
        target = os.fspath(path)
        loop = asyncio.get_running_loop()
        conn = cls(target, loop)
        ready: asyncio.Future[None] = loop.create_future()
        args = (loop, conn._jobs, target, busy_timeout, read_only, ready)
        conn._thread = threading.Thread(
            target=_serve, args=args, name=f"sqlite:{Path(target).name}", daemon=True
        )
        conn._thread.start()
        try:
            await ready
        except BaseException:
            conn._shutdown()
            raise
        return conn

    @property
    def closed(self) -> bool:
        """Whether `close()` has run."""
        return self._closed

    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        if self._closed:
            raise DatabaseError(f"connection to {self.path} is closed")
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((fn, args, future))
        return future

    def _busy_elsewhere(self) -> bool:
        # Another task's transaction is open: wait for it rather than interleave statements.
        return self._lock.locked() and self._owner is not asyncio.current_task()

    async def execute(self, sql: str, params: Params = ()) -> ResultSet:
        """Run one statement with positional (`?`) or named (`:name`) parameters."""
        if self._busy_elsewhere():
            async with self._lock:
                return await self._submit(_execute, sql, params)
        return await self._submit(_execute, sql, params)

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements atomically; inside an open transaction, under a savepoint."""
        if self._busy_elsewhere():
            async with self._lock:
                return await self._submit(_batch, statements)
        return await self._submit(_batch, statements)

    def transaction(self, *, write: bool = True) -> _Transaction:
        """Open a transaction (`BEGIN IMMEDIATE` to write, `BEGIN DEFERRED` to read).

        Nested in the same task, it becomes a savepoint. Run its statements through the
        executor it yields; other tasks using this connection wait until it ends.
        """
        return _Transaction(self, write)

    async def close(self) -> None:
        """Roll back any open transaction, close the database and stop the thread."""
        if self._closed:
            return
        future = self._submit(_close)
        self._closed = True  # refuse new work at once; queued jobs still run first
        self._stop()
        try:
            await future
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._closed = True
        self._stop()
        # The worker only has the stop sentinel left to read, so this join is immediate.
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __repr__(self) -> str:
        return f"<SQLiteConnection path={self.path!r} closed={self._closed}>"


class _Transaction:
    """The async context manager returned by `SQLiteConnection.transaction()`."""

    __slots__ = ("_conn", "_executor", "_savepoint", "_write")

    def __init__(self, conn: SQLiteConnection, write: bool) -> None:
        self._conn = conn
        self._write = write
        self._savepoint: str | None = None
        self._executor: _TransactionExecutor | None = None

    async def __aenter__(self) -> Executor:
        conn = self._conn
        task = asyncio.current_task()
        if task is not None and conn._owner is task:
            conn._depth += 1
            self._savepoint = f"tx_savepoint_{conn._depth}"
            try:
                await conn._submit(_run, f"SAVEPOINT {self._savepoint}")
            except BaseException:
                conn._depth -= 1
                raise
        else:
            await conn._lock.acquire()
            conn._owner = task
            try:
                await conn._submit(_run, "BEGIN IMMEDIATE" if self._write else "BEGIN DEFERRED")
            except BaseException:
                # BEGIN may still run after a cancellation: queue the undo before unlocking.
                if not conn.closed:
                    conn._submit(_rollback)
                self._release()
                raise
        self._executor = _TransactionExecutor(conn)
        return self._executor

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        assert self._executor is not None
        self._executor.active = False
        try:
            if conn.closed:
                if exc_type is None:
                    raise DatabaseError("connection closed before the transaction committed")
                return
            if self._savepoint is not None:
                action = _release if exc_type is None else _rollback_to
                await conn._submit(action, self._savepoint)
            else:
                await conn._submit(_commit if exc_type is None else _rollback)
        finally:
            if self._savepoint is not None:
                conn._depth -= 1
            else:
                self._release()

    def _release(self) -> None:
        self._conn._owner = None
        self._conn._lock.release()


class _TransactionExecutor:
    """Runs statements inside an open transaction, bypassing the connection's lock."""

    __slots__ = ("_conn", "active")

    def __init__(self, conn: SQLiteConnection) -> None:
        self._conn = conn
        self.active = True

    async def execute(self, sql: str, params: Params = ()) -> ResultSet:
        """Run one statement in the transaction."""
        if not self.active:
            raise DatabaseError("the transaction has ended")
        return await self._conn._submit(_execute, sql, params)

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements in the transaction, atomically under a savepoint."""
        if not self.active:
            raise DatabaseError("the transaction has ended")
        return await self._conn._submit(_batch, statements)


# -- the worker thread -------------------------------------------------------------------


def _serve(
    loop: asyncio.AbstractEventLoop,
    jobs: queue.SimpleQueue[_Job],
    target: str,
    busy_timeout: float,
    read_only: bool,
    ready: asyncio.Future[None],
) -> None:
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
        code = getattr(exc, "sqlite_errorcode", None)
        busy = (code is not None and code & 0xFF == sqlite3.SQLITE_BUSY) or (
            "database is locked" in str(exc)
        )
        error: DatabaseError = DatabaseBusy(str(exc)) if busy else DatabaseError(str(exc))
    elif isinstance(exc, (OSError, OverflowError, ValueError)) and not isinstance(
        exc, DatabaseError
    ):
        # Unbindable values (ints beyond 64 bits) and unusable paths are database errors too.
        error = DatabaseError(f"{type(exc).__name__}: {exc}")
    else:
        return exc
    error.__cause__ = exc
    return error


def _connect(target: str, busy_timeout: float, read_only: bool) -> sqlite3.Connection:
    if target == _MEMORY:
        db = sqlite3.connect(_MEMORY, timeout=busy_timeout, isolation_level=None)
    elif read_only:
        uri = Path(target).resolve().as_uri() + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None)
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(target, timeout=busy_timeout, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if not read_only:
            db.execute("PRAGMA journal_mode = WAL").fetchall()
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        db.close()
        raise
    return db


def _execute(db: sqlite3.Connection, sql: str, params: Params) -> ResultSet:
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


def _batch(db: sqlite3.Connection, statements: Sequence[Statement]) -> list[ResultSet]:
    nested = db.in_transaction
    db.execute("SAVEPOINT tx_batch" if nested else "BEGIN IMMEDIATE")
    try:
        results = [
            _execute(db, stmt, ()) if isinstance(stmt, str) else _execute(db, *stmt)
            for stmt in statements
        ]
        db.execute("RELEASE tx_batch" if nested else "COMMIT")
    except BaseException:
        if nested:
            _rollback_to(db, "tx_batch")
        else:
            _rollback(db)
        raise
    return results


def _run(db: sqlite3.Connection, sql: str) -> None:
    db.execute(sql)


def _commit(db: sqlite3.Connection) -> None:
    try:
        db.execute("COMMIT")
    except BaseException:
        _rollback(db)
        raise


def _rollback(db: sqlite3.Connection) -> None:
    # SQLite rolls back by itself on some errors; a second ROLLBACK would fail.
    if db.in_transaction:
        db.execute("ROLLBACK")


def _release(db: sqlite3.Connection, savepoint: str) -> None:
    db.execute(f"RELEASE {savepoint}")


def _rollback_to(db: sqlite3.Connection, savepoint: str) -> None:
    if db.in_transaction:
        db.execute(f"ROLLBACK TO {savepoint}")
        db.execute(f"RELEASE {savepoint}")


def _close(db: sqlite3.Connection) -> None:
    _rollback(db)
    db.close()
