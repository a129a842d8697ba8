"""Local SQLite/libSQL files through the stdlib `sqlite3`: inline under a step cap, else a worker.

Autocommit statements and batches run on the event loop's thread under a cap on SQLite's
steps (`inline`); what goes over it, meets a lock, or belongs to an interactive transaction
runs on the process's shared worker threads (`threads`), as does checkpointing; opening and
closing run on its lifecycle threads. The loop never sleeps on a lock or runs an unbounded
statement. A connection has at most one job on a worker at a time and queues the others in
order; an inline statement waits until its worker job is done, so the loop and a worker never
use the database at once. An asyncio lock keeps other tasks out while one task has a
transaction open.

`inline=False` keeps every statement on the workers: for databases larger than the page cache,
whose reads would wait for the disk on the loop. Longer than 260 lines because the inline and
worker paths and the job queue they share are one piece of ordering that must not drift apart.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar

from tenant_middleware.db._sqlite import worker as _worker
from tenant_middleware.db._sqlite.inline import FALL_BACK, StepCap
from tenant_middleware.db._sqlite.opening import Opened, open_job
from tenant_middleware.db._sqlite.threads import WorkerSet, lifecycle_workers, shared_workers
from tenant_middleware.db._transactions import TransactionalConnection, begin_statement
from tenant_middleware.errors import DatabaseError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

    from tenant_middleware.db.protocol import Params, ResultSet, Statement

T = TypeVar("T")
Job = tuple["Callable[..., Any]", tuple[Any, ...], "asyncio.Future[Any]"]
# Writes between two PASSIVE checkpoints of an inline connection (it turns SQLite's own off,
# which would run on the loop with an fsync).
CHECKPOINT_EVERY = 200


class SQLiteConnection(TransactionalConnection):
    """A `Connection` to a local SQLite/libSQL file (or `:memory:`)."""

    def __init__(
        self,
        path: str,
        loop: asyncio.AbstractEventLoop,
        db: sqlite3.Connection,
        workers: tuple[WorkerSet, WorkerSet],  # for statements, for opening and closing
        *,
        inline: bool,
        busy_timeout: float,
    ) -> None:
        # Use `await SQLiteConnection.open(path)`, which opens `db` on a worker thread.
        super().__init__()
        self.path = path
        self._loop = loop
        self._db = db
        self._workers, self._lifecycle = workers
        self._closed = False
        self._running = False  # one of its jobs is on a worker thread
        self._queued: deque[Job] = deque()
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._cap = StepCap(db) if inline else None
        self._busy_pragma = _worker.busy_pragma(busy_timeout)
        self._writes = 0
        self._foreign_keys_off = False
        self._schema_version_at_open: int | None = None
        # A connection dropped without close() still closes its database when collected.
        self._finalizer = weakref.finalize(self, _worker.close_quietly, db)

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        read_only: bool = False,
        inline: bool = True,
        workers: WorkerSet | None = None,
        create: bool = True,
    ) -> SQLiteConnection:
        """Open (creating parent directories unless read-only) a database file in WAL mode.

        `create=False` opens only an existing file: a missing one fails with `DatabaseError`
        (`SQLITE_CANTOPEN`), with no separate check before the open.

        `inline=False` runs every statement on a worker thread. Opening and closing run on
        `workers` when given, else on the process's few lifecycle threads.
        """
        target = os.fspath(path)
        loop = asyncio.get_running_loop()
        lifecycle = workers if workers is not None else lifecycle_workers()
        workers = workers if workers is not None else shared_workers()
        opened: asyncio.Future[Opened] = loop.create_future()
        request = (loop, opened, target, busy_timeout, read_only, inline, create)
        lifecycle.submit(open_job, request)
        db, version = await opened
        connection = cls(
            target, loop, db, (workers, lifecycle), inline=inline, busy_timeout=busy_timeout
        )
        connection._schema_version_at_open = version
        return connection

    def take_schema_version_at_open(self) -> int | None:
        """The schema cookie read when the database was opened, once (then None).

        Only the first check may use it: it is what the file said right after the open, and
        anything later must read it again.
        """
        version, self._schema_version_at_open = self._schema_version_at_open, None
        return version

    @property
    def closed(self) -> bool:
        """Whether `close()` has run."""
        return self._closed

    @property
    def inline(self) -> bool:
        """Whether autocommit statements and batches run on the loop under a step cap."""
        return self._cap is not None

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError(f"connection to {self.path} is closed")

    # -- the worker side ------------------------------------------------------------------
    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        self._check_open()
        future: asyncio.Future[T] = self._loop.create_future()
        job: Job = (fn, args, future)
        if self._running:
            self._queued.append(job)
        else:
            self._running = True
            self._dispatch(job)
        return future

    def _dispatch(self, job: Job) -> None:
        workers = self._lifecycle if job[0] is _worker.close_db else self._workers
        workers.submit(self._run, job)

    def _run(self, job: Job) -> None:
        """On a worker thread: run one job and report to the loop."""
        fn, args, future = job
        db = self._db
        try:
            cap = self._cap
            if cap is not None and not cap.on_worker:
                cap.leave_loop(self._busy_pragma)  # a worker waits for locks; the loop does not
            result = fn(db, *args)
        except BaseException as exc:
            _worker.post(self._loop, self._ran, future, None, _worker.translate(exc))
        else:
            _worker.post(self._loop, self._ran, future, result, None)

    def _ran(
        self, future: asyncio.Future[Any], result: object, error: BaseException | None
    ) -> None:
        _worker.settle(future, result, error)
        if self._queued:
            self._dispatch(self._queued.popleft())
            return
        self._running = False
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _until_idle(self) -> None:
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._idle_waiters.append(waiter)
        await waiter

    def _can_inline(self) -> bool:
        return not (self._running or self._lock.locked() or self._db.in_transaction)

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes >= CHECKPOINT_EVERY and self._cap is not None and not self._closed:
            self._writes = 0
            checkpoint = self._submit(_worker.checkpoint, self._busy_pragma)
            checkpoint.add_done_callback(_ignore_failure)

    # -- statements -----------------------------------------------------------------------
    async def execute(self, sql: str, params: Params = ()) -> ResultSet:
        """Run one statement with positional (`?`) or named (`:name`) parameters."""
        cap = self._cap
        if cap is not None:
            self._check_open()
            if self._running and not self._lock.locked():
                # Wait for its worker job rather than queue behind it: under load, queued
                # statements would keep it busy and nothing would run inline again.
                await self._until_idle()
            if self._can_inline() and not self._closed:
                result: ResultSet = cap.run(_worker.execute, sql, params)
                if result is not FALL_BACK:
                    if result.rows_affected:
                        self._wrote()
                    return result
        result = await self._when_free(self._submit, _worker.execute, sql, params)
        if result.rows_affected and cap is not None:
            self._wrote()
        return result

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements atomically; inside an open transaction, under a savepoint."""
        cap = self._cap
        if cap is not None:
            self._check_open()
            if self._running and not self._lock.locked():
                await self._until_idle()
            if self._can_inline() and not self._closed:
                results: list[ResultSet] = cap.run(_worker.batch, statements)
                if results is not FALL_BACK:
                    self._wrote()
                    return results
        results = await self._when_free(self._submit, _worker.batch, statements)
        if cap is not None:
            self._wrote()
        return results

    async def close(self) -> None:
        """Roll back any open transaction and close the database (after its queued jobs)."""
        if self._closed:
            return
        future = self._submit(_worker.close_db)
        self._closed = True  # refuse new work at once; queued jobs still run first
        self._finalizer.detach()
        await future

    def close_later(self) -> None:
        """Close without waiting for it: what the pool does with connections it retires.

        An idle connection's database joins the batch its lifecycle thread closes next (no
        task, no future, no call back to the loop); one with jobs queued closes after them.
        A failure is logged, as nobody awaits it.
        """
        if self._closed:
            return
        if self._running:
            self._submit(_worker.close_db).add_done_callback(_log_close_failure)
        else:
            self._lifecycle.later(_worker.close_logged, self._db)
        self._closed = True
        self._finalizer.detach()

    # -- transactions (the rules are in `_transactions`); always on the worker -------------
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
            # Queued ahead of any later job, and an inline statement waits for the worker to
            # go idle first: the next statement enforces them again.
            self._submit(_worker.run, "PRAGMA foreign_keys = ON").add_done_callback(_ignore_failure)
        self._foreign_keys_off = False

    async def _finish(self, commit: bool) -> None:
        await self._submit(_worker.commit if commit else _worker.rollback)
        if commit and self._cap is not None:
            self._wrote()

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


def _log_close_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        _worker.logger.warning("closing a connection failed", exc_info=future.exception())


def _ignore_failure(future: asyncio.Future[None]) -> None:
    # A checkpoint that could not run (closed meanwhile, busy) is retried by the next one; a
    # failed pragma shows on the next statement. Neither is logged twice.
    if not future.cancelled():
        future.exception()
