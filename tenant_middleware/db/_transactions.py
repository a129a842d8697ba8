"""Transactions as both backends run them: one at a time per connection, owned by the task that
opened it, nested in that task as savepoints.

`TransactionalConnection` keeps the rules; a backend supplies the statements (`_begin`,
`_finish`, `_savepoint`, `_end_savepoint`) and how a statement runs inside the open
transaction (`_execute_in_transaction`, `_batch_in_transaction`). Statements that other tasks
send on the connection meanwhile wait for the transaction's end (`_when_free`), so they never
run inside it or interleave with it.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from tenant_middleware.errors import DatabaseError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from types import TracebackType

    from tenant_middleware.db.protocol import Executor, Params, ResultSet, Statement

P = ParamSpec("P")
T = TypeVar("T")

# The savepoint a batch runs under inside an open transaction (nested transactions take
# `tx_savepoint_<depth>`, so the two never clash).
BATCH_SAVEPOINT = "tx_batch"


def begin_statement(write: bool) -> str:
    """The `BEGIN` of a transaction: a writer takes the write lock up front."""
    return "BEGIN IMMEDIATE" if write else "BEGIN DEFERRED"


class TransactionalConnection(ABC):
    """The transaction rules shared by `SQLiteConnection` and `RemoteConnection`."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._depth = 0

    @property
    @abstractmethod
    def closed(self) -> bool:
        """Whether `close()` has run."""

    @abstractmethod
    def _check_open(self) -> None:
        """Raise `DatabaseError` if the connection is closed."""

    def _in_own_transaction(self) -> bool:
        task = asyncio.current_task()
        return task is not None and self._owner is task

    async def _when_free(
        self, run: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await `run(...)` once no other task's transaction is open on the connection."""
        if self._lock.locked() and self._owner is not asyncio.current_task():
            # Another task's transaction is open: wait for it rather than interleave statements.
            async with self._lock:
                return await run(*args, **kwargs)
        return await run(*args, **kwargs)

    def transaction(self, *, write: bool = True, foreign_keys: bool = True) -> Transaction:
        """Open a transaction (`BEGIN IMMEDIATE` to write, `BEGIN DEFERRED` to read).

        Nested in the same task, it becomes a savepoint. Run its statements through the
        executor it yields; other tasks using this connection wait until it ends.
        `foreign_keys=False` runs the outermost transaction without enforcing them.
        """
        return Transaction(self, write, foreign_keys)

    # -- what a backend supplies ------------------------------------------------------------
    @abstractmethod
    async def _begin(self, write: bool, foreign_keys: bool = True) -> None:
        """Begin the transaction; if this raises, no transaction may be left open.

        With `foreign_keys=False`, enforcement is off until the transaction ends.
        """

    @abstractmethod
    async def _finish(self, commit: bool) -> None:
        """Commit or roll back the outermost transaction."""

    @abstractmethod
    async def _savepoint(self, name: str) -> None:
        """Open a savepoint inside the transaction."""

    @abstractmethod
    async def _end_savepoint(self, name: str, commit: bool) -> None:
        """Release the savepoint, or roll back to it."""

    def _transaction_ended(self) -> None:  # noqa: B027 -- optional: most backends keep nothing
        """Forget what the outermost transaction held (called however it ended)."""

    @abstractmethod
    async def _execute_in_transaction(self, sql: str, params: Params) -> ResultSet:
        """Run one statement inside the open transaction."""

    @abstractmethod
    async def _batch_in_transaction(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements inside the open transaction, atomically under a savepoint."""


class Transaction:
    """The async context manager `transaction()` returns."""

    __slots__ = ("_conn", "_executor", "_foreign_keys", "_savepoint", "_write")

    def __init__(self, conn: TransactionalConnection, write: bool, foreign_keys: bool) -> None:
        self._conn = conn
        self._write = write
        self._foreign_keys = foreign_keys
        self._savepoint: str | None = None
        self._executor: TransactionExecutor | None = None

    async def __aenter__(self) -> Executor:
        conn = self._conn
        conn._check_open()
        if conn._in_own_transaction():
            conn._depth += 1
            self._savepoint = f"tx_savepoint_{conn._depth}"
            try:
                await conn._savepoint(self._savepoint)
            except BaseException:
                conn._depth -= 1
                raise
        else:
            await conn._lock.acquire()
            conn._owner = asyncio.current_task()
            try:
                conn._check_open()  # it may have closed while we waited for the lock
                await conn._begin(self._write, self._foreign_keys)
            except BaseException:
                self._unlock()
                raise
        self._executor = TransactionExecutor(conn)
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
        commit = exc_type is None
        try:
            if conn.closed:
                if commit:
                    raise DatabaseError("connection closed before the transaction committed")
                return
            if self._savepoint is not None:
                await conn._end_savepoint(self._savepoint, commit)
            else:
                await conn._finish(commit)
        finally:
            if self._savepoint is not None:
                conn._depth -= 1
            else:
                conn._transaction_ended()
                self._unlock()

    def _unlock(self) -> None:
        self._conn._owner = None
        self._conn._lock.release()


class TransactionExecutor:
    """Runs statements inside an open transaction; refuses them once it has ended."""

    __slots__ = ("_conn", "active")

    def __init__(self, conn: TransactionalConnection) -> None:
        self._conn = conn
        self.active = True

    async def execute(self, sql: str, params: Params = ()) -> ResultSet:
        """Run one statement in the transaction."""
        if not self.active:
            raise DatabaseError("the transaction has ended")
        return await self._conn._execute_in_transaction(sql, params)

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements in the transaction, atomically under a savepoint."""
        if not self.active:
            raise DatabaseError("the transaction has ended")
        return await self._conn._batch_in_transaction(statements)
