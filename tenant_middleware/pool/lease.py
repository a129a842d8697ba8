"""What a handler holds while it has a tenant's connection.

`Lease` is the `async with` that takes a connection from the pool and gives it back,
`PooledConnection` the handle the block uses, and `WriterGate` the per-tenant lock that
serialises its write transactions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tenant_middleware.db.protocol import Connection, Executor, Params, ResultSet, Statement
from tenant_middleware.errors import DatabaseError, DatabaseUnreachable

if TYPE_CHECKING:
    from tenant_middleware.pool._tenant_pool import TenantPool
    from tenant_middleware.pool.manager import PoolManager


class WriterGate:
    """One tenant's writers, one at a time; re-entrant within a task."""

    __slots__ = ("__weakref__", "_lock", "_owner")

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[object] | None = None

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold the gate for the block (at once if this task already holds it)."""
        task = asyncio.current_task()
        if self._owner is task and task is not None:
            yield
            return
        async with self._lock:
            self._owner = task
            try:
                yield
            finally:
                self._owner = None


class PooledConnection:
    """A leased connection: usable until it goes back to the pool, then refused.

    Write transactions of one tenant are serialised by a gate shared by its pool, so
    read-modify-write transactions queue on the event loop instead of failing with a busy
    error or spinning in SQLite's busy handler.
    """

    __slots__ = ("_connection", "_released", "_write_gate", "tenant_id")

    def __init__(self, tenant_id: str, connection: Connection, write_gate: WriterGate) -> None:
        self.tenant_id = tenant_id
        self._connection = connection
        self._write_gate = write_gate
        self._released = False

    def _live(self) -> Connection:
        if self._released:
            raise DatabaseError("this connection was returned to the pool; acquire a new one")
        return self._connection

    @property
    def closed(self) -> bool:
        """Whether the lease has ended or the connection is closed."""
        return self._released or self._connection.closed

    def execute(self, sql: str, params: Params = ()) -> Coroutine[Any, Any, ResultSet]:
        """Run one statement: `await db.execute(sql, params)`.

        A plain method handing back the connection's own coroutine rather than a coroutine of
        its own: one frame fewer per statement. A released lease refuses at the call.
        """
        return self._live().execute(sql, params)

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements atomically."""
        connection = self._live()
        async with self._write_gate.hold():
            return await connection.batch(statements)

    @asynccontextmanager
    async def transaction(
        self, *, write: bool = True, foreign_keys: bool = True
    ) -> AsyncIterator[Executor]:
        """Open a transaction; write transactions of a tenant run one at a time."""
        connection = self._live()
        if not write:
            async with connection.transaction(write=False, foreign_keys=foreign_keys) as tx:
                yield tx
            return
        async with (
            self._write_gate.hold(),
            connection.transaction(write=True, foreign_keys=foreign_keys) as executor,
        ):
            yield executor

    async def close(self) -> None:
        """End the lease early; the pool takes the connection back when the block exits."""
        self._released = True

    def __repr__(self) -> str:
        state = "released" if self._released else "leased"
        return f"<PooledConnection tenant={self.tenant_id} {state}>"


class Lease:
    """The `async with` of `PoolManager.connection()`.

    A class rather than an `@asynccontextmanager`: every request goes through it, and a
    generator-based context manager costs several times more.
    """

    __slots__ = ("_lease", "_manager", "_pool", "_tenant_id")

    def __init__(self, manager: PoolManager, tenant_id: str) -> None:
        self._manager = manager
        self._tenant_id = tenant_id
        self._pool: TenantPool | None = None
        self._lease: PooledConnection | None = None

    def enter_now(self) -> PooledConnection | None:
        """`__aenter__` without a coroutine when an idle connection of an open pool is there
        (the warm case), else None: then `__aenter__` does the rest (create, wait, breaker)."""
        acquired = self._manager._acquire_now(self._tenant_id)
        if acquired is None:
            return None
        return self._leased(*acquired)

    def _leased(self, pool: TenantPool, connection: Connection) -> PooledConnection:
        self._pool = pool
        self._lease = lease = PooledConnection(self._tenant_id, connection, pool.gate)
        return lease

    async def __aenter__(self) -> PooledConnection:
        manager = self._manager
        acquired = manager._acquire_now(self._tenant_id)
        if acquired is None:
            acquired = await manager._acquire(self._tenant_id)
        return self._leased(*acquired)

    def exit_now(self, exc: BaseException | None) -> Coroutine[Any, Any, None] | None:
        """`__aexit__` without a coroutine: give the connection back, and hand back the close
        to await when it must be closed instead (retired pool, closed connection), else None."""
        pool, lease = self._pool, self._lease
        if pool is None or lease is None:
            return None
        self._pool = self._lease = None
        manager = self._manager
        # Only while some tenant's breaker has a failure on record, or on a failure: the
        # common case costs one attribute read.
        if manager.breakers.watching or (exc is not None and isinstance(exc, DatabaseUnreachable)):
            manager._lease_ended(self._tenant_id, exc)
        lease._released = True  # set here, not by a method: every lease's exit runs this
        connection = lease._connection
        if manager._check_in(pool, connection):
            return manager._close_connection(connection, pool)
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        closing = self.exit_now(exc)
        if closing is not None:
            await closing
