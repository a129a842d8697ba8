"""Server refusals become the library's typed errors: auth, not found, blocked, lost streams."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tenant_middleware.db._hrana.connection import HranaClient
from tenant_middleware.errors import (
    DatabaseAuthError,
    DatabaseBlocked,
    DatabaseError,
    DatabaseNotFound,
    DatabaseTransactionAborted,
)
from tests.remote.conftest import OpenRemote, new_namespace_name, run_in
from tests.remote.transports import Recording, Scripted, answer
from tests.sqld import SqldServer


async def test_a_missing_namespace_is_not_found(open_remote: OpenRemote) -> None:
    conn = await open_remote(new_namespace_name())
    with pytest.raises(DatabaseNotFound, match="404") as info:
        await conn.execute("SELECT 1")
    assert isinstance(info.value, LookupError)


async def test_a_bad_token_is_an_auth_error(open_remote: OpenRemote) -> None:
    conn = await open_remote(token="not.a.jwt")
    with pytest.raises(DatabaseAuthError, match="refused the token") as info:
        await conn.execute("SELECT 1")
    assert info.value.upstream_status == 401
    no_token = await open_remote(token=None)
    with pytest.raises(DatabaseAuthError):
        await no_token.execute("SELECT 1")


async def test_a_token_signed_by_another_key_is_refused(open_remote: OpenRemote) -> None:
    forged = jwt.encode({}, Ed25519PrivateKey.generate(), algorithm="EdDSA")
    conn = await open_remote(token=forged)
    with pytest.raises(DatabaseAuthError):
        await conn.execute("SELECT 1")


async def test_a_read_only_token_reads_and_cannot_write(
    open_remote: OpenRemote, sqld: SqldServer
) -> None:
    writer = await open_remote()
    await writer.execute("CREATE TABLE t (x)")
    reader = await open_remote(token=sqld.token(read_only=True))
    assert (await reader.execute("SELECT count(*) FROM t")).scalar() == 0
    with pytest.raises(DatabaseAuthError, match="does not allow") as info:
        await reader.execute("INSERT INTO t VALUES (1)")
    assert info.value.upstream_status == 403
    with pytest.raises(DatabaseAuthError):
        await reader.batch(["INSERT INTO t VALUES (1)"])


async def test_the_token_provider_is_asked_again_once_on_401(
    open_remote: OpenRemote, sqld: SqldServer
) -> None:
    tokens = iter(["expired.token.value", sqld.token(), "never.used.token"])
    calls = 0

    async def provider() -> str:
        nonlocal calls
        calls += 1
        return next(tokens)

    conn = await open_remote(token=provider)
    assert (await conn.execute("SELECT 1")).scalar() == 1
    assert calls == 2
    assert (await conn.execute("SELECT 2")).scalar() == 2
    assert calls == 2  # the good token is kept


async def test_a_refused_refresh_is_retried_only_once(
    open_remote: OpenRemote, sqld: SqldServer
) -> None:
    calls = 0

    async def provider() -> str:
        nonlocal calls
        calls += 1
        return f"bad.token.{calls}"

    transport = Recording()
    async with HranaClient(transport=transport) as client:
        conn = await open_remote(token=provider, client_=client)
        with pytest.raises(DatabaseAuthError):
            await conn.execute("SELECT 1")
    assert (calls, len(transport.requests)) == (2, 2)


async def test_a_failing_token_provider_is_a_database_error(open_remote: OpenRemote) -> None:
    async def provider() -> str:
        raise OSError("vault unreachable")

    conn = await open_remote(token=provider)
    with pytest.raises(DatabaseError, match="token provider failed: OSError"):
        await conn.execute("SELECT 1")


async def test_blocked_writes_and_reads_are_typed_errors(
    open_remote: OpenRemote, sqld: SqldServer, namespace: str
) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE t (x)")
    sqld.block(namespace, writes=True)
    with pytest.raises(DatabaseBlocked, match="BLOCKED"):
        await conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(DatabaseBlocked):
        await conn.batch(["INSERT INTO t VALUES (1)"])
    with pytest.raises(DatabaseBlocked):
        async with conn.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (1)")
    assert (await conn.execute("SELECT count(*) FROM t")).scalar() == 0
    sqld.block(namespace, reads=True, writes=True)
    with pytest.raises(DatabaseBlocked):
        await conn.execute("SELECT count(*) FROM t")
    sqld.block(namespace)
    await conn.execute("INSERT INTO t VALUES (1)")
    assert (await conn.execute("SELECT count(*) FROM t")).scalar() == 1


async def test_an_expired_stream_aborts_the_transaction(open_remote: OpenRemote) -> None:
    # sqld expires a stream after ~10 s idle; the answer is scripted here to save the wait.
    expired = {"message": "The stream has expired due to inactivity", "code": "STREAM_EXPIRED"}
    transport = Scripted()
    async with HranaClient(transport=transport) as client:
        conn = await open_remote(client_=client)
        await conn.execute("CREATE TABLE t (x)")
        # A read transaction: the real stream left behind holds no write lock.
        steps = (
            "SELECT count(*) FROM t",
            lambda: transport.answers.append(answer(400, expired)),
            "SELECT count(*) FROM t",
        )
        with pytest.raises(DatabaseTransactionAborted, match="STREAM_EXPIRED"):
            await run_in(conn.transaction(write=False), *steps)
        # The next transaction gets a fresh stream.
        async with conn.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (3)")
        assert (await conn.execute("SELECT x FROM t")).rows == [(3,)]


async def test_a_transaction_holding_the_lock_too_long_is_aborted(
    open_remote: OpenRemote,
) -> None:
    # sqld rolls back a transaction that holds the write lock 5 s while another writer waits.
    holder = await open_remote()
    waiter = await open_remote()
    await holder.execute("CREATE TABLE t (x)")
    steps = (
        "INSERT INTO t VALUES ('holder')",
        lambda: waiter.execute("INSERT INTO t VALUES ('waiter')"),
    )
    with pytest.raises(DatabaseTransactionAborted, match="TRANSACTION_TIMEOUT"):
        await run_in(holder.transaction(), *steps)
    assert (await waiter.execute("SELECT x FROM t")).rows == [("waiter",)]
