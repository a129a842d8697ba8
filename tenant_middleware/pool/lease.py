"""`PooledConnection`: what a handler holds while it has a tenant's connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from tenant_middleware.errors import DatabaseError

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Connection, Executor, Params, ResultSet, Statement


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

    async def execute(self, sql: str, params: Params = ()) -> ResultSet:
        """Run one statement."""
        return await self._live().execute(sql, params)

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements atomically."""
        connection = self._live()
        async with self._write_gate.hold():
            return await connection.batch(statements)

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[Executor]:
        """Open a transaction; write transactions of a tenant run one at a time."""
        connection = self._live()
        if not write:
            async with connection.transaction(write=False) as executor:
                yield executor
            return
        async with self._write_gate.hold(), connection.transaction(write=True) as executor:
            yield executor

    async def close(self) -> None:
        """End the lease early; the pool takes the connection back when the block exits."""
        self._released = True

    def _release(self) -> Connection:
        self._released = True
        return self._connection

    def __repr__(self) -> str:
        state = "released" if self._released else "leased"
        return f"<PooledConnection tenant={self.tenant_id} {state}>"
