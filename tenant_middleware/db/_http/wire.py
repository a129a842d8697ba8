"""One HTTP/1.1 connection as an asyncio protocol: a request written whole, its answer parsed
as it arrives.

The answer sqld and Turso give (a status line, headers, a `Content-Length` body) is parsed
here; anything else (a chunked body or one delimited by the close, HTTP/1.0, a 1xx answer,
folded or malformed headers, a head over `MAX_HEAD`) is handed whole to h11, which parses it or
says what is wrong with it. Why not h11 for every answer: it was ~40% of the client's CPU per
request against a local sqld (BENCHMARKS.md, section 11h), and a protocol that is handed the
bytes as they arrive saves the stream reader's wake-ups besides.

One exchange at a time; the pool (`_http.pooled`) decides when a connection is reused.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

import h11

from tenant_middleware.db._http.transport import HttpResponse, TransportError, TransportTimeout

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

MAX_HEAD = 65536  # the longest answer head read before giving up
_MAX_DETAIL = 200

# RFC 9110 tokens and field values as h11 checks them: visible ASCII with inner spaces and
# tabs in what we send; answers may carry obs-text too (sqld's `server-timing` has a UTF-8 "µs").
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")
_ANSWER_CHAR = rb"[\x21-\x7e\x80-\xff]"
_ANSWER_LINE = rb"%s:[ \t]*(?:%s+(?:[ \t]+%s+)*)?[ \t]*" % (
    _TOKEN.pattern,
    _ANSWER_CHAR,
    _ANSWER_CHAR,
)
# An answer's header lines (after the status line), checked in one match.
_HEADER_BLOCK = re.compile(rb"(?:%s(?:\r\n%s)*)?" % (_ANSWER_LINE, _ANSWER_LINE))
_STATUS_PREFIX = b"HTTP/1.1 "
_NO_BODY = frozenset({204, 304})


class RequestHead(NamedTuple):
    """A POST's head without its `Content-Length`: the bytes before it and after it."""

    before: bytes
    after: bytes

    def request(self, body: bytes) -> bytes:
        """The whole request, ready for one write."""
        return b"%sContent-Length: %d\r\n%s%s" % (self.before, len(body), self.after, body)


def request_head(target: str, host: str, headers: Sequence[tuple[str, str]]) -> RequestHead:
    """Encode and check a POST's head; `TransportError` when a header is not valid HTTP.

    The message never quotes the value: the offending header may be the token (a secret read
    from a file with its trailing newline).
    """
    lines = [f"{name}: {value}\r\n" for name, value in headers]
    try:
        encoded = [(name.encode("ascii"), value.encode("ascii")) for name, value in headers]
        encoded.append((b"Host", host.encode("ascii")))
    except UnicodeEncodeError:
        encoded = [(b"", b"")]
    if not all(_TOKEN.fullmatch(name) and _FIELD_VALUE.fullmatch(value) for name, value in encoded):
        raise TransportError(
            "a request header is not valid HTTP (a token with a newline or space?)"
        )
    return RequestHead(
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\n".encode("ascii"),
        "".join(lines).encode("ascii") + b"\r\n",
    )


class _Head(NamedTuple):
    status: int
    reason: str
    headers: Mapping[str, str]
    length: int
    keep_alive: bool


class AnswerHeaders(Mapping[str, str]):
    """An answer's headers by lower-case name (repeated ones joined with ", "), decoded on
    first use: a 200's are seldom read, so the common answer pays only for a scan."""

    __slots__ = ("_block", "_parsed")

    def __init__(self, block: bytes) -> None:
        self._block = block  # the header lines, already checked by `_HEADER_BLOCK`
        self._parsed: dict[str, str] | None = None

    def _fields(self) -> dict[str, str]:
        if self._parsed is None:
            fields: dict[str, str] = {}
            for line in self._block.split(b"\r\n") if self._block else ():
                name, _, value = line.partition(b":")
                key, text = name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")
                fields[key] = f"{fields[key]}, {text}" if key in fields else text
            self._parsed = fields
        return self._parsed

    def __getitem__(self, name: str) -> str:
        return self._fields()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields())

    def __len__(self) -> int:
        return len(self._fields())

    def __repr__(self) -> str:
        return f"AnswerHeaders({self._fields()!r})"


def _parse_head(raw: bytes) -> _Head | None:
    """The head of a plain `Content-Length` answer; None for anything h11 should parse."""
    status_line, _, block = raw.partition(b"\r\n")
    code = status_line[9:12]
    if (
        not status_line.startswith(_STATUS_PREFIX)
        or len(code) != 3
        or not code.isdigit()
        or status_line[12:13] not in (b"", b" ")
        or not _HEADER_BLOCK.fullmatch(block)  # folded, malformed or binary: h11 says how
    ):
        return None
    status = int(code)
    if status < 200:  # 1xx: informational, the answer follows
        return None
    lower = b"\n" + block.lower()  # each line starts after a "\n"
    if b"\ntransfer-encoding:" in lower:
        return None
    lengths = _values(lower, b"\ncontent-length:")
    if status in _NO_BODY:
        length = 0
    elif len(lengths) == 1 and lengths[0].isdigit():
        length = int(lengths[0])
    else:
        return None  # none (the body ends with the connection), several, or not a number
    keep_alive = not any(
        b"close" in value.replace(b" ", b"").split(b",")
        for value in _values(lower, b"\nconnection:")
    )
    reason = status_line[13:].decode("latin-1")
    return _Head(status, reason, AnswerHeaders(block), length, keep_alive)


def _values(lower: bytes, start: bytes) -> list[bytes]:
    """The values of the header lines that begin with `start` ("\\nname:")."""
    values = []
    found = lower.find(start)
    while found >= 0:
        begin = found + len(start)
        end = lower.find(b"\r", begin)
        values.append(lower[begin : end if end >= 0 else len(lower)].strip(b" \t"))
        found = lower.find(start, begin)
    return values


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
        self._head: _Head | None = None
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
                started = buffer[: len(_STATUS_PREFIX)]
                if (
                    len(buffer) > MAX_HEAD
                    or b"\n\n" in buffer
                    or not _STATUS_PREFIX.startswith(started)
                ):
                    self._hand_to_h11()
                return
            head = _parse_head(bytes(buffer[:end]))
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
