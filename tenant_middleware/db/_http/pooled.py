"""HTTP/1.1 on asyncio streams, parsed by h11, with kept-alive connections: the default transport.

Why not httpx here: one Hrana request through `httpx.AsyncClient` costs ~3.5 ms against a
local sqld on this class of machine, the same exchange on a bare socket ~1.1 ms, and this
transport ~1.4 ms (BENCHMARKS.md, section 7). httpx's request model, auth and event-hook
layers, httpcore's pool and anyio's stream wrappers are what the difference pays for; a Hrana
client needs none of them: it sends one kind of request (a POST with a body it already holds)
to servers it knows, and reads a complete JSON answer. h11 (already installed with httpx, and
what httpcore itself parses HTTP/1.1 with) keeps the parsing correct: chunked and
`Content-Length` bodies, `Connection: close`, malformed answers.

Rules of the pool:

- a request takes one of `max_connections` slots for its whole exchange, then its
  connection goes back idle, most recently used first, at most `max_idle` of them across all
  hosts (room is made by closing expired connections first, then the longest idle);
- an idle connection is reused only while the server has not closed it and for
  `keepalive_expiry` seconds (below the idle timeouts of servers and proxies), so a request is
  not sent on a connection the server is closing;
- a connection whose answer was not a complete 200 is closed, not reused: sqld closes the
  connection after refusing a request whose body it did not read (401, 404, 429), and any
  request sent on it next would fail;
- `time_limit` is one deadline for the whole request: the wait for a slot, connecting, the TLS
  handshake, sending and reading. A request that fails or is cancelled midway closes its
  connection, whose state is then unknown.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import h11

from tenant_middleware.db._http.transport import (
    HttpResponse,
    Route,
    TransportError,
    TransportTimeout,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

_READ_SIZE = 65536
_MAX_DETAIL = 200

# (tls, host, port, server name): connections are reusable only for the same one.
_PoolKey = tuple[bool, str, int, str | None]


class _Connection:
    """One HTTP/1.1 connection; one exchange at a time."""

    __slots__ = ("_reader", "_state", "_writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._state = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def reusable(self, now: float, expiry: float) -> bool:
        """Whether a request may be sent on this idle connection."""
        return (
            now - self.idle_since < expiry
            and not self._reader.at_eof()
            and not self._writer.is_closing()
        )

    async def exchange(self, head: h11.Request, body: bytes) -> tuple[HttpResponse, bool]:
        """Send one request; return the answer and whether the connection can be reused."""
        state = self._state
        self._writer.write(
            state.send(head) + state.send(h11.Data(data=body)) + state.send(h11.EndOfMessage())
        )
        await self._writer.drain()
        status, reason, headers, chunks = 0, "", {}, []
        while True:
            event = state.next_event()
            if event is h11.NEED_DATA:
                data = await self._reader.read(_READ_SIZE)
                if not data and not status:
                    raise TransportError("the server closed the connection without answering")
                state.receive_data(data)
            elif isinstance(event, h11.Response):
                status, reason = event.status_code, event.reason.decode("latin-1")
                headers = {
                    name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers
                }
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            # h11.InformationalResponse (100 Continue and the like): read on.
        reusable = status == 200 and state.our_state is h11.DONE and state.their_state is h11.DONE
        if reusable:
            state.start_next_cycle()
        return HttpResponse(status, headers, b"".join(chunks), reason), reusable

    def close(self) -> None:
        self._writer.close()


class PooledTransport:
    """A `Transport` of kept-alive HTTP/1.1 connections (see the module docstring).

    `ssl_context` verifies HTTPS servers (default: certifi's CAs, or `SSL_CERT_FILE`/
    `SSL_CERT_DIR` as httpx reads them; see `HranaClient`).
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
        max_idle: int = 20,
        keepalive_expiry: float = 5.0,
    ) -> None:
        if max_connections < 1 or max_idle < 0 or keepalive_expiry < 0:
            raise ValueError("max_connections >= 1, max_idle >= 0 and keepalive_expiry >= 0")
        self._ssl_context = ssl_context
        self._slots = asyncio.Semaphore(max_connections)
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._idle: dict[_PoolKey, list[_Connection]] = {}  # per host, most recent last
        self._idle_order: OrderedDict[_Connection, _PoolKey] = OrderedDict()  # oldest first
        self._busy: set[_Connection] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def idle_connections(self) -> int:
        """Connections open and waiting for a request."""
        return len(self._idle_order)

    async def post(
        self, route: Route, headers: Sequence[tuple[str, str]], body: bytes, *, time_limit: float
    ) -> HttpResponse:
        if self._closed:
            raise TransportError("the HTTP client is closed")
        try:
            head = h11.Request(
                method="POST",
                target=route.target,
                headers=[
                    ("Host", route.host_header),
                    ("Content-Length", str(len(body))),
                    *headers,
                ],
            )
        except h11.LocalProtocolError:
            # h11 quotes the offending header, and that may be the token (a secret read from
            # a file with its trailing newline): say which rule broke, never the value.
            raise TransportError(
                "a request header is not valid HTTP (a token with a newline or space?)"
            ) from None
        try:
            async with asyncio.timeout(time_limit), self._slots:
                if self._closed:  # closed while this request waited for a slot
                    raise TransportError("the HTTP client is closed")
                return await self._send(route, head, body)
        except TimeoutError as exc:
            raise TransportTimeout(f"no answer within {time_limit:g}s") from exc

    async def _send(self, route: Route, head: h11.Request, body: bytes) -> HttpResponse:
        key: _PoolKey = (route.tls, route.connect_host, route.connect_port, route.server_hostname)
        connection = self._take_idle(key) or await self._connect(route)
        self._busy.add(connection)
        reusable = False
        try:
            response, reusable = await connection.exchange(head, body)
        except (OSError, EOFError, h11.ProtocolError) as exc:
            raise TransportError(_describe(exc)) from exc
        finally:
            self._busy.discard(connection)
            if reusable and not self._closed:
                self._put_idle(key, connection)
            else:
                connection.close()
        return response

    def _take_idle(self, key: _PoolKey) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            self._forget_idle(key, connection, idle)
            if connection.reusable(now, self._expiry):
                return connection
            connection.close()
        return None

    def _put_idle(self, key: _PoolKey, connection: _Connection) -> None:
        now = time.monotonic()
        # Room first: connections past their expiry (of any host), then the longest idle.
        # With a host per tenant (Turso), a full pool of old hosts must not turn every
        # other tenant's request into a new connection.
        while self._idle_order:
            old, old_key = next(iter(self._idle_order.items()))
            if len(self._idle_order) < self._max_idle and old.reusable(now, self._expiry):
                break
            self._idle[old_key].remove(old)
            self._forget_idle(old_key, old, self._idle[old_key])
            old.close()
        if self._max_idle == 0:
            connection.close()
            return
        connection.idle_since = now
        self._idle.setdefault(key, []).append(connection)
        self._idle_order[connection] = key

    def _forget_idle(self, key: _PoolKey, connection: _Connection, idle: list[_Connection]) -> None:
        # `connection` has just left `idle` (the list of its key).
        del self._idle_order[connection]
        if not idle:
            del self._idle[key]

    async def _connect(self, route: Route) -> _Connection:
        context = None
        if route.tls:
            if self._ssl_context is None:
                # Loading the system's CAs takes milliseconds: once, not per connection.
                self._ssl_context = ssl.create_default_context()
            context = self._ssl_context
        try:
            reader, writer = await asyncio.open_connection(
                route.connect_host,
                route.connect_port,
                ssl=context,
                server_hostname=(route.server_hostname or route.connect_host) if context else None,
                limit=_READ_SIZE,
            )
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"cannot connect: {_describe(exc)}") from exc
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        """Close idle connections now and busy ones as their requests end; idempotent."""
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        self._idle_order.clear()
        for connection in self._busy:
            connection.close()


def _describe(exc: BaseException) -> str:
    # h11's messages may quote what the server sent: keep them short.
    detail = str(exc)[:_MAX_DETAIL]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
