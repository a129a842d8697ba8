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
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tenant_middleware.db import _sqlite_worker as _worker
from tenant_middleware.errors import DatabaseError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType

    from tenant_middleware.db.protocol import Executor, Params, ResultSet, Statement

T = TypeVar("T")


class SQLiteConnection:
    """A `Connection` to a local SQLite/libSQL file (or `:memory:`)."""

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop) -> None:
        # Use `await SQLiteConnection.open(path)`; the constructor only wires the worker.
        self.path = path
        self._loop = loop
        self._jobs: queue.SimpleQueue[_worker.Job] = queue.SimpleQueue()
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
            target=_worker.serve, args=args, name=f"sqlite:{Path(target).name}", daemon=True
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
                return await self._submit(_worker.execute, sql, params)
        return await self._submit(_worker.execute, sql, params)

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements atomically; inside an open transaction, under a savepoint."""
        if self._busy_elsewhere():
            async with self._lock:
                return await self._submit(_worker.batch, statements)
        return await self._submit(_worker.batch, statements)

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
        future = self._submit(_worker.close_db)
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
                await conn._submit(_worker.run, f"SAVEPOINT {self._savepoint}")
            except BaseException:
                conn._depth -= 1
                raise
        else:
            await conn._lock.acquire()
            conn._owner = task
            try:
                await conn._submit(
                    _worker.run, "BEGIN IMMEDIATE" if self._write else "BEGIN DEFERRED"
                )
            except BaseException:
                # BEGIN may still run after a cancellation: queue the undo before unlocking.
                if not conn.closed:
                    conn._submit(_worker.rollback)
                self._unlock()
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
                action = _worker.release if exc_type is None else _worker.rollback_to
                await conn._submit(action, self._savepoint)
            else:
                await conn._submit(_worker.commit if exc_type is None else _worker.rollback)
        finally:
            if self._savepoint is not None:
                conn._depth -= 1
            else:
                self._unlock()

    def _unlock(self) -> None:
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
        return await self._conn._submit(_worker.execute, sql, params)

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements in the transaction, atomically under a savepoint."""
        if not self.active:
            raise DatabaseError("the transaction has ended")
        return await self._conn._submit(_worker.batch, statements)
