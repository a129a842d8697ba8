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

from tenant_middleware.db._sqlite import worker as _worker
from tenant_middleware.db._transactions import TransactionalConnection, begin_statement
from tenant_middleware.errors import DatabaseError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tenant_middleware.db.protocol import Params, ResultSet, Statement

T = TypeVar("T")


class SQLiteConnection(TransactionalConnection):
    """A `Connection` to a local SQLite/libSQL file (or `:memory:`)."""

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop) -> None:
        # Use `await SQLiteConnection.open(path)`; the constructor only wires the worker.
        super().__init__()
        self.path = path
        self._loop = loop
        self._jobs: queue.SimpleQueue[_worker.Job] = queue.SimpleQueue()
        self._closed = False
        self._foreign_keys_off = False
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

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError(f"connection to {self.path} is closed")

    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        self._check_open()
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((fn, args, future))
        return future

    async def execute(self, sql: str, params: Params = ()) -> ResultSet:
        """Run one statement with positional (`?`) or named (`:name`) parameters."""
        return await self._when_free(self._submit, _worker.execute, sql, params)

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements atomically; inside an open transaction, under a savepoint."""
        return await self._when_free(self._submit, _worker.batch, statements)

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

    # -- transactions (the rules are in `_transactions`) ----------------------------------
    async def _begin(self, write: bool, foreign_keys: bool = True) -> None:
        try:
            if not foreign_keys:  # SQLite honours it only outside a transaction
                self._foreign_keys_off = True
                await self._submit(_worker.run, "PRAGMA foreign_keys = OFF")
            await self._submit(_worker.run, begin_statement(write))
        except BaseException:
            # BEGIN may still run after a cancellation: queue the undo before unlocking.
            if not self._closed:
                self._submit(_worker.rollback)
            self._transaction_ended()
            raise

    def _transaction_ended(self) -> None:
        if self._foreign_keys_off and not self._closed:
            # Queued ahead of any later job: the next transaction enforces them again.
            self._submit(_worker.run, "PRAGMA foreign_keys = ON").add_done_callback(_seen)
        self._foreign_keys_off = False

    async def _finish(self, commit: bool) -> None:
        await self._submit(_worker.commit if commit else _worker.rollback)

    async def _savepoint(self, name: str) -> None:
        await self._submit(_worker.run, f"SAVEPOINT {name}")

    async def _end_savepoint(self, name: str, commit: bool) -> None:
        await self._submit(_worker.release if commit else _worker.rollback_to, name)

    async def _execute_in_transaction(self, sql: str, params: Params) -> ResultSet:
        return await self._submit(_worker.execute, sql, params)

    async def _batch_in_transaction(self, statements: Sequence[Statement]) -> list[ResultSet]:
        return await self._submit(_worker.batch, statements)

    def __repr__(self) -> str:
        return f"<SQLiteConnection path={self.path!r} closed={self._closed}>"


def _seen(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # a failure here shows on the next statement; do not log it twice
