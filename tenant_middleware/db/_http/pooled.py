"""HTTP/1.1 on asyncio, with kept-alive connections: the default transport.

Why not httpx here: one Hrana request through `httpx.AsyncClient` costs ~3.5 ms against a
local sqld on this class of machine, the same exchange on a bare socket ~1.1 ms (BENCHMARKS.md,
sections 7 and 11h). httpx's request model, auth and event-hook layers, httpcore's pool and
anyio's stream wrappers are what the difference pays for; a Hrana client needs none of them:
it sends one kind of request (a POST with a body it already holds) to servers it knows, and
reads a complete JSON answer. Each connection is an asyncio protocol (`_http.wire`) that
writes a request in one piece (heads encoded once per host and token, TCP_NODELAY as asyncio
sets it) and parses the common answer itself, handing any other to h11 (already installed with
httpx, and what httpcore parses HTTP/1.1 with): chunked bodies, `Connection: close`, malformed
answers stay h11's to judge.

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

from tenant_middleware.db._http.heads import RequestHead, request_head
from tenant_middleware.db._http.transport import (
    HttpResponse,
    Route,
    TransportError,
    TransportTimeout,
)
from tenant_middleware.db._http.wire import HttpConnection, describe

if TYPE_CHECKING:
    from collections.abc import Sequence

# (tls, host, port, server name): connections are reusable only for the same one.
_PoolKey = tuple[bool, str, int, str | None]
# Encoded request heads kept, by target, host and headers (the token among them): a few per
# tenant; dropped all at once when full, since tokens rotate.
_MAX_HEADS = 1024


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
        self._idle: dict[_PoolKey, list[HttpConnection]] = {}  # per host, most recent last
        self._idle_order: OrderedDict[HttpConnection, _PoolKey] = OrderedDict()  # oldest first
        self._busy: set[HttpConnection] = set()
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...]], RequestHead] = {}
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
        request = self._head(route, headers).request(body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + time_limit
        slots = self._slots
        try:
            if slots.locked():
                async with asyncio.timeout_at(deadline):
                    await slots.acquire()
            else:
                await slots.acquire()  # free: returns at once, no deadline needed
        except TimeoutError as exc:
            raise TransportTimeout(f"no answer within {time_limit:g}s") from exc
        try:
            if self._closed:  # closed while this request waited for a slot
                raise TransportError("the HTTP client is closed")
            return await self._send(route, headers, request, body, deadline, time_limit)
        finally:
            slots.release()

    def _head(self, route: Route, headers: Sequence[tuple[str, str]]) -> RequestHead:
        key = (route.target, route.host_header, tuple(headers))
        head = self._heads.get(key)
        if head is None:
            head = request_head(route.target, route.host_header, headers)
            if len(self._heads) >= _MAX_HEADS:
                self._heads.clear()
            self._heads[key] = head
        return head

    async def _send(
        self,
        route: Route,
        headers: Sequence[tuple[str, str]],
        request: bytes,
        body: bytes,
        deadline: float,
        time_limit: float,
    ) -> HttpResponse:
        key: _PoolKey = (route.tls, route.connect_host, route.connect_port, route.server_hostname)
        connection = self._take_idle(key)
        if connection is None:
            try:
                async with asyncio.timeout_at(deadline):
                    connection = await self._connect(route)
            except TimeoutError as exc:
                raise TransportTimeout(f"no answer within {time_limit:g}s") from exc
        self._busy.add(connection)
        reusable = False
        try:
            response, reusable = await connection.exchange(
                route.target,
                route.host_header,
                headers,
                request,
                body,
                deadline=deadline,
                time_limit=time_limit,
            )
        except OSError as exc:
            raise TransportError(describe(exc)) from exc
        finally:
            self._busy.discard(connection)
            if reusable and not self._closed:
                self._put_idle(key, connection)
            else:
                connection.close()
        return response

    def _take_idle(self, key: _PoolKey) -> HttpConnection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            self._forget_idle(key, connection, idle)
            if connection.reusable(now, self._expiry):
                return connection
            connection.close()
        return None

    def _put_idle(self, key: _PoolKey, connection: HttpConnection) -> None:
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

    def _forget_idle(
        self, key: _PoolKey, connection: HttpConnection, idle: list[HttpConnection]
    ) -> None:
        # `connection` has just left `idle` (the list of its key).
        del self._idle_order[connection]
        if not idle:
            del self._idle[key]

    async def _connect(self, route: Route) -> HttpConnection:
        context = None
        if route.tls:
            if self._ssl_context is None:
                # Loading the system's CAs takes milliseconds: once, not per connection.
                self._ssl_context = ssl.create_default_context()
            context = self._ssl_context
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                HttpConnection,
                route.connect_host,
                route.connect_port,
                ssl=context,
                server_hostname=(route.server_hostname or route.connect_host) if context else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"cannot connect: {describe(exc)}") from exc
        return connection

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
