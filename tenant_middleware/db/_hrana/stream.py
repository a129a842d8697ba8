"""One interactive transaction's Hrana stream: its baton, kept across requests, and its end.

The stream opens with the transaction's first statement: `BEGIN IMMEDIATE` (or `DEFERRED`)
and that statement travel in one batch, the statement conditioned on the `BEGIN`, so a write
transaction holds the write lock before it reads anything and costs no extra round trip. A
`BEGIN` that meets a busy database is sent again, with jittered backoff, until the busy timeout.

Requests on a stream are strictly sequential (each needs the baton the previous one returned).
A request whose caller is cancelled keeps running, so the rollback can still use its baton:
otherwise the server would hold the transaction, and maybe the write lock, until the stream
expires.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from tenant_middleware.db._hrana import protocol as proto
from tenant_middleware.db._transactions import BATCH_SAVEPOINT
from tenant_middleware.errors import DatabaseBusy, DatabaseError, DatabaseTransactionAborted

if TYPE_CHECKING:
    from tenant_middleware.db._hrana.client import HranaClient, jitter
    from tenant_middleware.db._hrana.credentials import Credentials
    from tenant_middleware.db._hrana.protocol import Json
    from tenant_middleware.db._hrana.url import Endpoint
    from tenant_middleware.db.protocol import ResultSet

logger = logging.getLogger("tenant_middleware.db")

# What `batch()` wraps its statements in (see `proto.atomic`).
_BATCH_BEGIN = f"SAVEPOINT {BATCH_SAVEPOINT}"
_BATCH_END = f"RELEASE {BATCH_SAVEPOINT}"
_BATCH_UNDO = (f"ROLLBACK TO {BATCH_SAVEPOINT}", _BATCH_END)


class Stream:
    """The stream of one open transaction."""

    __slots__ = (
        "_before",
        "_begin",
        "_busy_timeout",
        "_client",
        "_credentials",
        "_lost",
        "_pending",
        "baton",
        "begun",
        "endpoint",
    )

    def __init__(
        self,
        client: HranaClient,
        endpoint: Endpoint,
        credentials: Credentials,
        *,
        begin: str,
        busy_timeout: float,
        before: tuple[str, ...] = (),
    ) -> None:
        self._client = client
        self.endpoint = endpoint
        self._credentials = credentials
        self._begin = begin
        self._before = before  # statements run ahead of BEGIN (pragmas it would ignore)
        self._busy_timeout = busy_timeout
        self.baton: str | None = None
        self.begun = False
        self._lost: str | None = None  # why the stream can no longer be used
        self._pending: asyncio.Task[Json] | None = None

    async def _request(self, requests: list[Json]) -> list[Json]:
        await self._settle()  # a cancelled caller's request still holds the baton
        if self._lost is not None:
            raise DatabaseTransactionAborted(f"the transaction was lost: {self._lost}")
        task = asyncio.ensure_future(
            self._client.pipeline(self.endpoint, self._credentials, self.baton, requests)
        )
        task.add_done_callback(_retrieve)
        self._pending = task
        try:
            body = await asyncio.shield(task)
        except asyncio.CancelledError:
            raise  # `_pending` stays: `rollback()` waits for the request to land
        except BaseException as exc:
            # The HTTP exchange failed, so the baton is spent or unknown.
            self._pending = None
            self._lost = _reason(exc)
            raise
        self._pending = None
        self._advance(body)
        results: list[Json] = body["results"]
        return results

    def _advance(self, body: Json) -> None:
        self.baton = body.get("baton")
        base_url = body.get("base_url")
        if isinstance(base_url, str) and base_url:
            self.endpoint = self.endpoint.moved(base_url)
        if self.baton is None:
            self._lost = "the server closed the stream"

    async def execute(self, stmt: Json) -> ResultSet:
        """Run one statement in the transaction, beginning it first if need be."""
        if self.begun:
            results = await self._request([proto.execute(stmt)])
            return proto.stmt_result(proto.first_result(results))
        result = await self._begin_with([stmt])
        outcome, failed = proto.batch_outcome(result, len(self._before) + 1)
        if failed is not None:
            raise proto.error(failed)
        if outcome is None:
            raise DatabaseError("the statement after BEGIN did not run")
        return proto.stmt_result(outcome)

    async def batch(self, stmts: list[Json]) -> list[ResultSet]:
        """Run statements atomically inside the transaction, under a savepoint."""
        if not self.begun:
            await self._begin_with([])
        steps = proto.atomic(stmts, begin=_BATCH_BEGIN, end=_BATCH_END, undo=_BATCH_UNDO)
        results = await self._request([proto.batch(steps)])
        return proto.atomic_results(proto.first_result(results), len(stmts))

    async def _begin_with(self, stmts: list[Json]) -> Json:
        """Send `BEGIN` + `stmts` as one batch, retrying while the database is busy."""
        opening = [*({"sql": sql} for sql in self._before), {"sql": self._begin}]
        request = proto.batch(proto.chained([*opening, *stmts]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_timeout
        attempt = 0
        while True:
            results = await self._request([request])
            result = proto.first_result(results)
            failures = (proto.batch_outcome(result, step)[1] for step in range(len(opening)))
            failed = next((f for f in failures if f is not None), None)
            if failed is None:
                self.begun = True
                return result
            busy = proto.error(failed)
            if not isinstance(busy, DatabaseBusy):
                raise busy
            delay = self._client.retry.delay(attempt, jitter())
            if loop.time() + delay > deadline:
                raise busy
            await asyncio.sleep(delay)
            attempt += 1

    async def savepoint(self, name: str) -> None:
        """Open a savepoint (a nested transaction)."""
        await self.execute({"sql": f"SAVEPOINT {name}"})

    async def release(self, name: str) -> None:
        """Keep a savepoint's changes."""
        await self.execute({"sql": f"RELEASE {name}"})

    async def rollback_to(self, name: str) -> None:
        """Undo a savepoint's changes; a failure loses the whole transaction."""
        await self._settle()
        if self._lost is not None:
            return
        try:
            results = await self._request(
                [
                    proto.execute({"sql": f"ROLLBACK TO {name}"}),
                    proto.execute({"sql": f"RELEASE {name}"}),
                ]
            )
            for result in results:
                proto.response(result)
        except DatabaseError as exc:
            self._lost = f"rolling back to a savepoint failed: {exc}"

    async def commit(self) -> None:
        """Commit and close the stream (closing rolls back whatever did not commit)."""
        if not self.begun and self._lost is None:
            # Nothing ran, or only a BEGIN that failed: there is nothing to commit.
            if self.baton is not None:
                await self._request([proto.CLOSE])
                self.baton = None
            return
        results = await self._request([proto.execute({"sql": "COMMIT"}), proto.CLOSE])
        self.baton = None
        proto.response(results[0])

    async def rollback(self) -> None:
        """Roll back and close the stream; the server drops it anyway if this cannot be sent."""
        await self._settle()
        if self._lost is not None or self.baton is None:
            return
        try:
            await self._request([proto.execute({"sql": "ROLLBACK"}), proto.CLOSE])
        except DatabaseError as exc:
            logger.warning(
                "rolling back a remote transaction failed (%s); the server discards it when "
                "its stream expires",
                type(exc).__name__,
            )
        self.baton = None

    async def abandon(self, reason: str) -> None:
        """Roll back, and refuse any further statement with `reason`."""
        try:
            await self.rollback()
        finally:
            self._lost = reason

    async def _settle(self) -> None:
        # A request whose caller was cancelled may still return the baton needed to roll back.
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            self._advance(await asyncio.shield(pending))
        except BaseException as exc:
            self._lost = _reason(exc)
            if isinstance(exc, asyncio.CancelledError) and not pending.cancelled():
                raise


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _retrieve(task: asyncio.Task[Json]) -> None:
    # The request's error reaches its caller through the shield; if that caller was cancelled,
    # mark the error seen so that asyncio does not report it at garbage collection.
    if not task.cancelled():
        task.exception()
