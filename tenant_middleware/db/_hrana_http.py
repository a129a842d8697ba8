"""Hrana over HTTP: one pipeline request, with credentials, limits, backoff and typed errors.

`HranaClient` owns one `httpx.AsyncClient` (connection limits, timeouts) that every
`RemoteConnection` of a backend shares. A pipeline request:

- waits for one of `max_in_flight` slots of its database (a tenant cannot take every
  connection of the client; the client's `max_connections` caps the server as a whole);
- on 401, asks the token provider for a new token and tries once more;
- on 429 (sqld: "Too many concurrent requests", or `DbCreateTimeout` when no database
  connection frees up in time) for a request that opens a new stream, backs off with jitter
  (honouring `Retry-After`) and tries again, `RetryPolicy.attempts` times at most. Such a
  request ran nothing; a request on an open stream is never repeated, since it may have run;
- turns HTTP failures into `DatabaseError` subclasses. The token goes only into the
  `Authorization` header, never into a message, a log record or a `repr`.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from tenant_middleware.errors import (
    DatabaseAuthError,
    DatabaseBusy,
    DatabaseError,
    DatabaseNotFound,
    DatabaseTransactionAborted,
)

if TYPE_CHECKING:
    from types import TracebackType

    from tenant_middleware.db._hrana_credentials import Credentials
    from tenant_middleware.db._hrana_protocol import Json
    from tenant_middleware.db._hrana_url import Endpoint

_jitter = random.SystemRandom()
_MAX_MESSAGE = 300


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Backoff for an overloaded server (429) and for a busy database.

    Waits grow from `base_delay`, doubling, to `max_delay`, each drawn between half and all of
    that bound. A `Retry-After` longer than `max_delay` ends the retries at once.
    """

    attempts: int = 8
    base_delay: float = 0.02
    max_delay: float = 1.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError("delays must satisfy 0 <= base_delay <= max_delay")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0 for the first retry)."""
        bound = min(self.max_delay, self.base_delay * 2 ** min(attempt, 32))
        wait = _jitter.uniform(bound / 2, bound)
        return wait if retry_after is None else max(wait, retry_after)


class HranaClient:
    """The HTTP client that `RemoteConnection`s of one backend share; close it once, at the end.

    `timeout` bounds each phase of a request (connect, write, read, wait for a pooled
    connection); `max_connections` caps open HTTP connections, `max_in_flight` the requests
    in flight to one database. `transport` replaces httpx's (tests, custom routing);
    `verify` and `trust_env` go to httpx (CA bundle, proxy and `SSL_CERT_FILE` variables).
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        max_in_flight: int = 16,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | str | bool = True,
        trust_env: bool = True,
    ) -> None:
        if timeout <= 0 or max_in_flight < 1:
            raise ValueError("timeout must be positive and max_in_flight at least 1")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._max_in_flight = max_in_flight
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_keepalive_connections
        )
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=limits,
            transport=transport,
            verify=verify,
            trust_env=trust_env,
            follow_redirects=False,
        )
        # One semaphore per database, alive while a request holds or waits for it.
        self._slots: weakref.WeakValueDictionary[str, asyncio.Semaphore] = (
            weakref.WeakValueDictionary()
        )

    @property
    def closed(self) -> bool:
        """Whether `aclose()` has run."""
        return self._http.is_closed

    async def aclose(self) -> None:
        """Close the pooled HTTP connections; idempotent."""
        await self._http.aclose()

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
        if self.closed:
            raise DatabaseError(f"{endpoint}: the HTTP client is closed")
        body = json.dumps({"baton": baton, "requests": requests}, separators=(",", ":"))
        content = body.encode()
        attempt, refreshed = 0, False
        while True:
            token = await credentials.get()
            response = await self._send(endpoint, token, content)
            status = response.status_code
            if status == httpx.codes.OK:
                return _decode(endpoint, response)
            if status == httpx.codes.UNAUTHORIZED and not refreshed:
                refreshed = True
                if await credentials.refresh(token):
                    continue
            if status == httpx.codes.TOO_MANY_REQUESTS and baton is None:
                retry_after = _retry_after(response)
                if attempt + 1 < self.retry.attempts and (
                    retry_after is None or retry_after <= self.retry.max_delay
                ):
                    await asyncio.sleep(self.retry.delay(attempt, retry_after))
                    attempt += 1
                    continue
            raise http_error(endpoint, response, attempts=attempt + 1, token=token)

    async def _send(self, endpoint: Endpoint, token: str | None, content: bytes) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if endpoint.host_header is not None:
            headers["Host"] = endpoint.host_header
        extensions: dict[str, Any] = {}
        if endpoint.sni_hostname is not None:
            extensions["sni_hostname"] = endpoint.sni_hostname
        request = self._http.build_request(
            "POST", endpoint.pipeline_url, content=content, headers=headers, extensions=extensions
        )
        async with self._slot(endpoint):
            try:
                response = await self._http.send(request, stream=True)
                try:
                    await response.aread()
                    if response.status_code != httpx.codes.OK:
                        await _discard_connection(response)
                finally:
                    await response.aclose()
            except httpx.TimeoutException as exc:
                raise DatabaseError(
                    f"{endpoint}: no answer within {self.timeout:g}s ({type(exc).__name__})"
                ) from exc
            except httpx.HTTPError as exc:
                raise DatabaseError(f"{endpoint}: {type(exc).__name__}: {exc}") from exc
        return response


async def _discard_connection(response: httpx.Response) -> None:
    # sqld closes the connection after refusing a request whose body it did not read (401,
    # 404, 429...), and the next request sent on it, by any task, would fail. Close it before
    # it goes back to the pool, which then drops it (`network_stream`: an httpcore extension).
    stream = response.extensions.get("network_stream")
    if stream is not None:
        await stream.aclose()


def _decode(endpoint: Endpoint, response: httpx.Response) -> Json:
    try:
        body = response.json()
    except ValueError as exc:
        raise DatabaseError(f"{endpoint}: the server sent a malformed pipeline response") from exc
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise DatabaseError(f"{endpoint}: the server sent a malformed pipeline response")
    return body


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # absent, or an HTTP date: fall back to our own backoff
    return max(seconds, 0.0)


def http_error(
    endpoint: Endpoint, response: httpx.Response, *, attempts: int = 1, token: str | None = None
) -> DatabaseError:
    """Translate a failed pipeline response into the library's error of that kind."""
    status = response.status_code
    message, code = _server_error(response)
    if token:
        # A proxy's error page could echo the request; never let the token through.
        message = message.replace(token, "[token]")
    detail = f"{endpoint}: {message}"
    if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        refusal = "refused the token" if status == 401 else "does not allow this with the token"
        return DatabaseAuthError(f"{endpoint}: the server {refusal} ({message})", status=status)
    if status == httpx.codes.NOT_FOUND:
        return DatabaseNotFound(f"{detail} (HTTP 404)")
    if status == httpx.codes.TOO_MANY_REQUESTS:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return DatabaseBusy(f"{detail} (HTTP 429{tries})")
    if code == "STREAM_EXPIRED":
        return DatabaseTransactionAborted(f"{detail} ({code})")
    return DatabaseError(f"{detail} (HTTP {status}{f', {code}' if code else ''})")


def _server_error(response: httpx.Response) -> tuple[str, str | None]:
    # sqld answers {"error": "..."} or a Hrana Error {"message", "code"}, proxies plain text.
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        message = body.get("error") or body.get("message")
        code = body.get("code")
        if isinstance(message, str) and message:
            return message[:_MAX_MESSAGE], code if isinstance(code, str) else None
    text = response.text.strip()
    return (text[:_MAX_MESSAGE] or response.reason_phrase or "no detail"), None
