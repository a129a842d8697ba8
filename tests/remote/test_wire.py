"""The default transport's own answer parser (`_http.wire`) against real loopback servers: the
answers it parses itself, the ones it hands to h11, and the broken ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tenant_middleware.db import PooledTransport
from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.errors import DatabaseError
from tests.remote.relays import answering, keeping, pipeline_answer

SELECT_ANSWER = pipeline_answer("ok")


def answer(head: bytes, body: bytes = SELECT_ANSWER) -> Callable[[bytes], bytes]:
    """An answer whose head lines are `head` (each ending in CRLF), then `body`."""
    return lambda _: b"HTTP/1.1 200 OK\r\n" + head + b"\r\n" + body


def connect(port: int, client: HranaClient) -> RemoteConnection:
    return RemoteConnection("http://db.example", client=client, connect_to=f"127.0.0.1:{port}")


async def test_sqlds_answer_is_kept_alive_with_its_headers_and_binary_values() -> None:
    # sqld's `server-timing` header carries a UTF-8 "µs": obs-text, valid in a header.
    head = (
        b"content-type: application/json\r\ncontent-length: %d\r\n"
        b"server-timing: query_total;dur=1.5ms,exec;dur=227.0\xc2\xb5s,\r\n"
        b"vary: origin\r\nvary: access-control-request-method\r\n" % len(SELECT_ANSWER)
    )
    transport = PooledTransport()
    async with keeping(answer(head)) as server, HranaClient(transport=transport) as client:
        conn = connect(server.port, client)
        for _ in range(3):
            assert (await conn.execute("SELECT v")).scalar() == "ok"
        assert server.accepted == 1
        assert transport.idle_connections == 1


async def test_connection_close_in_the_answer_is_honoured() -> None:
    head = b"Content-Length: %d\r\nConnection: close\r\n" % len(SELECT_ANSWER)
    transport = PooledTransport()
    async with keeping(answer(head)) as server, HranaClient(transport=transport) as client:
        conn = connect(server.port, client)
        for _ in range(2):
            assert (await conn.execute("SELECT v")).scalar() == "ok"
        assert transport.idle_connections == 0
    assert server.accepted == 2


async def test_bytes_after_the_answer_make_the_connection_unusable() -> None:
    head = b"Content-Length: %d\r\n" % len(SELECT_ANSWER)
    async with (
        keeping(answer(head, SELECT_ANSWER + b"HTTP/1.1 200 OK\r\n")) as server,
        HranaClient() as client,
    ):
        conn = connect(server.port, client)
        for _ in range(2):
            assert (await conn.execute("SELECT v")).scalar() == "ok"
    assert server.accepted == 2


@pytest.mark.parametrize(
    "raw",
    [
        # A folded header (obs-fold): h11 reads it.
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Long: a\r\n b\r\n\r\n%s",
        # Bare LF line ends.
        b"HTTP/1.1 200 OK\nContent-Length: %d\n\n%s",
        # HTTP/1.0 with a length.
        b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s",
        # A 100 Continue first.
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s",
    ],
    ids=["folded", "lf-only", "http-1.0", "continue"],
)
async def test_unusual_answers_go_to_h11_and_are_read(raw: bytes) -> None:
    whole = raw % (len(SELECT_ANSWER), SELECT_ANSWER)
    async with answering(lambda _: whole) as port, HranaClient() as client:
        assert (await connect(port, client).execute("SELECT v")).scalar() == "ok"


async def test_a_body_delimited_by_the_close_is_read_whole() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + SELECT_ANSWER
    async with answering(lambda _: raw) as port, HranaClient() as client:
        assert (await connect(port, client).execute("SELECT v")).scalar() == "ok"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9", "closed connection"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 90\r\n\r\n{", "1 of 90 bytes"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
            "conflicting Content-Length",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n{}", "bad Content-Length"),
        (b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}", "illegal status line"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000, "buffer too long"),
        (b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\n{}", "illegal header line"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            "incomplete chunked read",
        ),
    ],
    ids=[
        "head-cut",
        "body-cut",
        "two-lengths",
        "bad-length",
        "bad-status",
        "head-too-long",
        "bad-header-name",
        "chunk-cut",
    ],
)
async def test_truncated_and_malformed_answers_fail_clearly(raw: bytes, reason: str) -> None:
    async with answering(lambda _: raw) as port, HranaClient() as client:
        with pytest.raises(DatabaseError, match=r"http://db\.example") as failed:
            await connect(port, client).execute("SELECT 1")
    assert reason in str(failed.value)
    assert len(str(failed.value)) < 400
