"""Remote libSQL databases (sqld namespaces, Turso) over Hrana 3 HTTP pipelines.

`RemoteConnection` implements the `Connection` protocol:

- `execute` outside a transaction runs on a stream of its own (`execute` + `close` in one
  request); a statement refused with `SQLITE_BUSY` ran nothing and is sent again, with
  jittered backoff, until `busy_timeout`.
- `batch` is one request: `BEGIN IMMEDIATE`, the statements each conditioned on the one
  before, `COMMIT`, and `ROLLBACK` if the commit did not run. All or nothing; retried whole
  while busy.
- `transaction(write=True)` keeps one stream, and its baton, across requests; it begins with
  `BEGIN IMMEDIATE` (`write=False`: `BEGIN DEFERRED`), commits or rolls back, and closes the
  stream. Nested in the same task it becomes a savepoint. Other tasks using the connection
  wait until it ends, as with the local backend.

sqld itself queues a `BEGIN IMMEDIATE` behind the write lock, so concurrent read-modify-write
transactions lose no update; the pool's per-tenant `WriterGate` keeps them from queueing on the
server at all (sqld rolls back a transaction that holds the lock 5 s while others wait).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from tenant_middleware.db import _hrana_protocol as proto
from tenant_middleware.db._hrana_credentials import Credentials, TokenProvider
from tenant_middleware.db._hrana_http import HranaClient, RetryPolicy
from tenant_middleware.db._hrana_stream import Stream
from tenant_middleware.db._hrana_url import parse
from tenant_middleware.db._http import HttpxTransport, Transport
from tenant_middleware.db._http_pool import PooledTransport
from tenant_middleware.errors import DatabaseBusy, DatabaseError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType

    from tenant_middleware.db._hrana_protocol import Json
    from tenant_middleware.db.protocol import Executor, Params, ResultSet, Statement

__all__ = [
    "HranaClient",
    "HttpxTransport",
    "PooledTransport",
    "RemoteConnection",
    "RetryPolicy",
    "TokenProvider",
    "Transport",
]

T = TypeVar("T")


class RemoteConnection:
    """A `Connection` to a remote libSQL database over Hrana HTTP.

    `token` is a JWT, or an async callable returning one (asked again when the server answers
    401). `client` shares one HTTP client between connections; without it the connection
    owns one and closes it. `connect_to` ("host[:port]") sends the requests to that address
    while the URL's host still names the database (see `_hrana_url`).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | TokenProvider | None = None,
        busy_timeout: float = 5.0,
        client: HranaClient | None = None,
        connect_to: str | None = None,
        setting: str = "url",
    ) -> None:
        self._endpoint, url_token = parse(url, connect_to=connect_to, setting=setting)
        self._credentials = Credentials(token if token is not None else url_token)
        self._client = client if client is not None else HranaClient()
        self._owns_client = client is None
        self._busy_timeout = busy_timeout
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._stream: Stream | None = None  # the open transaction's
        self._depth = 0
        self._closed = False

    @classmethod
    async def open(cls, url: str, **options: Any) -> RemoteConnection:
        """Open a connection; no request is sent until the first statement."""
        return cls(url, **options)

    @property
    def url(self) -> str:
        """The database URL, without credentials."""
        return self._endpoint.url

    @property
    def closed(self) -> bool:
        """Whether `close()` has run."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError(f"connection to {self._endpoint} is closed")

    def _own_stream(self) -> Stream | None:
        # Statements on the connection inside its own transaction run in that transaction.
        if self._stream is not None and self._owner is asyncio.current_task():
            return self._stream
        return None

    async def execute(self, sql: str, params: Params = ()) -> ResultSet:
        """Run one statement with positional (`?`) or named (`:name`) parameters."""
        self._check_open()
        stmt = proto.statement(sql, params)
        stream = self._own_stream()
        if stream is not None:
            return await stream.execute(stmt)
        return await self._autocommit(
            [proto.execute(stmt), proto.CLOSE],
            lambda results: proto.stmt_result(proto.response(results[0])["result"]),
        )

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements atomically; inside an open transaction, under a savepoint."""
        self._check_open()
        stmts = proto.statements(statements)
        stream = self._own_stream()
        if stream is not None:
            return await stream.batch(stmts)
        steps = proto.atomic(stmts, begin="BEGIN IMMEDIATE", end="COMMIT", undo=("ROLLBACK",))
        return await self._autocommit(
            [proto.batch(steps), proto.CLOSE],
            lambda results: proto.atomic_results(proto.response(results[0])["result"], len(stmts)),
        )

    async def _autocommit(self, requests: list[Json], read: Callable[[list[Json]], T]) -> T:
        if self._lock.locked() and self._owner is not asyncio.current_task():
            async with self._lock:  # another task's transaction is open: wait for its end
                return await self._send_retrying(requests, read)
        return await self._send_retrying(requests, read)

    async def _send_retrying(self, requests: list[Json], read: Callable[[list[Json]], T]) -> T:
        # A busy statement ran nothing, and a busy batch was rolled back: both can go again.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_timeout
        attempt = 0
        while True:
            self._check_open()
            body = await self._client.pipeline(self._endpoint, self._credentials, None, requests)
            try:
                return read(body["results"])
            except DatabaseBusy:
                delay = self._client.retry.delay(attempt)
                if loop.time() + delay > deadline:
                    raise
                attempt += 1
            await asyncio.sleep(delay)

    def transaction(self, *, write: bool = True) -> _Transaction:
        """Open a transaction (`BEGIN IMMEDIATE` to write, `BEGIN DEFERRED` to read).

        Nested in the same task, it becomes a savepoint. Run its statements through the
        executor it yields; other tasks using this connection wait until it ends.
        """
        return _Transaction(self, write)

    async def close(self) -> None:
        """Close the connection (and its HTTP client if it owns one); idempotent."""
        if self._closed:
            return
        self._closed = True
        stream, self._stream = self._stream, None
        try:
            if stream is not None:
                await stream.abandon("the connection was closed")
        finally:
            if self._owns_client:
                await self._client.aclose()

    def __repr__(self) -> str:
        return f"<RemoteConnection url={self._endpoint.url!r} closed={self._closed}>"


class _Transaction:
    """The async context manager returned by `RemoteConnection.transaction()`."""

    __slots__ = ("_conn", "_executor", "_savepoint", "_write")

    def __init__(self, conn: RemoteConnection, write: bool) -> None:
        self._conn = conn
        self._write = write
        self._savepoint: str | None = None
        self._executor: _TransactionExecutor | None = None

    async def __aenter__(self) -> Executor:
        conn = self._conn
        conn._check_open()
        stream = conn._own_stream()
        if stream is not None:
            conn._depth += 1
            self._savepoint = f"tx_savepoint_{conn._depth}"
            try:
                await stream.savepoint(self._savepoint)
            except BaseException:
                conn._depth -= 1
                raise
        else:
            await conn._lock.acquire()
            if conn._closed:
                conn._lock.release()
                conn._check_open()
            conn._owner = asyncio.current_task()
            begin = "BEGIN IMMEDIATE" if self._write else "BEGIN DEFERRED"
            stream = conn._stream = Stream(
                conn._client,
                conn._endpoint,
                conn._credentials,
                begin=begin,
                busy_timeout=conn._busy_timeout,
            )
        self._executor = _TransactionExecutor(stream)
        return self._executor

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        assert self._executor is not None
        stream = self._executor.stream
        self._executor.active = False
        try:
            if conn.closed:
                if exc_type is None:
                    raise DatabaseError("connection closed before the transaction committed")
                return
            if self._savepoint is not None:
                if exc_type is None:
                    await stream.release(self._savepoint)
                else:
                    await stream.rollback_to(self._savepoint)
            elif exc_type is None:
                await stream.commit()
            else:
                await stream.rollback()
        finally:
            if self._savepoint is not None:
                conn._depth -= 1
            else:
                if conn._stream is stream:
                    conn._stream = None
                conn._owner = None
                conn._lock.release()


class _TransactionExecutor:
    """Runs statements on the open transaction's stream."""

    __slots__ = ("active", "stream")

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.active = True

    async def execute(self, sql: str, params: Params = ()) -> ResultSet:
        """Run one statement in the transaction."""
        if not self.active:
            raise DatabaseError("the transaction has ended")
        return await self.stream.execute(proto.statement(sql, params))

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements in the transaction, atomically under a savepoint."""
        if not self.active:
            raise DatabaseError("the transaction has ended")
        return await self.stream.batch(proto.statements(statements))
