"""A PEP 249 connection and cursor over a leased tenant connection, for SQLAlchemy's greenlet.

SQLAlchemy's async engine runs its synchronous code in a greenlet and suspends it on every
driver call (`await_only`); the awaitable then runs in the request's own task, so the tenant
ContextVar, our task-owned transactions and the tenant's writer gate all see the request.

A transaction begins with the first statement after a commit or rollback (as PEP 249
drivers do) as our own `transaction()`: `BEGIN IMMEDIATE` behind the writer gate by default,
`BEGIN DEFERRED` at isolation level `DEFERRED`, none at `AUTOCOMMIT`. What must be undone
when the connection goes (the open transaction, the lease) lives in `_Lease`, apart from the
connection, so a connection dropped without `close()` still gives its lease back. Longer than
260 lines because the PEP 249 connection and cursor SQLAlchemy drives are one adapter.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy.util.concurrency import await_only

from tenant_middleware.context import tenant_db
from tenant_middleware.db.protocol import Executor
from tenant_middleware.errors import DatabaseBlocked
from tenant_middleware.errors import DatabaseError as _LibraryError
from tenant_middleware.sqlalchemy._errors import translate

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Params, ResultSet, Statement, Value

T = TypeVar("T")
log = logging.getLogger("tenant_middleware.sqlalchemy")

LEVELS = ("AUTOCOMMIT", "DEFERRED", "IMMEDIATE")
DEFAULT_LEVEL = "IMMEDIATE"


class LeasedConnection(Executor, Protocol):
    """What the dialect runs statements on: a `PooledConnection`, or the like."""

    @property
    def tenant_id(self) -> str:
        """The tenant whose database it is."""
        ...

    def transaction(self, *, write: bool = True) -> AbstractAsyncContextManager[Executor]:
        """Open a transaction (a write one behind the tenant's writer gate)."""
        ...


@dataclass(slots=True)
class Leased:
    """What an async creator returns: a leased connection and how to give it back."""

    connection: LeasedConnection
    release: Callable[[], Awaitable[None]]


AsyncCreator = Callable[[], Awaitable[Leased]]


async def lease_current_tenant() -> Leased:
    """Lease a connection to the current tenant's database (`tenant_db()`)."""
    lease = tenant_db()
    connection = await lease.__aenter__()

    async def release() -> None:
        await lease.__aexit__(None, None, None)

    return Leased(connection, release)


class _Rollback(Exception):
    """Thrown into our transaction's block to roll it back."""


# The write transactions each task has open, by tenant: a second one in the same task on
# another connection would wait for the first forever (the writer gate lets the task in,
# SQLite's write lock does not), so it is refused at once.
_writers: weakref.WeakKeyDictionary[asyncio.Task[Any], set[str]] = weakref.WeakKeyDictionary()
# Tasks returning the leases of dropped connections; kept so they are not collected midway.
_releasing: set[asyncio.Task[None]] = set()


class _Lease:
    """The lease and the open transaction of one DBAPI connection."""

    __slots__ = ("_writer_task", "done", "executor", "leased", "tx")

    def __init__(self, leased: Leased) -> None:
        self.leased = leased
        self.tx: AbstractAsyncContextManager[Executor] | None = None
        self.executor: Executor | None = None
        self._writer_task: asyncio.Task[Any] | None = None
        self.done = False

    async def _begin(self, level: str) -> Executor:
        write = level == DEFAULT_LEVEL
        tenant_id = self.leased.connection.tenant_id
        if write:
            task = asyncio.current_task()
            if task is not None:
                held = _writers.setdefault(task, set())
                if tenant_id in held:
                    raise _LibraryError(
                        "this task already has a write transaction open on another connection "
                        "to this tenant's database; finish it (or use one session) first"
                    )
                held.add(tenant_id)
                self._writer_task = task
        tx = self.leased.connection.transaction(write=write)
        try:
            self.executor = await tx.__aenter__()
        except BaseException:
            self._forget_writer()
            raise
        self.tx = tx
        return self.executor

    def _forget_writer(self) -> None:
        task, self._writer_task = self._writer_task, None
        if task is not None:
            _writers.get(task, set()).discard(self.leased.connection.tenant_id)

    async def execute(self, sql: str, params: Params, level: str) -> ResultSet:
        target: Executor | None = self.executor
        if target is None:
            target = self.leased.connection if level == "AUTOCOMMIT" else await self._begin(level)
        return await target.execute(sql, params)

    async def batch(self, statements: Sequence[Statement], level: str) -> list[ResultSet]:
        target: Executor | None = self.executor
        if target is None:
            target = self.leased.connection if level == "AUTOCOMMIT" else await self._begin(level)
        return await target.batch(statements)

    async def end(self, commit: bool) -> None:
        tx, self.tx, self.executor = self.tx, None, None
        if tx is None:
            return
        try:
            if commit:
                await tx.__aexit__(None, None, None)
            else:
                await tx.__aexit__(_Rollback, _Rollback(), None)
        finally:
            self._forget_writer()

    async def release(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            await self.end(commit=False)
        finally:
            await self.leased.release()


def _release_later(loop: asyncio.AbstractEventLoop, lease: _Lease) -> None:
    """Give a dropped connection's lease back from a task of its own (no greenlet here)."""

    def spawn() -> None:
        task = loop.create_task(lease.release())
        _releasing.add(task)
        task.add_done_callback(_released)

    try:
        loop.call_soon_threadsafe(spawn)
    except RuntimeError:
        return  # the loop has closed, and the pools with it


def _released(task: asyncio.Task[None]) -> None:
    _releasing.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("returning a dropped connection's lease failed", exc_info=task.exception())


def _run(awaitable: Awaitable[T]) -> T:
    try:
        return await_only(awaitable)
    except DatabaseBlocked:
        # The server refuses the tenant (suspended meanwhile): not a driver error. SQLAlchemy
        # passes it through unwrapped, and the middleware answers as the contract says.
        raise
    except _LibraryError as exc:
        raise translate(exc) from exc


class DBAPIConnection:
    """A PEP 249 connection holding one lease from the tenant's pool."""

    def __init__(self, lease: _Lease, loop: asyncio.AbstractEventLoop) -> None:
        self._lease = lease
        self._loop = loop
        self.isolation_level = DEFAULT_LEVEL
        self._finalizer = weakref.finalize(self, _release_later, loop, lease)
        self._finalizer.atexit = False

    @property
    def tenant_id(self) -> str:
        """The tenant whose database this connection leases."""
        return self._lease.leased.connection.tenant_id

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction of ours is open."""
        return self._lease.tx is not None

    def cursor(self, server_side: bool = False) -> Cursor:
        """A new cursor (every cursor buffers its rows: there are no server-side ones)."""
        return Cursor(self)

    def execute(self, sql: str, params: Params) -> ResultSet:
        """Run one statement, beginning the transaction first if none is open."""
        return _run(self._lease.execute(sql, params, self.isolation_level))

    def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements atomically (`executemany`)."""
        return _run(self._lease.batch(statements, self.isolation_level))

    def server_version(self) -> str:
        """The SQLite version of the database's server (outside any transaction)."""
        return str(_run(self._lease.leased.connection.execute("SELECT sqlite_version()")).scalar())

    def commit(self) -> None:
        """Commit the open transaction, if any."""
        if self._lease.tx is not None:
            _run(self._lease.end(commit=True))

    def rollback(self) -> None:
        """Roll back the open transaction, if any."""
        if self._lease.tx is not None:
            _run(self._lease.end(commit=False))

    def close(self) -> None:
        """Roll back what is open and give the lease back."""
        self._finalizer.detach()
        _run(self._lease.release())

    def terminate(self) -> None:
        """Give the lease back without waiting (garbage collection, no greenlet)."""
        if self._finalizer.detach() is not None:
            _release_later(self._loop, self._lease)

    def __repr__(self) -> str:
        state = "closed" if self._lease.done else "leased"
        return f"<tenant_middleware DBAPIConnection tenant={self.tenant_id} {state}>"


Description = tuple[str, None, None, None, None, None, None]


class Cursor:
    """A PEP 249 cursor: each statement's rows arrive whole, then are read from memory."""

    arraysize = 1

    def __init__(self, connection: DBAPIConnection) -> None:
        self._connection = connection
        self.description: tuple[Description, ...] | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[tuple[Value, ...]] = []
        self._index = 0

    def execute(self, operation: str, parameters: Params | None = None) -> None:
        """Run one statement."""
        result = self._connection.execute(operation, parameters or ())
        self.description = (
            tuple((name, None, None, None, None, None, None) for name in result.columns)
            if result.columns
            else None
        )
        self._rows, self._index = result.rows, 0
        changed = result.rows_affected
        self.rowcount = changed if changed or not result.columns else -1
        self.lastrowid = result.last_insert_rowid

    def executemany(self, operation: str, seq_of_parameters: Sequence[Params]) -> None:
        """Run one statement for each parameter set, atomically, in one round trip."""
        results = self._connection.batch([(operation, params) for params in seq_of_parameters])
        self.description, self._rows, self._index = None, [], 0
        self.rowcount = sum(result.rows_affected for result in results)
        self.lastrowid = None

    def fetchone(self) -> tuple[Value, ...] | None:
        """The next row, or None."""
        if self._index >= len(self._rows):
            return None
        row = self._rows[self._index]
        self._index += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[tuple[Value, ...]]:
        """Up to `size` (default `arraysize`) more rows."""
        end = self._index + (size or self.arraysize)
        rows = self._rows[self._index : end]
        self._index += len(rows)
        return rows

    def fetchall(self) -> list[tuple[Value, ...]]:
        """The remaining rows."""
        rows = self._rows[self._index :] if self._index else self._rows
        self._index = len(self._rows)
        return rows

    def close(self) -> None:
        """Drop the buffered rows."""
        self._rows, self._index = [], 0

    async def _async_soft_close(self) -> None:
        """Nothing to release: the rows are already in memory (SQLAlchemy's async hook)."""

    def setinputsizes(self, *sizes: object) -> None:
        """Accepted and ignored (PEP 249)."""

    def setoutputsize(self, size: int, column: int | None = None) -> None:
        """Accepted and ignored (PEP 249)."""


def open_connection(creator: AsyncCreator | None) -> DBAPIConnection:
    """Lease a connection from `creator`, or from the current tenant's pool."""
    loop = asyncio.get_running_loop()
    leased = _run(creator() if creator is not None else lease_current_tenant())
    return DBAPIConnection(_Lease(leased), loop)
