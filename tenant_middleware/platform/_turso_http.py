"""One Turso Platform API call: bearer auth, timeout, retries, typed errors.

429 and 5xx answers, timeouts and connection failures are tried again (up to `retries` more
times) after a jittered exponential backoff, or after the server's `Retry-After`. Every other
error status raises at once. Every call the client makes may be repeated safely: a repeated
create finds its own database (409, adopted), a repeated token mint makes another token.

The API token goes in the `Authorization` header of each request and nowhere else: not in
the URL, a log line, a `repr` or an error message (error texts from the server are scrubbed of
it too, in case one echoes it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from tenant_middleware._retry import Backoff, parse_retry_after
from tenant_middleware.errors import (
    PlatformBadRequest,
    PlatformConflict,
    PlatformError,
    PlatformForbidden,
    PlatformNotFound,
    PlatformRateLimited,
    PlatformTimeout,
    PlatformUnauthorized,
    PlatformUnavailable,
)
from tenant_middleware.platform._answers import error_field

logger = logging.getLogger("tenant_middleware.platform.turso")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
Jitter = Callable[[], float]

_BY_STATUS: dict[int, type[PlatformError]] = {
    400: PlatformBadRequest,
    401: PlatformUnauthorized,
    403: PlatformForbidden,
    404: PlatformNotFound,
    409: PlatformConflict,
    429: PlatformRateLimited,
}


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def error_for(status: int, message: str, *, retry_after: float | None = None) -> PlatformError:
    """The typed error of an HTTP status (any other 4xx: `PlatformError`)."""
    if status == 429:
        return PlatformRateLimited(message, upstream_status=status, retry_after=retry_after)
    if status >= 500:
        return PlatformUnavailable(message, upstream_status=status)
    return _BY_STATUS.get(status, PlatformError)(message, upstream_status=status)


class PlatformHTTP:
    """Sends requests to one API with one token; owns its httpx client unless given one."""

    def __init__(
        self,
        *,
        base_url: str,
        api_token: str,
        http_client: httpx.AsyncClient | None,
        timeout: float,
        retries: int,
        backoff: Backoff,
        sleep: Sleep,
        clock: Clock,
        jitter: Jitter,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = api_token
        self._client = http_client if http_client is not None else httpx.AsyncClient()
        self._owns_client = http_client is None
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter

    def __repr__(self) -> str:
        return f"PlatformHTTP(base_url={self._base_url!r})"

    async def aclose(self) -> None:
        """Close the httpx client if this object created it."""
        if self._owns_client:
            await self._client.aclose()

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        """Send the request, retrying per the policy; the decoded JSON body (or `None`)."""
        what = f"{method} {path}"
        attempt = 0
        while True:
            try:
                response = await self._send(method, path, params=params, json=json)
            except PlatformError as exc:  # timeout or unreachable
                if attempt >= self._retries:
                    raise
                delay = self._backoff.delay(attempt, self._jitter())
                logger.warning("Turso API %s: %s; retry in %.2fs", what, exc, delay)
            else:
                status = response.status_code
                if status < 400:
                    return self._decode(response, what)
                message = f"Turso API {what}: {status} {self._error_text(response)}"
                retry_after = parse_retry_after(
                    response.headers.get("retry-after"), now=self._clock()
                )
                if not _retryable(status) or attempt >= self._retries:
                    raise error_for(status, message, retry_after=retry_after)
                delay = self._backoff.delay(attempt, self._jitter(), retry_after)
                logger.warning("Turso API %s: %s; retry in %.2fs", what, status, delay)
            attempt += 1
            await self._sleep(delay)

    async def _send(
        self, method: str, path: str, *, params: Mapping[str, str] | None, json: Any
    ) -> httpx.Response:
        url = f"{self._base_url}{path}"
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            # asyncio.timeout bounds the whole exchange, whatever the transport does with
            # httpx's own timeout (an ASGI transport ignores it).
            async with asyncio.timeout(self._timeout):
                return await self._client.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=headers,
                    timeout=self._timeout,
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise PlatformTimeout(
                f"Turso API {method} {path}: no answer in {self._timeout:g}s"
            ) from exc
        except httpx.TransportError as exc:
            raise PlatformUnavailable(
                f"Turso API {method} {path}: {type(exc).__name__}: {self._scrub(str(exc))}"
            ) from exc

    def _error_text(self, response: httpx.Response) -> str:
        error = error_field(response)
        text = error if error is not None else response.reason_phrase or "error"
        return self._scrub(text[:500])

    def _decode(self, response: httpx.Response, what: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise PlatformError(
                f"Turso API {what}: the answer is not JSON", upstream_status=response.status_code
            ) from exc
