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

from tenant_middleware.db._hrana import protocol as proto
from tenant_middleware.db._hrana.client import HranaClient, jitter
from tenant_middleware.db._hrana.credentials import Credentials, TokenProvider
from tenant_middleware.db._hrana.stream import Stream
from tenant_middleware.db._hrana.url import parse
from tenant_middleware.db._http.pooled import PooledTransport
from tenant_middleware.db._http.transport import HttpxTransport, Transport
from tenant_middleware.db._transactions import TransactionalConnection, begin_statement
from tenant_middleware.errors import DatabaseBusy, DatabaseError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tenant_middleware.db._hrana.protocol import Json
    from tenant_middleware.db.protocol import Params, ResultSet, Statement

__all__ = [
    "HranaClient",
    "HttpxTransport",
    "PooledTransport",
    "RemoteConnection",
    "TokenProvider",
    "Transport",
]

T = TypeVar("T")


class RemoteConnection(TransactionalConnection):
    """A `Connection` to a remote libSQL database over Hrana HTTP.

    `token` is a JWT, or an async callable returning one (asked again when the server answers
    401). `client` shares one HTTP client between connections; without it the connection
    owns one and closes it. `connect_to` ("host[:port]") sends the requests to that address
    while the URL's host still names the database (see `_hrana.url`).
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
        super().__init__()
        self._endpoint, url_token = parse(url, connect_to=connect_to, setting=setting)
        self._credentials = Credentials(token if token is not None else url_token)
        self._client = client if client is not None else HranaClient()
        self._owns_client = client is None
        self._busy_timeout = busy_timeout
        self._stream: Stream | None = None  # the open transaction's
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
        if self._stream is not None and self._in_own_transaction():
            return self._stream
        return None

    async def execute(self, sql: str, params: Params = ()) -> ResultSet:
        """Run one statement with positional (`?`) or named (`:name`) parameters."""
        self._check_open()
        stmt = proto.statement(sql, params)
        stream = self._own_stream()
        if stream is not None:
            return await stream.execute(stmt)
        return await self._when_free(
            self._send_retrying,
            [proto.execute(stmt), proto.CLOSE],
            lambda results: proto.stmt_result(proto.first_result(results)),
        )

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        """Run statements atomically; inside an open transaction, under a savepoint."""
        self._check_open()
        stmts = proto.statements(statements)
        stream = self._own_stream()
        if stream is not None:
            return await stream.batch(stmts)
        steps = proto.atomic(stmts, begin="BEGIN IMMEDIATE", end="COMMIT", undo=("ROLLBACK",))
        return await self._when_free(
            self._send_retrying,
            [proto.batch(steps), proto.CLOSE],
            lambda results: proto.atomic_results(proto.first_result(results), len(stmts)),
        )

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
                delay = self._client.retry.delay(attempt, jitter())
                if loop.time() + delay > deadline:
                    raise
                attempt += 1
            await asyncio.sleep(delay)

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

    # -- transactions (the rules are in `_transactions`) ----------------------------------
    async def _begin(self, write: bool, foreign_keys: bool = True) -> None:
        # No request yet: the BEGIN rides with the transaction's first statement. The pragma
        # goes before it on the same stream; the next stream enforces foreign keys again.
        self._stream = Stream(
            self._client,
            self._endpoint,
            self._credentials,
            begin=begin_statement(write),
            busy_timeout=self._busy_timeout,
            before=() if foreign_keys else ("PRAGMA foreign_keys = OFF",),
        )

    def _open_stream(self) -> Stream:
        if self._stream is None:
            self._check_open()
            raise DatabaseError("the transaction has ended")
        return self._stream

    async def _finish(self, commit: bool) -> None:
        stream = self._open_stream()
        await (stream.commit() if commit else stream.rollback())

    async def _savepoint(self, name: str) -> None:
        await self._open_stream().savepoint(name)

    async def _end_savepoint(self, name: str, commit: bool) -> None:
        stream = self._open_stream()
        await (stream.release(name) if commit else stream.rollback_to(name))

    def _transaction_ended(self) -> None:
        self._stream = None

    async def _execute_in_transaction(self, sql: str, params: Params) -> ResultSet:
        return await self._open_stream().execute(proto.statement(sql, params))

    async def _batch_in_transaction(self, statements: Sequence[Statement]) -> list[ResultSet]:
        return await self._open_stream().batch(proto.statements(statements))

    def __repr__(self) -> str:
        return f"<RemoteConnection url={self._endpoint.url!r} closed={self._closed}>"
