"""`LeaseScope`: the connections `tenant_db()` holds for one request or `tenant_scope`.

- A task that already holds a lease to a tenant's database re-enters it: a second
  `tenant_db()` in the same task (a helper called by a handler that holds `TenantDB`) gets the
  same connection instead of waiting for a second one, which a pool of one would never give.
  Other tasks (`asyncio.gather`, `create_task`) take their own: one connection is not shared
  between tasks that run at once.
- The middleware gives the request's leases back as soon as the response's last message has
  been sent. Starlette runs `BackgroundTasks` after that, in the same task, and FastAPI closes
  the request's dependencies (`TenantDB`) only after them; without this the background tasks'
  own `tenant_db()` waited for the lease the finished response still held.
- `tenant_scope` opens a scope of its own: what it leases goes back when its block exits, and
  it re-enters what the enclosing scope's task holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol

from tenant_middleware._types import Message, Send
from tenant_middleware.models import TenantContext
from tenant_middleware.pool.lease import Lease, PooledConnection


class Connector(Protocol):
    """What `tenant_db()` needs of the runtime that bound the tenant (a `Tenancy`).

    Named here rather than imported, so these leaf modules (the middleware, the ORM session and
    the task queues import them) never import the runtime that imports them.
    """

    def connect(
        self, tenant: TenantContext | str
    ) -> AbstractAsyncContextManager[PooledConnection]: ...


# Whose lease it is: the task, the runtime (by identity) and the tenant's id.
_Key = tuple[asyncio.Task[object] | None, int, str]


class _Held:
    __slots__ = ("connection", "depth", "key", "lease", "released", "scope")

    def __init__(
        self,
        scope: LeaseScope,
        key: _Key,
        lease: AbstractAsyncContextManager[PooledConnection],
        connection: PooledConnection,
    ) -> None:
        self.scope = scope
        self.key = key
        self.lease = lease
        self.connection = connection
        self.depth = 1
        self.released = False


class LeaseScope:
    """The leases held in one request or `tenant_scope`, by task."""

    __slots__ = ("_held", "parent")

    def __init__(self, parent: LeaseScope | None = None) -> None:
        self.parent = parent
        self._held: dict[_Key, _Held] = {}

    def _find(self, key: _Key) -> _Held | None:
        scope: LeaseScope | None = self
        while scope is not None:
            held = scope._held.get(key)
            if held is not None:
                return held
            scope = scope.parent
        return None

    async def release(self) -> None:
        """Give back the leases the current task holds in this scope (its response is sent).

        Blocks still open on them find their connection refused, as after `close()`.
        """
        if not self._held:
            return
        task = asyncio.current_task()
        for key in [key for key in self._held if key[0] is task]:
            held = self._held.pop(key)
            held.released = True
            await held.lease.__aexit__(None, None, None)


# The messages that start (HTTP) or accept, close or answer (WebSocket) a response.
RESPONSE_STARTING = frozenset(
    {"http.response.start", "websocket.accept", "websocket.close", "websocket.http.response.start"}
)


class ResponseLeases(LeaseScope):
    """A request's leases, and the `send` the middleware gives its app.

    Its `send` sends a message and notes the last one that started the response (`started`,
    None while the contract can still answer); once the response's last message is sent, the
    leases this task holds go back. One object per request for both: the cached request path
    allocates it and nothing else.
    """

    __slots__ = ("_send", "started")

    def __init__(self, send: Send) -> None:
        self.parent = None
        self._held = {}
        self._send = send
        self.started: str | None = None

    def send(self, message: Message) -> Awaitable[None]:
        """The app's `send` of an HTTP request: note the start, hand back the server's
        `send(message)`.

        Not a coroutine, and a method rather than `__call__` (a bound method's call is the
        interpreter's fast path): a message costs no frame of ours to await, except the one
        that ends a response holding leases. An HTTP response starts once, so after its
        start a message is only checked for leases to give back.
        """
        if self._held:
            return self.send_socket(message)
        if self.started is None and message["type"] == "http.response.start":
            self.started = "http.response.start"
        return self._send(message)

    def send_socket(self, message: Message) -> Awaitable[None]:
        """The app's `send` of a WebSocket (and of an HTTP response holding leases): note
        every message that accepts, closes or answers it, as `send` does."""
        kind = message["type"]
        if kind in RESPONSE_STARTING:
            self.started = kind
        if self._held and (
            (kind == "http.response.body" and not message.get("more_body"))
            or kind == "http.response.pathsend"
        ):
            return self._send_then_release(message)
        return self._send(message)

    async def _send_then_release(self, message: Message) -> None:
        await self._send(message)
        # The response is sent: its leases go back before BackgroundTasks run (in this task,
        # before FastAPI closes the dependencies that took them).
        await self.release()


class ScopedLease:
    """The `async with` of `tenant_db()`: a new lease, or the one this task already holds.

    A class rather than an `@asynccontextmanager`: every `TenantDB` goes through it.
    """

    __slots__ = ("_connector", "_held", "_scope", "_tenant")

    def __init__(self, scope: LeaseScope, connector: Connector, tenant: TenantContext) -> None:
        self._scope = scope
        self._connector = connector
        self._tenant = tenant
        self._held: _Held | None = None

    async def __aenter__(self) -> PooledConnection:
        key: _Key = (asyncio.current_task(), id(self._connector), self._tenant.id)
        held = self._scope._find(key)
        if held is not None:
            held.depth += 1
        else:
            lease = self._connector.connect(self._tenant)
            # A pool's warm lease is taken without its coroutine (`Lease.enter_now`).
            connection = lease.enter_now() if type(lease) is Lease else None
            if connection is None:
                connection = await lease.__aenter__()
            held = _Held(self._scope, key, lease, connection)
            self._scope._held[key] = held
        self._held = held
        return held.connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        held, self._held = self._held, None
        if held is None or held.released:
            return  # given back already, when the response was sent
        held.depth -= 1
        if held.depth:
            return  # an outer block of this task still uses it
        held.released = True
        if held.scope._held.get(held.key) is held:
            del held.scope._held[held.key]
        lease = held.lease
        if type(lease) is Lease:
            closing = lease.exit_now(exc)  # no coroutine unless the connection must close
            if closing is not None:
                await closing
        else:
            await lease.__aexit__(exc_type, exc, tb)
