"""Hrana over HTTP: one pipeline request, with credentials, limits, backoff and typed errors.

`HranaClient` owns one `Transport` (kept-alive connections, limits, deadlines; see `_http`)
that every `RemoteConnection` of a backend shares. A pipeline request:

- waits for one of `max_in_flight` slots of its database (a tenant cannot take every
  connection of the client; the client's `max_connections` caps the server as a whole);
- on 401, asks the token provider for a new token and tries once more;
- on 429 (sqld: "Too many concurrent requests", or `DbCreateTimeout` when no database
  connection frees up in time) or 503 (unavailable) for a request that opens a new stream,
  backs off with jitter (honouring `Retry-After`) and tries again, `Backoff.attempts`
  times at most. Such a request ran nothing; a request on an open stream is never repeated,
  since it may have run;
- turns HTTP failures into `DatabaseError` subclasses. The token goes only into the
  `Authorization` header, never into a message, a log record or a `repr`.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import urllib.request
import weakref
from typing import TYPE_CHECKING

import httpx

from tenant_middleware._retry import Backoff
from tenant_middleware.db._hrana.answers import (
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    decode,
    http_error,
    retry_after,
    scrub,
)
from tenant_middleware.db._http.pooled import PooledTransport
from tenant_middleware.db._http.transport import (
    HttpResponse,
    HttpxTransport,
    Transport,
    TransportError,
    TransportTimeout,
)
from tenant_middleware.errors import DatabaseError, DatabaseUnreachable

if TYPE_CHECKING:
    from types import TracebackType

    from tenant_middleware.db._hrana.credentials import Credentials
    from tenant_middleware.db._hrana.protocol import Json
    from tenant_middleware.db._hrana.url import Endpoint

_jitter = random.SystemRandom()
# Made once: `json.dumps` with options builds an encoder on every call.
_encode = json.JSONEncoder(separators=(",", ":")).encode
_OK = 200
_MAX_HEADERS = 1024  # request headers kept, one set per token
# Answers to a request that ran nothing, so one that opens no stream can be sent again: sqld's
# "Too many concurrent requests" and `DbCreateTimeout` (429), and 503 (sqld shutting a
# namespace store down, a proxy with no backend).
_NOT_RUN = frozenset({TOO_MANY_REQUESTS, 503})


# Backoff for an overloaded server (429) and for a busy database: waits from 20 ms doubling to
# 1 s, each between half and all of that bound; a `Retry-After` over a second ends the retries.
DEFAULT_BACKOFF = Backoff(base=0.02, cap=1.0, max_retry_after=1.0, attempts=8)


def jitter() -> float:
    """A share of the bound to wait: between half and all of it."""
    return _jitter.uniform(0.5, 1.0)


class HranaClient:
    """The HTTP client that `RemoteConnection`s of one backend share; close it once, at the end.

    `timeout` is each request's deadline (waiting for a slot of its database and for a
    connection, connecting, sending, reading); a retried request (429, 503, 401) gets a new one.
    `max_connections` caps the requests in flight through this client (one connection each),
    `max_keepalive_connections` the idle connections kept open, and `max_in_flight` the
    requests in flight to one database.

    The transport is `PooledTransport` (HTTP/1.1 on asyncio and h11; `_http.pooled` says why not
    httpx), except when `trust_env` is true and the environment names an HTTP proxy
    (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`): then requests go through httpx, which speaks to
    proxies and honours `NO_PROXY`. `transport` replaces either (`HttpxTransport` around an
    `httpx.AsyncClient` of your own, or a test double). `verify` is an `ssl.SSLContext` or a
    bool, as in httpx; with `trust_env`, `SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        max_in_flight: int = 16,
        retry: Backoff | None = None,
        transport: Transport | None = None,
        verify: ssl.SSLContext | bool = True,
        trust_env: bool = True,
    ) -> None:
        if timeout <= 0 or max_in_flight < 1:
            raise ValueError("timeout must be positive and max_in_flight at least 1")
        self.timeout = timeout
        self.retry = retry or DEFAULT_BACKOFF
        self._max_in_flight = max_in_flight
        if transport is None:
            transport = _default_transport(
                max_connections, max_keepalive_connections, verify=verify, trust_env=trust_env
            )
        self._transport = transport
        # Whether the transport bounds a request by its `time_limit` as a whole (httpx applies
        # it per phase, and a transport of your own may not at all: those get a timer here).
        self._own_deadline = type(transport) is PooledTransport
        self._closed = False
        self._headers: dict[str | None, tuple[tuple[str, str], ...]] = {}  # by token
        # One semaphore per database, alive while a request holds or waits for it.
        self._slots: weakref.WeakValueDictionary[str, asyncio.Semaphore] = (
            weakref.WeakValueDictionary()
        )

    @property
    def transport(self) -> Transport:
        """What sends the requests."""
        return self._transport

    @property
    def closed(self) -> bool:
        """Whether `aclose()` has run."""
        return self._closed

    async def aclose(self) -> None:
        """Close the pooled HTTP connections; idempotent."""
        if not self._closed:
            self._closed = True
            await self._transport.aclose()

    async def __aenter__(self) -> HranaClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _slot(self, endpoint: Endpoint) -> asyncio.Semaphore:
        slot = self._slots.get(endpoint.url)
        if slot is None:
            slot = self._slots[endpoint.url] = asyncio.Semaphore(self._max_in_flight)
        return slot

    async def pipeline(
        self,
        endpoint: Endpoint,
        credentials: Credentials,
        baton: str | None,
        requests: list[Json],
    ) -> Json:
        """Send one pipeline request and return the decoded `PipelineRespBody`."""
        if self._closed:
            raise DatabaseError(f"{endpoint}: the HTTP client is closed")
        content = _encode({"baton": baton, "requests": requests}).encode()
        attempt, refreshed = 0, False
        while True:
            token = await credentials.get()
            response = await self._send(endpoint, token, content)
            status = response.status
            if status == _OK:
                return decode(endpoint, response)
            if status == UNAUTHORIZED and not refreshed:
                refreshed = True
                if await credentials.refresh(token):
                    continue
            if status in _NOT_RUN and baton is None:
                asked = retry_after(response)
                if self.retry.allows(attempt, asked):
                    await asyncio.sleep(self.retry.delay(attempt, jitter(), asked))
                    attempt += 1
                    continue
            raise http_error(endpoint, response, attempts=attempt + 1, token=token)

    async def _send(self, endpoint: Endpoint, token: str | None, content: bytes) -> HttpResponse:
        headers = self._headers.get(token)
        if headers is None:
            headers = _headers(token)
            if len(self._headers) >= _MAX_HEADERS:
                self._headers.clear()  # tokens rotate: the old ones are not asked for again
            self._headers[token] = headers
        slot = self._slot(endpoint)
        try:
            if self._own_deadline and not slot.locked():
                # The common case: a free slot is taken at once, and `PooledTransport` keeps
                # the whole deadline itself, so no second timer is armed for it.
                await slot.acquire()
                try:
                    return await self._transport.post(
                        endpoint.route, headers, content, time_limit=self.timeout
                    )
                finally:
                    slot.release()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout
            # One deadline for the wait for a slot of this database and the request itself.
            async with asyncio.timeout_at(deadline), slot:
                return await self._transport.post(
                    endpoint.route, headers, content, time_limit=deadline - loop.time()
                )
        except (TimeoutError, TransportTimeout) as exc:
            raise DatabaseUnreachable(f"{endpoint}: no answer within {self.timeout:g}s") from exc
        except TransportError as exc:
            raise DatabaseUnreachable(f"{endpoint}: {scrub(str(exc), token)}") from exc


def _headers(token: str | None) -> tuple[tuple[str, str], ...]:
    if token is None:
        return (("Content-Type", "application/json"),)
    return (("Content-Type", "application/json"), ("Authorization", f"Bearer {token}"))


def _default_transport(
    max_connections: int, max_idle: int, *, verify: ssl.SSLContext | bool, trust_env: bool
) -> Transport:
    if trust_env and _proxy_configured():
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_idle)
        client = httpx.AsyncClient(
            limits=limits, verify=verify, trust_env=True, follow_redirects=False
        )
        return HttpxTransport(client)
    # httpx's own choice of CAs (certifi, or SSL_CERT_FILE/SSL_CERT_DIR with trust_env).
    context = httpx.create_ssl_context(verify=verify, trust_env=trust_env)
    return PooledTransport(ssl_context=context, max_connections=max_connections, max_idle=max_idle)


def _proxy_configured() -> bool:
    proxies = urllib.request.getproxies_environment()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))
