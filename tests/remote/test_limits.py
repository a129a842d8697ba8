"""Overload (429), busy, in-flight caps and timeouts: bounded retries, then typed errors."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tenant_middleware._retry import Backoff
from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.errors import (
    DatabaseAuthError,
    DatabaseBusy,
    DatabaseError,
    DatabaseNotFound,
)
from tests.remote.conftest import OpenRemote, new_namespace_name, run_in
from tests.remote.transports import Recording, Scripted, answer
from tests.sqld import SqldServer, free_port, running_sqld

FAST = Backoff(attempts=30, base=0.01, cap=0.05, max_retry_after=0.05)
OVERLOADED = {"error": "Too many concurrent requests"}


async def test_429_is_retried_after_retry_after(open_remote: OpenRemote) -> None:
    transport = Scripted(
        answer(429, OVERLOADED, {"Retry-After": "1"}),
        answer(429, {"error": "Timed out while opening database connection"}),
    )
    async with HranaClient(
        transport=transport, retry=Backoff(cap=2.0, max_retry_after=2.0, attempts=8)
    ) as client:
        conn = await open_remote(client_=client)
        started = time.monotonic()
        assert (await conn.execute("SELECT 1")).scalar() == 1
        assert time.monotonic() - started >= 1.0
    assert len(transport.requests) == 3


async def test_429_retries_are_bounded(open_remote: OpenRemote) -> None:
    transport = Scripted(*[answer(429, OVERLOADED)] * 5)
    policy = Backoff(attempts=3, base=0.001, cap=0.002, max_retry_after=0.002)
    async with HranaClient(transport=transport, retry=policy) as client:
        conn = await open_remote(client_=client)
        with pytest.raises(DatabaseBusy, match="429 after 3 attempts"):
            await conn.execute("SELECT 1")
    assert len(transport.requests) == 3


async def test_503_is_retried_like_429_and_bounded(open_remote: OpenRemote) -> None:
    unavailable = {"error": "Namespace store has shutdown"}
    transport = Scripted(answer(503, unavailable), answer(503, "no healthy upstream"))
    async with HranaClient(transport=transport, retry=FAST) as client:
        conn = await open_remote(client_=client)
        assert (await conn.execute("SELECT 1")).scalar() == 1
        assert len(transport.requests) == 3
        transport.answers.extend([answer(503, unavailable)] * 3)
        policy = Backoff(attempts=3, base=0.001, cap=0.002, max_retry_after=0.002)
        async with HranaClient(transport=transport, retry=policy) as strict:
            conn = await open_remote(client_=strict)
            with pytest.raises(DatabaseError, match="HTTP 503 after 3 attempts"):
                await conn.execute("SELECT 1")


async def test_a_retry_after_beyond_the_policy_is_not_waited_for(open_remote: OpenRemote) -> None:
    transport = Scripted(answer(429, OVERLOADED, {"Retry-After": "120"}))
    async with HranaClient(transport=transport) as client:
        conn = await open_remote(client_=client)
        with pytest.raises(DatabaseBusy):
            await conn.execute("SELECT 1")
    assert len(transport.requests) == 1


async def test_429_inside_a_transaction_is_not_repeated(open_remote: OpenRemote) -> None:
    # The request may have run on the stream; only the caller can retry the transaction.
    transport = Scripted()
    async with HranaClient(transport=transport) as client:
        conn = await open_remote(client_=client)
        steps = ("SELECT 1", lambda: transport.answers.append(answer(429, OVERLOADED)), "SELECT 2")
        with pytest.raises(DatabaseBusy):
            await run_in(conn.transaction(write=False), *steps)
        sent = [r for r in transport.requests if b"SELECT 2" in r.content]
        assert len(sent) == 1  # answered 429, and not repeated


@pytest.fixture(scope="module")
def narrow_sqld(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqldServer]:
    """An sqld with one database connection and room for one request waiting for it."""
    directory = tmp_path_factory.mktemp("narrow-sqld")
    with running_sqld(
        directory, "--max-concurrent-connections", "1", "--max-concurrent-requests", "2"
    ) as server:
        yield server


async def test_a_real_429_is_backed_off_until_the_server_has_room(
    narrow_sqld: SqldServer,
) -> None:
    namespace = new_namespace_name()
    narrow_sqld.create_namespace(namespace)
    transport = Recording()
    options: dict[str, Any] = {"token": narrow_sqld.token(), "connect_to": narrow_sqld.connect_to}
    async with (
        HranaClient(retry=FAST) as client,
        HranaClient(retry=FAST, transport=transport) as waiting_client,
    ):
        holder = RemoteConnection(narrow_sqld.url(namespace), client=client, **options)
        waiter = RemoteConnection(narrow_sqld.url(namespace), client=waiting_client, **options)
        async with holder.transaction() as tx:
            await tx.execute("CREATE TABLE t (x)")  # holds the server's only connection
            # One request waits on the server for the connection; the others get 429.
            pending = [asyncio.create_task(waiter.execute("SELECT ?", (i,))) for i in range(3)]
            await asyncio.sleep(0.3)
            assert not any(task.done() for task in pending)
        assert [(await task).scalar() for task in pending] == [0, 1, 2]
    assert 429 in transport.statuses
    assert transport.statuses[-1] == 200


async def test_in_flight_requests_per_database_are_capped(open_remote: OpenRemote) -> None:
    transport = Recording()
    transport.delay = 0.02
    async with HranaClient(transport=transport, max_in_flight=3) as client:
        conn = await open_remote(client_=client)
        results = await asyncio.gather(*(conn.execute("SELECT ?", (i,)) for i in range(20)))
    assert [r.scalar() for r in results] == list(range(20))
    assert transport.most_in_flight == 3


async def test_a_refused_request_does_not_break_the_next_one(
    open_remote: OpenRemote,
) -> None:
    # sqld may close a connection after refusing a request it did not read; reusing that
    # connection failed about 1 request in 100 with "Server disconnected" before the client
    # learnt to drop it.
    async with HranaClient() as client:
        bad_token = await open_remote(client_=client, token="not.a.jwt")
        missing = await open_remote(new_namespace_name(), client_=client, token=None)
        for _ in range(150):
            with pytest.raises(DatabaseAuthError):
                await bad_token.execute("SELECT 1")
            with pytest.raises((DatabaseNotFound, DatabaseAuthError)):
                await missing.execute("SELECT 1")
        good = await open_remote(client_=client)
        assert (await good.execute("SELECT 1")).scalar() == 1


async def test_busy_autocommit_statements_are_retried(open_remote: OpenRemote) -> None:
    busy = {
        "baton": None,
        "base_url": None,
        "results": [
            {"type": "error", "error": {"message": "database is locked", "code": "SQLITE_BUSY"}},
            {"type": "ok", "response": {"type": "close"}},
        ],
    }
    transport = Scripted(answer(200, busy), answer(200, busy))
    async with HranaClient(transport=transport, retry=FAST) as client:
        conn = await open_remote(client_=client)
        assert (await conn.execute("SELECT 1")).scalar() == 1
        assert len(transport.requests) == 3
        transport.answers.extend([answer(200, busy)] * 100)
        conn_short = await open_remote(client_=client, busy_timeout=0.1)
        with pytest.raises(DatabaseBusy, match="SQLITE_BUSY"):
            await conn_short.execute("SELECT 1")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


async def test_a_request_that_times_out_is_a_database_error(
    open_remote: OpenRemote, silent_port: int
) -> None:
    async with HranaClient(timeout=0.2) as client:
        conn = await open_remote(client_=client, connect_to=f"127.0.0.1:{silent_port}")
        started = time.monotonic()
        with pytest.raises(DatabaseError, match=r"no answer within 0\.2s"):
            await conn.execute("SELECT 1")
        assert time.monotonic() - started < 2


async def test_an_unreachable_server_is_a_database_error(open_remote: OpenRemote) -> None:
    conn = await open_remote(connect_to=f"127.0.0.1:{free_port()}")
    with pytest.raises(DatabaseError, match="cannot connect: ConnectionRefusedError"):
        await conn.execute("SELECT 1")
