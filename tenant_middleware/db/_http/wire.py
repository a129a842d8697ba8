"""One HTTP/1.1 connection as an asyncio protocol: a request written whole, its answer parsed
as it arrives.

The answer sqld and Turso give (a status line, headers, a `Content-Length` body) is parsed by
`_http.heads` and read here; anything else (a chunked body or one delimited by the close,
HTTP/1.0, a 1xx answer, folded or malformed headers, a head over `MAX_HEAD`) is handed whole to
h11, which parses it or says what is wrong with it. Why not h11 for every answer: it was ~40% of
the client's CPU per request against a local sqld (BENCHMARKS.md, section 11h), and a protocol
that is handed the bytes as they arrive saves the stream reader's wake-ups besides.

One exchange at a time; the pool (`_http.pooled`) decides when a connection is reused.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, NamedTuple

import h11

from tenant_middleware.db._http.heads import MAX_HEAD, STATUS_PREFIX, parse_head
from tenant_middleware.db._http.transport import HttpResponse, TransportError, TransportTimeout

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tenant_middleware.db._http.heads import Head

_MAX_DETAIL = 200


class _Request(NamedTuple):
    """What h11 needs to know of the request in flight, if it is handed the answer."""

    target: str
    host: str
    headers: Sequence[tuple[str, str]]
    body: bytes


Answer = tuple[HttpResponse, bool]  # the response, and whether the connection can be reused


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 connection; `exchange` sends a request and returns its answer."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self._request: _Request | None = None
        self._head: Head | None = None
        self._h11: h11.Connection | None = None  # parsing this answer, when it is unusual
        self._h11_answer: tuple[int, str, dict[str, str], list[bytes]] = (0, "", {}, [])
        self._closed = False
        self.idle_since = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._h11 is not None:
            self._feed_h11(data)
            return
        self._buffer += data
        if self._waiter is not None and not self._waiter.done():
            self._parse()

    def eof_received(self) -> bool:
        self._closed = True
        self._ended(None)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._ended(exc)

    # -- the pool's side ------------------------------------------------------------------
    def reusable(self, now: float, expiry: float) -> bool:
        """Whether a request may be sent on this idle connection."""
        return (
            now - self.idle_since < expiry
            and not self._closed
            and not self._buffer  # nothing unasked for has arrived
            and self._transport is not None
            and not self._transport.is_closing()
        )

    async def exchange(
        self,
        target: str,
        host: str,
        headers: Sequence[tuple[str, str]],
        request: bytes,
        body: bytes,
        *,
        deadline: float,
        time_limit: float,
    ) -> Answer:
        """Write `request` (whole), and return the answer once it is complete.

        `deadline` (loop time) bounds the wait: `TransportTimeout` after it. The other
        arguments are what `request` was made of, for h11 should it parse the answer.
        """
        transport = self._transport
        if transport is None or self._closed or transport.is_closing():
            raise TransportError("the connection was closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Answer] = loop.create_future()
        self._waiter = waiter
        self._request = _Request(target, host, headers, body)
        transport.write(request)
        # One timer on the waiter: cheaper than a cancel scope around the await.
        timer = loop.call_at(deadline, _expire, waiter, time_limit)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = self._request = self._head = self._h11 = None

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    # -- parsing --------------------------------------------------------------------------
    def _parse(self) -> None:
        buffer = self._buffer
        head = self._head
        if head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                started = buffer[: len(STATUS_PREFIX)]
                if (
                    len(buffer) > MAX_HEAD
                    or b"\n\n" in buffer
                    or not STATUS_PREFIX.startswith(started)
                ):
                    self._hand_to_h11()
                return
            head = parse_head(bytes(buffer[:end]))
            if head is None:
                self._hand_to_h11()
                return
            self._head = head
            del buffer[: end + 4]
        if len(buffer) < head.length:
            return
        body = bytes(buffer[: head.length])
        del buffer[: head.length]  # anything left over makes the connection unusable
        reusable = head.status == 200 and head.keep_alive and not buffer
        self._resolve((HttpResponse(head.status, head.headers, body, head.reason), reusable))

    def _hand_to_h11(self) -> None:
        request = self._request
        assert request is not None
        state = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        # Bring h11 to where the connection is: this request sent (those bytes are written).
        state.send(
            h11.Request(
                method="POST",
                target=request.target,
                headers=[
                    ("Host", request.host),
                    ("Content-Length", str(len(request.body))),
                    *request.headers,
                ],
            )
        )
        state.send(h11.Data(data=request.body))
        state.send(h11.EndOfMessage())
        self._h11 = state
        self._h11_answer = (0, "", {}, [])
        data = bytes(self._buffer)
        self._buffer.clear()
        self._feed_h11(data)

    def _feed_h11(self, data: bytes) -> None:
        state = self._h11
        waiter = self._waiter
        if state is None or waiter is None or waiter.done():
            self._buffer += data
            return
        status, reason, headers, chunks = self._h11_answer
        try:
            state.receive_data(data)
            while True:
                event = state.next_event()
                if event is h11.NEED_DATA:
                    self._h11_answer = (status, reason, headers, chunks)
                    return
                if isinstance(event, h11.Response):
                    status, reason = event.status_code, event.reason.decode("latin-1")
                    for name, value in event.headers:
                        key, text = name.decode("latin-1"), value.decode("latin-1")
                        headers[key] = f"{headers[key]}, {text}" if key in headers else text
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                # h11.InformationalResponse (100 Continue and the like): read on.
        except h11.ProtocolError as exc:
            waiter.set_exception(TransportError(describe(exc)))
            return
        leftover, _ = state.trailing_data
        self._buffer += leftover
        reusable = (
            status == 200
            and state.our_state is h11.DONE
            and state.their_state is h11.DONE
            and not leftover
        )
        self._resolve((HttpResponse(status, headers, b"".join(chunks), reason), reusable))

    def _resolve(self, answer: Answer) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def _ended(self, exc: Exception | None) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._h11 is not None:
            self._feed_h11(b"")  # h11 knows a body that ends with the connection
            if waiter.done():
                return
        elif self._head is None and self._buffer:
            self._hand_to_h11()  # an unfinished head: h11 says what is wrong with it
            if self._h11 is not None:
                self._feed_h11(b"")
            if waiter.done():
                return
        if self._head is not None:
            message = (
                "the server closed the connection without sending complete message body "
                f"({len(self._buffer)} of {self._head.length} bytes)"
            )
        else:
            message = "the server closed the connection without answering"
        if exc is not None:
            message = f"{message}: {describe(exc)}"
        waiter.set_exception(TransportError(message))


def _expire(waiter: asyncio.Future[Answer], time_limit: float) -> None:
    if not waiter.done():
        waiter.set_exception(TransportTimeout(f"no answer within {time_limit:g}s"))


def describe(exc: BaseException) -> str:
    """A short description of a failure (h11's messages may quote what the server sent)."""
    detail = str(exc)[:_MAX_DETAIL]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
