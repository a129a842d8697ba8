"""The default transport (HTTP/1.1 on asyncio and h11) against the real sqld, through a relay
that counts connections and can drop them, over TLS too; and against raw answers no real
server gives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tenant_middleware.db import HttpxTransport, PooledTransport
from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.errors import DatabaseAuthError, DatabaseError
from tests.remote.relays import Relay, answering, certificate_for, pipeline_answer, relay_to
from tests.sqld import HOST_SUFFIX, SqldServer


@pytest.fixture
async def relay(sqld: SqldServer) -> AsyncIterator[Relay]:
    async with relay_to(sqld.http_port) as relay:
        yield relay


def through(
    relay: Relay, sqld: SqldServer, namespace: str, client: HranaClient, **options: Any
) -> RemoteConnection:
    options.setdefault("token", sqld.token())
    return RemoteConnection(
        sqld.url(namespace), client=client, connect_to=f"127.0.0.1:{relay.port}", **options
    )


async def test_sequential_requests_share_one_kept_alive_connection(
    sqld: SqldServer, namespace: str, relay: Relay
) -> None:
    async with HranaClient() as client:
        conn = through(relay, sqld, namespace, client)
        for n in range(20):
            assert (await conn.execute("SELECT ?", (n,))).scalar() == n
    assert relay.accepted == 1


async def test_concurrent_requests_open_at_most_max_connections(
    sqld: SqldServer, namespace: str, relay: Relay
) -> None:
    transport = PooledTransport(max_connections=2)
    async with HranaClient(transport=transport) as client:
        conns = [through(relay, sqld, namespace, client) for _ in range(10)]
        results = await asyncio.gather(*(c.execute("SELECT ?", (i,)) for i, c in enumerate(conns)))
        assert [r.scalar() for r in results] == list(range(10))
        assert relay.accepted <= 2
        assert transport.idle_connections == relay.accepted


async def test_connections_the_server_closed_are_not_reused(
    sqld: SqldServer, namespace: str, relay: Relay
) -> None:
    async with HranaClient() as client:
        conn = through(relay, sqld, namespace, client)
        assert (await conn.execute("SELECT 1")).scalar() == 1
        relay.drop_all()
        await relay.wait_closed()
        await asyncio.sleep(0.01)  # the client's loop reads the EOF
        assert (await conn.execute("SELECT 2")).scalar() == 2
    assert relay.accepted == 2


async def test_idle_connections_expire(sqld: SqldServer, namespace: str, relay: Relay) -> None:
    async with HranaClient(transport=PooledTransport(keepalive_expiry=0)) as client:
        conn = through(relay, sqld, namespace, client)
        for _ in range(3):
            await conn.execute("SELECT 1")
    assert relay.accepted == 3


async def test_a_refused_request_does_not_leave_its_connection_for_the_next(
    sqld: SqldServer, namespace: str, relay: Relay
) -> None:
    async with HranaClient() as client:
        refused = through(relay, sqld, namespace, client, token="not-a-jwt")
        with pytest.raises(DatabaseAuthError):
            await refused.execute("SELECT 1")
        good = through(relay, sqld, namespace, client)
        assert (await good.execute("SELECT 1")).scalar() == 1
    assert relay.accepted == 2


async def test_a_cancelled_request_closes_its_connection(
    sqld: SqldServer, namespace: str, relay: Relay
) -> None:
    transport = PooledTransport()
    async with HranaClient(transport=transport) as client:
        conn = through(relay, sqld, namespace, client)
        await conn.execute("CREATE TABLE t (x)")
        task = asyncio.create_task(
            conn.execute(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                "SELECT x + 1 FROM c LIMIT 3000000) "
                "SELECT sum(x) FROM c"
            )
        )
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert transport.idle_connections == 0
        assert (await conn.execute("SELECT 7")).scalar() == 7
    assert relay.accepted == 2


async def test_after_aclose_requests_fail_clearly(
    sqld: SqldServer, namespace: str, relay: Relay
) -> None:
    transport = PooledTransport()
    client = HranaClient(transport=transport)
    conn = through(relay, sqld, namespace, client)
    await conn.execute("SELECT 1")
    await client.aclose()
    await relay.wait_closed()
    assert transport.closed
    assert transport.idle_connections == 0
    with pytest.raises(DatabaseError, match="closed"):
        await conn.execute("SELECT 1")


async def test_tls_names_the_database_host_while_connecting_elsewhere(
    sqld: SqldServer, namespace: str, tmp_path: Path
) -> None:
    certificate = certificate_for(tmp_path, f"*.{HOST_SUFFIX}")
    async with relay_to(sqld.http_port, tls=certificate.server()) as relay:
        url = f"https://{namespace}.{HOST_SUFFIX}:{relay.port}"
        options: dict[str, Any] = {"token": sqld.token(), "connect_to": f"127.0.0.1:{relay.port}"}
        async with HranaClient(verify=certificate.trusting()) as trusting:
            conn = RemoteConnection(url, client=trusting, **options)
            assert (await conn.execute("SELECT 'over tls'")).scalar() == "over tls"
            assert (await conn.execute("SELECT 2")).scalar() == 2
        assert relay.accepted == 1
        async with HranaClient() as default_trust:
            stranger = RemoteConnection(url, client=default_trust, **options)
            with pytest.raises(DatabaseError, match="cannot connect: SSLCertVerificationError"):
                await stranger.execute("SELECT 1")
        async with HranaClient(verify=certificate.trusting()) as trusting:
            wrong_name = RemoteConnection(
                f"https://db.elsewhere.example:{relay.port}", client=trusting, **options
            )
            with pytest.raises(DatabaseError, match="cannot connect: SSLCertVerificationError"):
                await wrong_name.execute("SELECT 1")


async def test_a_chunked_answer_is_read_whole() -> None:
    body = pipeline_answer("chunked")
    chunks = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n"
        for part in (body[:10], body[10:50], body[50:])
    )
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    async with answering(lambda _: raw) as port, HranaClient() as client:
        conn = RemoteConnection("http://db.example", client=client, connect_to=f"127.0.0.1:{port}")
        assert (await conn.execute("SELECT v")).scalar() == "chunked"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"garbage that is not HTTP" * 100 + b"\r\n\r\n", "illegal status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n[", "without sending complete"),
        (b"", "closed the connection without answering"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", "malformed pipeline response"),
    ],
    ids=["not-http", "cut-short", "closed-at-once", "not-json"],
)
async def test_broken_answers_are_database_errors(raw: bytes, reason: str) -> None:
    async with answering(lambda _: raw) as port, HranaClient() as client:
        conn = RemoteConnection("http://db.example", client=client, connect_to=f"127.0.0.1:{port}")
        with pytest.raises(DatabaseError, match=r"http://db\.example") as failed:
            await conn.execute("SELECT 1")
    assert reason in str(failed.value)
    assert len(str(failed.value)) < 400


def recording_ok(seen: list[bytes]) -> Callable[[bytes], bytes]:
    """An `answering` server's answer: each request kept in `seen`, answered 200 "ok"."""

    def respond(request: bytes) -> bytes:
        seen.append(request)
        body = pipeline_answer("ok")
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    return respond


async def test_the_request_names_the_database_in_host_and_sends_the_token() -> None:
    seen: list[bytes] = []
    async with answering(recording_ok(seen)) as port, HranaClient() as client:
        conn = RemoteConnection(
            "http://tenant-a.db.internal:8080",
            client=client,
            token="the-token",
            connect_to=f"127.0.0.1:{port}",
        )
        assert (await conn.execute("SELECT v")).scalar() == "ok"
    head = seen[0].split(b"\r\n\r\n")[0].decode().lower().split("\r\n")
    assert head[0] == "post /v3/pipeline http/1.1"
    assert "host: tenant-a.db.internal:8080" in head
    assert "authorization: bearer the-token" in head


def test_an_http_proxy_in_the_environment_selects_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(HranaClient().transport, PooledTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert isinstance(HranaClient().transport, HttpxTransport)
    assert isinstance(HranaClient(trust_env=False).transport, PooledTransport)


async def test_expired_connections_of_other_hosts_make_room_for_new_ones(
    sqld: SqldServer, namespace: str
) -> None:
    # A host per tenant (Turso): the idle connections of hosts no longer asked for must not
    # keep every other host from keeping its own.
    transport = PooledTransport(max_idle=2, keepalive_expiry=0.05)
    async with (
        relay_to(sqld.http_port) as a,
        relay_to(sqld.http_port) as b,
        relay_to(sqld.http_port) as c,
        HranaClient(transport=transport) as client,
    ):
        for relay in (a, b):
            assert (await through(relay, sqld, namespace, client).execute("SELECT 1")).scalar()
        assert transport.idle_connections == 2
        await asyncio.sleep(0.1)  # both expire
        third = through(c, sqld, namespace, client)
        for n in range(5):
            assert (await third.execute("SELECT ?", (n,))).scalar() == n
        assert c.accepted == 1  # kept alive, reused
        await a.wait_closed()
        await b.wait_closed()
        assert transport.idle_connections == 1


async def test_the_longest_idle_connection_goes_when_the_pool_is_full(
    sqld: SqldServer, namespace: str
) -> None:
    transport = PooledTransport(max_idle=1)
    async with (
        relay_to(sqld.http_port) as a,
        relay_to(sqld.http_port) as b,
        HranaClient(transport=transport) as client,
    ):
        await through(a, sqld, namespace, client).execute("SELECT 1")
        await through(b, sqld, namespace, client).execute("SELECT 1")
        await a.wait_closed()  # made room for b's
        assert (transport.idle_connections, b.open) == (1, 1)


async def test_a_token_is_sent_without_the_newline_of_the_file_it_came_from() -> None:
    seen: list[bytes] = []
    async with answering(recording_ok(seen)) as port, HranaClient() as client:
        conn = RemoteConnection(
            "http://db.example", client=client, token="tok.en\n", connect_to=f"127.0.0.1:{port}"
        )
        assert (await conn.execute("SELECT v")).scalar() == "ok"
    assert b"authorization: Bearer tok.en\r\n" in seen[0].lower().replace(b"bearer", b"Bearer")


async def test_a_token_that_cannot_be_a_header_fails_without_being_quoted() -> None:
    secret = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0\nc2VjcmV0c2lnbmF0dXJl"

    async def provide() -> str:
        return secret

    async with HranaClient() as client:
        conn = RemoteConnection(
            "http://db.example", client=client, token=provide, connect_to="127.0.0.1:9"
        )
        with pytest.raises(DatabaseError, match="not valid HTTP") as failed:
            await conn.execute("SELECT 1")
    assert "c2VjcmV0" not in str(failed.value)
    assert failed.value.__cause__ is None or "c2VjcmV0" not in str(failed.value.__cause__)
